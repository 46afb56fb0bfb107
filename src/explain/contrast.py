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


def pick_pair(
    probabilities: np.ndarray, first: int | None = None, second: int | None = None
) -> tuple[int, int]:
    """Classes A and B to contrast: the given ones; for a missing one, the most likely class
    other than the given one; with neither, the two most likely (ties by index).

    Raises:
        UnknownClassError: fewer than two classes.
    """
    from src.inference.ranking import top_classes

    if len(probabilities) < 2:
        raise UnknownClassError("contrast needs a model with at least two classes")
    order = [int(index) for index in top_classes(probabilities, len(probabilities))]
    if first is None:
        first = next(index for index in order if index != second)
    if second is None:
        second = next(index for index in order if index != first)
    return int(first), int(second)
