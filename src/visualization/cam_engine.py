"""The explainer core for one target layer: compiled attributions, then a method's formula.

Example:
    >>> engine = CamEngine(model, "last_conv")
    >>> result = engine.explain(images, method_named("gradcam++"), ClassTarget(3))
    >>> result.heatmaps.shape                      # (N, H, W) float32 in [0, 1]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from src.data.preprocess import to_batch
from src.errors import InvalidImageError, SketchError
from src.visualization.autodiff import compile_cam
from src.visualization.cam_methods import CamInputs, Method, normalise
from src.visualization.capture import slice_model
from src.visualization.target_layers import resolve_score_source, resolve_target_layer
from src.visualization.targets import Target, as_targets, target_arrays


@dataclass(frozen=True)
class CamResult:
    """Maps for a batch: ``heatmaps[i]`` explains ``class_indices[i]`` for image i."""

    heatmaps: np.ndarray  # float32 (N, H, W) in [0, 1], upsampled to the input size
    raw_maps: np.ndarray  # float32 (N, h, w) at the layer's resolution, before ReLU and scaling
    class_indices: np.ndarray  # int64 (N,) the class each map explains (the first of a contrast)
    probabilities: np.ndarray  # float32 (N, C) the model's output for each image
    layer_name: str
    method: str
    # float32 (N, C) the logits the maps were taken from, for open-set scoring; None when the
    # model has no logits and its output served as the class scores.
    logits: np.ndarray | None = None


@dataclass(frozen=True)
class Attributions:
    """What the compiled call returns for a batch, with each image's resolved target."""

    images: np.ndarray
    activations: np.ndarray  # (N, h, w, K)
    gradients: np.ndarray | None  # (N, h, w, K), None for a forward-only call
    scores: np.ndarray  # (N, C) logits
    probabilities: np.ndarray  # (N, C) model output
    coefficients: np.ndarray  # (N, C) each target's weights, the predicted class one-hot
    class_indices: np.ndarray  # (N,) int64


class CamEngine:
    """Class activation maps of one layer of a Keras model, on any Keras 3 backend.

    The model is cut at the layer with public functional slicing (``capture.slice_model``) and
    the gradient computation is compiled once by the backend's own autodiff
    (``autodiff.compile_cam``). The model is never modified or cloned. The class scores are
    the logits: the layer named "logits", else the input of a final softmax Activation, else
    a final Dense with fused softmax redone from its kernel and bias; only a model with none
    of these uses its output (logged as a warning).

    Args:
        model: a built Keras model with one (N, H, W, C) image input.
        layer_name: target layer name or "outer/inner" path; default the last layer whose
            output is spatial and larger than 1x1.

    Raises:
        LayerNotFoundError: the layer is missing or has no spatial output (lists candidates).
        ModelLoadError: a Sequential model that has never been built.
        SketchError: a model without a single image input.
    """

    def __init__(self, model: Any, layer_name: str | None = None) -> None:
        self.model = model
        self.layer_name, chain = resolve_target_layer(model, layer_name)
        input_shape = model.input_shape
        if not isinstance(input_shape, tuple) or len(input_shape) != 4:
            raise SketchError(
                f"GradCAM needs a model with one image input (N, H, W, C); got {input_shape}"
            )
        self.input_shape = tuple(input_shape[1:])
        self.classes = int(model.output_shape[-1])
        sliced = slice_model(model, chain, resolve_score_source(model))
        self._compiled = compile_cam(sliced, self.input_shape, self.classes)
        # Open-set scores need real logits; without them they fall back to log-probabilities.
        self.scores_are_logits = sliced.has_logits

    @property
    def input_size(self) -> tuple[int | None, ...]:
        """Spatial size of the inputs (None for a fully convolutional model)."""
        return self.input_shape[:2]

    def batch(self, images: Any) -> np.ndarray:
        """Images as a checked float32 (N, H, W, C) batch.

        Raises:
            InvalidImageError: bad shapes or non-finite values.
        """
        batch = to_batch(images)
        if len(self.input_shape) != 3 or any(
            want is not None and want != got for want, got in zip(self.input_shape, batch.shape[1:])
        ):
            raise InvalidImageError(
                f"images have shape {batch.shape[1:]}, the model expects {self.input_shape}; "
                "resize sketches with src.data.preprocess.to_model_input"
            )
        return batch

    def attributions(
        self, images: Any, targets: Any = None, gradients: bool = True
    ) -> Attributions:
        """Activations, gradients of each image's target score, scores and outputs.

        Args:
            images: anything ``batch`` accepts.
            targets: None (predicted class), a class index, a Target, or one per image.
            gradients: False runs the forward pass only (methods that need no gradients).

        Raises:
            InvalidImageError, UnknownClassError: bad images or targets.
        """
        batch = self.batch(images)
        chosen: list[Target] = as_targets(targets, len(batch))
        coefficients, predicted = target_arrays(chosen, self.classes)
        if gradients:
            activations, grads, scores, outputs = self._compiled.attributions(
                batch, coefficients, predicted
            )
        else:
            activations, scores, outputs = self._compiled.forward(batch)
            grads = None
        scores = scores.astype(np.float32, copy=False)
        top = np.argmax(scores, axis=-1)
        coefficients[predicted] = 0.0
        coefficients[np.flatnonzero(predicted), top[predicted]] = 1.0
        if predicted.all():  # every map explains its image's top class
            class_indices = top.astype(np.int64)
        else:
            class_indices = np.array(
                [target.main_class(row) for target, row in zip(chosen, scores)], dtype=np.int64
            )
        return Attributions(
            batch,
            activations.astype(np.float32, copy=False),
            None if grads is None else grads.astype(np.float32, copy=False),
            scores,
            outputs.astype(np.float32, copy=False),
            coefficients,
            class_indices,
        )

    def class_scores(self, images: np.ndarray) -> np.ndarray:
        """Logits (N, C) of a batch (forward only)."""
        return self._compiled.forward(images)[1]

    def scores_and_probabilities(self, images: Any) -> tuple[np.ndarray | None, np.ndarray]:
        """Logits (None when the model has none) and the model's output, both (N, C), from one
        forward pass."""
        _, scores, outputs = self._compiled.forward(self.batch(images))
        logits = np.asarray(scores, np.float32) if self.scores_are_logits else None
        return logits, np.asarray(outputs, np.float32)

    def probabilities(self, images: Any) -> np.ndarray:
        """The model's output (N, C) for a batch (forward only)."""
        return self._compiled.forward(self.batch(images))[2].astype(np.float32)

    def raw_maps(self, method: Method, attributions: Attributions, sign: float = 1.0) -> np.ndarray:
        """A method's raw (N, h, w) maps; ``sign`` -1 explains the opposite target."""
        gradients, coefficients = attributions.gradients, attributions.coefficients
        if sign != 1.0:  # the opposite target: negated copies (the usual case copies nothing)
            gradients = None if gradients is None else gradients * np.float32(sign)
            coefficients = coefficients * np.float32(sign)
        inputs = CamInputs(
            attributions.images,
            attributions.activations,
            gradients,
            coefficients,
            self.class_scores,
        )
        return method.raw_maps(inputs).astype(np.float32, copy=False)

    def explain(self, images: Any, method: Method, targets: Any = None) -> CamResult:
        """Maps of ``method`` for a batch.

        Raises:
            InvalidImageError, UnknownClassError: bad images or targets.
        """
        attributions = self.attributions(images, targets, gradients=method.needs_gradients)
        raw = self.raw_maps(method, attributions)
        return CamResult(
            heatmaps=normalise(raw, attributions.images.shape[1:3]),
            raw_maps=raw,
            class_indices=attributions.class_indices,
            probabilities=attributions.probabilities,
            layer_name=self.layer_name,
            method=method.name,
            logits=attributions.scores if self.scores_are_logits else None,
        )
