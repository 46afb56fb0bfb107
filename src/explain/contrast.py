"""Contrastive maps, "why A and not B": Grad-CAM of the logit difference ``logit_A - logit_B``.

The engine's own capturing forward is reused (same target layer, same logits, the model is
never modified); only the differentiated score changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from src.data.preprocess import to_batch
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

    Args:
        gradcam: a ``GradCAM``; its target layer and gradient method are used.

    Raises:
        SketchError: for forward-only methods (Score-CAM, Eigen-CAM have no gradient to contrast).
    """

    def __init__(self, gradcam: Any) -> None:
        import tensorflow as tf

        from src.visualization import cam_methods
        from src.visualization.forward import build_capturing_forward
        from src.visualization.target_layers import resolve_score_source, resolve_target_layer

        if gradcam.method not in cam_methods.GRADIENT_FORMULAS:
            raise SketchError(
                f"contrastive maps need a gradient method, not {gradcam.method!r}; use one of "
                f"{', '.join(cam_methods.GRADIENT_FORMULAS)}"
            )
        self.gradcam = gradcam
        model = gradcam.model
        _, chain = resolve_target_layer(model, gradcam.layer_name)
        self._forward = build_capturing_forward(model, chain, resolve_score_source(model))
        self._formula = cam_methods.GRADIENT_FORMULAS[gradcam.method]
        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        index_spec = tf.TensorSpec((None,), tf.int64)
        self._graph = tf.function(self._contrast, input_signature=[spec, index_spec, index_spec])

    def _contrast(self, images: Any, class_a: Any, class_b: Any) -> tuple[Any, ...]:
        """Compiled: signed raw map of d(logit_A - logit_B), both normalised halves, outputs."""
        import tensorflow as tf

        from src.visualization.cam_methods import normalise

        with tf.GradientTape() as tape:
            activations, scores, outputs = self._forward(images)
            # The margin between the two logits: positive evidence for A is negative for B.
            margin = tf.gather(scores, class_a, axis=1, batch_dims=1) - tf.gather(
                scores, class_b, axis=1, batch_dims=1
            )
        gradients = tape.gradient(margin, activations)
        raw = self._formula(activations, gradients)
        # Where the margin's map is negative the image argues for B; show that half too.
        against = self._formula(activations, -gradients)
        size = self.gradcam.input_size
        return raw, normalise(raw, size), normalise(against, size), outputs, margin

    def explain(self, images: Any, class_a: Any, class_b: Any) -> ContrastResult:
        """Contrastive maps for a batch.

        Args:
            images: model inputs, (H, W, 1) or (N, H, W, 1).
            class_a: the class to argue for: one int or one per image.
            class_b: the class to argue against: one int or one per image.

        Raises:
            UnknownClassError: out-of-range classes, or A equal to B.
        """
        batch = to_batch(images)
        first = self.gradcam._class_index_array(class_a, len(batch))
        second = self.gradcam._class_index_array(class_b, len(batch))
        if np.any(first == second):
            raise UnknownClassError("contrast needs two different classes (A equals B)")
        raw, heatmaps, against, outputs, margin = (
            tensor.numpy() for tensor in self._graph(batch, first, second)
        )
        return ContrastResult(
            heatmaps=heatmaps.astype(np.float32),
            against=against.astype(np.float32),
            raw_maps=raw.astype(np.float32),
            class_a=first,
            class_b=second,
            probabilities=outputs.astype(np.float32),
            logit_margin=margin.astype(np.float32),
        )


def top_two_classes(probabilities: np.ndarray) -> tuple[int, int]:
    """The two most likely classes of one probability vector (ties by index)."""
    order = np.argsort(-np.asarray(probabilities), kind="stable")
    return int(order[0]), int(order[1])


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
