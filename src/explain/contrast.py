"""Contrastive maps, "why A and not B": Grad-CAM of the logit difference ``logit_A - logit_B``.

The engine's compiled gradients are reused (same target layer, same logits, the model is
never modified); only the target changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from src.errors import SketchError, UnknownClassError


@dataclass(frozen=True)
class ContrastResult:
    """Maps of the evidence for ``class_a[i]`` against ``class_b[i]`` in image i."""

    heatmaps: np.ndarray  # float32 (N, H, W) in [0, 1]: where the image argues for A over B
    against: np.ndarray  # float32 (N, H, W) in [0, 1]: where it argues for B over A
    raw_maps: np.ndarray  # float32 (N, h, w) signed, at the layer's resolution
    class_a: np.ndarray  # int64 (N,)
    class_b: np.ndarray  # int64 (N,)
    probabilities: np.ndarray  # float32 (N, C)
    logit_margin: np.ndarray  # float32 (N,) logit_A - logit_B


class ContrastiveCAM:
    """Grad-CAM (or another gradient method) of ``logit_A - logit_B`` in one compiled call.

    The target is ``targets.Contrast(A, B)`` on the GradCAM's own engine (same layer, same
    compiled gradients); the map against is the same formula on the negated gradients.

    Args:
        gradcam: a ``GradCAM``; its engine and gradient method are used.

    Raises:
        SketchError: for forward-only methods (Score-CAM, Eigen-CAM have no gradient to contrast).
    """

    def __init__(self, gradcam: Any) -> None:
        from src.visualization.cam_methods import GRADIENT_METHODS

        if gradcam.method not in GRADIENT_METHODS:
            raise SketchError(
                f"contrastive maps need a gradient method, not {gradcam.method!r}; use one of "
                f"{', '.join(GRADIENT_METHODS)}"
            )
        self.gradcam = gradcam

    def explain(self, images: Any, class_a: Any, class_b: Any) -> ContrastResult:
        """Contrastive maps for a batch.

        Args:
            images: model inputs, (H, W, 1) or (N, H, W, 1).
            class_a: the class to argue for: one int or one per image.
            class_b: the class to argue against: one int or one per image.

        Raises:
            UnknownClassError: out-of-range classes, or A equal to B.
        """
        from src.visualization.cam_methods import normalise
        from src.visualization.targets import Contrast

        engine, method = self.gradcam.engine, self.gradcam.method_object
        batch = engine.batch(images)
        first = _per_image(class_a, len(batch))
        second = _per_image(class_b, len(batch))
        targets = [Contrast(int(a), int(b)) for a, b in zip(first, second)]
        attributions = engine.attributions(batch, targets)
        raw = engine.raw_maps(method, attributions)
        # Where the margin's map is negative the image argues for B; show that half too.
        against = engine.raw_maps(method, attributions, sign=-1.0)
        size = batch.shape[1:3]
        return ContrastResult(
            heatmaps=normalise(raw, size),
            against=normalise(against, size),
            raw_maps=raw,
            class_a=first,
            class_b=second,
            probabilities=attributions.probabilities,
            logit_margin=(attributions.scores * attributions.coefficients)
            .sum(axis=1)
            .astype(np.float32),
        )


def _per_image(classes: Any, count: int) -> np.ndarray:
    """One int or one per image as an int64 array of length ``count``.

    Raises:
        UnknownClassError: the wrong number of classes.
    """
    array = np.atleast_1d(np.asarray(classes, dtype=np.int64))
    if array.size == 1:
        array = np.full(count, int(array[0]), np.int64)
    if array.shape != (count,):
        raise UnknownClassError(f"got {array.size} classes for {count} images")
    return array


def top_two_classes(probabilities: np.ndarray) -> tuple[int, int]:
    """The two most likely classes of one probability vector (ties by index)."""
    from src.inference.ranking import top_classes

    first, second = top_classes(probabilities, 2)
    return int(first), int(second)


def most_confused_pairs(
    true_indices: Any, predicted_indices: Any, top: int = 5
) -> list[tuple[int, int, int]]:
    """The most frequent (true, predicted, count) mistakes of a batch, most frequent first."""
    counts: dict[tuple[int, int], int] = {}
    for truth, guess in zip(np.asarray(true_indices), np.asarray(predicted_indices)):
        if int(truth) != int(guess):
            counts[(int(truth), int(guess))] = counts.get((int(truth), int(guess)), 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(truth, guess, count) for (truth, guess), count in ranked[:top]]
