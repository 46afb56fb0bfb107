"""Grad-CAM for any Keras 3 model: one compiled, batched computation; arrays in, arrays out.

Example:
    >>> model = load_model_for_gradcam("models/best_model.h5")
    >>> gradcam = GradCAM(model)                      # target layer found automatically
    >>> result = gradcam.explain(images)              # images: (N, 64, 64, 1) float32
    >>> result.heatmaps.shape                         # (N, 64, 64), each in [0, 1]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.data.preprocess import to_batch
from src.errors import InvalidImageError, SketchError, UnknownClassError
from src.visualization.score_cam import score_cam_maps
from src.visualization.target_layers import (
    describe_layers,
    list_conv_layers,
    resolve_score_source,
    resolve_target_layer,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CamResult",
    "GradCAM",
    "describe_layers",
    "generate_gradcam_analysis",
    "list_conv_layers",
    "load_model_for_gradcam",
    "log_attention_pattern",
]


@dataclass(frozen=True)
class CamResult:
    """Maps for a batch: ``heatmaps[i]`` explains ``class_indices[i]`` for image i."""

    heatmaps: np.ndarray  # float32 (N, H, W) in [0, 1], upsampled to the input size
    raw_maps: np.ndarray  # float32 (N, h, w) at the layer's resolution, before ReLU and scaling
    class_indices: np.ndarray  # int64 (N,) the class each map explains
    probabilities: np.ndarray  # float32 (N, C) the model's output for each image
    layer_name: str
    method: str


def load_model_for_gradcam(model_path: str | Path, safe_mode: bool = True) -> Any:
    """Load a ``.h5`` or ``.keras`` model ready for ``GradCAM``.

    Raises:
        ModelLoadError: missing file, not a Keras model, or unsafe (Lambda) layers.
    """
    from src.models.io import load_model

    return load_model(model_path, safe_mode=safe_mode)


class GradCAM:
    """Class activation maps (Grad-CAM and six relatives) for a Keras model.

    The model is never modified or cloned: its own graph is walked once per call inside one
    ``tf.function``, capturing the target layer and the logits. Gradients are of each image's
    own class logit (pre-softmax), taken for the whole batch at once. The logits are the layer
    named "logits", else the input of a final softmax/sigmoid Activation, else recomputed from
    the kernel and bias of a final Dense layer with a fused softmax/sigmoid (also inside a
    nested model); only a model with none of these uses its output as the score (logged).

    Args:
        model: a built Keras model (Functional, Sequential, or with nested models).
        layer_name: target layer name or "outer/inner" path; default: the last layer whose
            output is spatial and larger than 1x1.
        method: one of ``METHODS`` (gradcam, gradcam++, hirescam, layercam, xgradcam,
            scorecam, eigencam).
        score_cam_batch_size: masked images per forward pass in Score-CAM (memory knob).

    Raises:
        LayerNotFoundError: if ``layer_name`` is not in the model or has no spatial output (the
            message lists candidates).
        ModelLoadError: for a Sequential model that has never been built.
        SketchError: for a model without a single (N, H, W, C) image input.
        ValueError: for an unknown method.

    Example:
        >>> gradcam = GradCAM(model, layer_name="last_conv", method="gradcam++")
        >>> result = gradcam.explain(images, class_indices=[3, 3, 7])
        >>> result.heatmaps.shape, result.raw_maps.shape   # (3, 64, 64), (3, 8, 8)
    """

    def __init__(
        self,
        model: Any,
        layer_name: str | None = None,
        method: str = "gradcam",
        score_cam_batch_size: int = 64,
    ) -> None:
        import tensorflow as tf

        from src.visualization import cam_methods
        from src.visualization.forward import build_capturing_forward

        if method not in cam_methods.METHODS:
            raise ValueError(
                f"unknown method {method!r}; choose one of {', '.join(cam_methods.METHODS)}"
            )
        if score_cam_batch_size < 1:
            raise ValueError(f"score_cam_batch_size must be positive, got {score_cam_batch_size}")
        self.model = model
        self.method = method
        self.score_cam_batch_size = score_cam_batch_size
        self.layer_name, chain = resolve_target_layer(model, layer_name)
        self._forward = build_capturing_forward(model, chain, resolve_score_source(model))
        input_shape = model.input_shape
        if not isinstance(input_shape, tuple) or len(input_shape) != 4:
            raise SketchError(
                f"GradCAM needs a model with one image input (N, H, W, C); got {input_shape}"
            )
        # Spatial size of the inputs (None for fully convolutional models: taken per batch).
        self.input_size = input_shape[1:3]
        spec = tf.TensorSpec((None, *input_shape[1:]), tf.float32)
        self._explain_graph = tf.function(
            self._explain_batch, input_signature=[spec, tf.TensorSpec((None,), tf.int64)]
        )
        self._scores_graph = tf.function(
            self._scores, input_signature=[spec, tf.TensorSpec((None,), tf.int64)]
        )
        # Forward only: ranking classes needs no gradients (half the work of explain).
        self._outputs_graph = tf.function(
            lambda images: self._forward(images)[2], input_signature=[spec]
        )

    def _explain_batch(self, images: Any, class_indices: Any) -> tuple[Any, ...]:
        """Compiled: gradients of each image's class logit, raw and final maps, targets, outputs.

        For Score-CAM it returns the activations, targets and outputs instead.
        """
        import tensorflow as tf

        from src.visualization import cam_methods

        with tf.GradientTape() as tape:
            # Watching the input keeps the activations on the tape whatever the weights'
            # trainable flags (a frozen backbone's variables may not be watched).
            tape.watch(images)
            activations, scores, outputs = self._forward(images)
            # A negative index means "explain the predicted class".
            targets = tf.where(class_indices < 0, tf.argmax(scores, axis=-1), class_indices)
            # Each image's own class logit; the sum separates because images are independent.
            selected = tf.gather(scores, targets, axis=1, batch_dims=1)
        if self.method in cam_methods.GRADIENT_FORMULAS:
            gradients = tape.gradient(selected, activations)
            raw = cam_methods.GRADIENT_FORMULAS[self.method](activations, gradients)
        elif self.method == "eigencam":
            raw = cam_methods.eigencam(activations)
        else:
            # Score-CAM weights need masked forwards (_score_cam): hand the activations out.
            return activations, targets, outputs
        heatmaps = cam_methods.normalise(raw, tf.shape(images)[1:3])
        return raw, heatmaps, targets, outputs

    def _scores(self, images: Any, class_indices: Any) -> Any:
        """Compiled: the logit of ``class_indices[i]`` for image i (Score-CAM's masked forwards)."""
        import tensorflow as tf

        _, scores, _ = self._forward(images)
        return tf.gather(scores, class_indices, axis=1, batch_dims=1)

    def explain(self, images: Any, class_indices: Any = None) -> CamResult:
        """Maps for a batch of images in one compiled call.

        Args:
            images: (H, W), (H, W, C), (1, H, W, C) or (N, H, W, C) float input.
            class_indices: None (each image's predicted class), one int for all, or one per image.

        Returns:
            CamResult with heatmaps (N, H, W) float32 in [0, 1].

        Raises:
            InvalidImageError: bad shapes or non-finite values.
            UnknownClassError: class index out of range.
        """
        batch = to_batch(images)
        expected = tuple(self.model.input_shape[1:])
        if len(expected) != 3 or any(
            want is not None and want != got for want, got in zip(expected, batch.shape[1:])
        ):
            raise InvalidImageError(
                f"images have shape {batch.shape[1:]}, the model expects {expected}; "
                "resize sketches with src.data.preprocess.to_model_input"
            )
        targets = self._class_index_array(class_indices, len(batch))
        if self.method == "scorecam":
            activations, chosen, outputs = (
                tensor.numpy() for tensor in self._explain_graph(batch, targets)
            )
            raw = score_cam_maps(
                self._scores_graph, batch, activations, chosen, self.score_cam_batch_size
            )
            heatmaps = self._normalise(raw, batch.shape[1:3])
        else:
            raw, heatmaps, chosen, outputs = (
                tensor.numpy() for tensor in self._explain_graph(batch, targets)
            )
        return CamResult(
            heatmaps=heatmaps.astype(np.float32),
            raw_maps=raw.astype(np.float32),
            class_indices=chosen.astype(np.int64),
            probabilities=outputs.astype(np.float32),
            layer_name=self.layer_name,
            method=self.method,
        )

    def _normalise(self, raw: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
        """Eager ReLU/upsample/scale, for maps computed outside the compiled call."""
        from src.visualization.cam_methods import normalise

        return np.asarray(normalise(raw.astype(np.float32), tuple(size)))

    def _class_index_array(self, class_indices: Any, count: int) -> np.ndarray:
        """Normalise the class_indices argument to an int64 array of length ``count``."""
        num_classes = int(self.model.output_shape[-1])
        if class_indices is None:
            return np.full(count, -1, np.int64)
        array = np.atleast_1d(np.asarray(class_indices, dtype=np.int64))
        if array.size == 1:
            array = np.full(count, int(array[0]), np.int64)
        if array.shape != (count,):
            raise UnknownClassError(f"got {array.size} class indices for {count} images")
        if array.min() < 0 or array.max() >= num_classes:
            raise UnknownClassError(
                f"class index out of range 0..{num_classes - 1}: {array.tolist()[:10]}"
            )
        return array

    def predict(self, images: Any) -> np.ndarray:
        """The model's output probabilities (N, C) for a batch: one compiled forward pass."""
        return np.asarray(self._outputs_graph(to_batch(images)), dtype=np.float32)

    def generate_gradcam(self, image: Any, class_idx: int | None = None) -> np.ndarray:
        """The normalised heatmap: (H, W) for one image, (N, H, W) for a batch of N > 1.

        Args:
            image: (H, W), (H, W, 1), (1, H, W, 1) or (N, H, W, 1).
            class_idx: class to explain; default the predicted class.
        """
        heatmaps = self.explain(image, class_idx).heatmaps
        return heatmaps[0] if len(heatmaps) == 1 else heatmaps

    def visualize_prediction(
        self,
        image_tensor: Any,
        class_names: list[str] | tuple[str, ...] | None = None,
        save_path: str | Path | None = None,
        show_plot: bool = False,
        class_idx: int | None = None,
        alpha: float = 0.4,
        colormap: str = "jet",
    ) -> dict[str, Any]:
        """Explain the prediction for one image and optionally save the three-panel figure.

        Returns:
            dict with predicted_class (name if class_names given, else index),
            predicted_class_index, confidence, predictions (probabilities), heatmap (H, W),
            overlay (H, W, 3) uint8, target_class_index, target_confidence, layer_name, method.
        """
        from src.visualization.overlay import overlay_heatmap

        batch = to_batch(image_tensor)
        if len(batch) != 1:
            raise SketchError(
                f"visualize_prediction takes one image, got {len(batch)}; use explain() for batches"
            )
        names = _check_class_names(class_names, int(self.model.output_shape[-1]))
        result = self.explain(batch, class_idx)
        probabilities = result.probabilities[0]
        predicted = int(np.argmax(probabilities))
        target = int(result.class_indices[0])
        overlay = overlay_heatmap(batch[0], result.heatmaps[0], alpha=alpha, colormap=colormap)
        summary = {
            "predicted_class": names[predicted] if names else predicted,
            "predicted_class_index": predicted,
            "confidence": float(probabilities[predicted]),
            "predictions": probabilities,
            "heatmap": result.heatmaps[0],
            "overlay": overlay,
            "target_class_index": target,
            "target_class": names[target] if names else target,
            "target_confidence": float(probabilities[target]),
            "layer_name": self.layer_name,
            "method": self.method,
        }
        if save_path is not None or show_plot:
            from src.visualization.figures import save_gradcam_figure

            title = f"{summary['target_class']} ({summary['target_confidence']:.1%})"
            save_gradcam_figure(
                batch[0], result.heatmaps[0], overlay, title, save_path, show_plot, colormap
            )
        return summary

    def analyze_top_predictions(
        self,
        image_tensor: Any,
        class_names: list[str] | tuple[str, ...] | None = None,
        top_k: int = 3,
        save_dir: str | Path | None = None,
        alpha: float = 0.4,
        colormap: str = "jet",
    ) -> list[dict[str, Any]]:
        """Maps for the top-k classes of one image, computed in one batched call.

        Writes ``gradcam_top{rank}_{class}.png`` into ``save_dir`` when given (class names made
        safe for file names, see ``src.utils.filenames.safe_filename``).

        Returns:
            One dict per rank: rank, class_name, class_index, confidence, heatmap, overlay.
        """
        from src.utils.filenames import safe_filename
        from src.visualization.overlay import overlay_heatmap

        batch = to_batch(image_tensor)
        if len(batch) != 1:
            raise SketchError(f"analyze_top_predictions takes one image, got {len(batch)}")
        num_classes = int(self.model.output_shape[-1])
        names = _check_class_names(class_names, num_classes)
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        probabilities = self.predict(batch)[0]
        order = np.argsort(-probabilities, kind="stable")[: min(top_k, num_classes)]
        result = self.explain(np.repeat(batch, len(order), axis=0), order)
        ranked = []
        for rank, (class_index, heatmap) in enumerate(zip(order, result.heatmaps), start=1):
            name = names[class_index] if names else str(int(class_index))
            overlay = overlay_heatmap(batch[0], heatmap, alpha=alpha, colormap=colormap)
            entry = {
                "rank": rank,
                "class_name": name,
                "class_index": int(class_index),
                "confidence": float(probabilities[class_index]),
                "heatmap": heatmap,
                "overlay": overlay,
            }
            if save_dir is not None:
                from src.visualization.figures import save_gradcam_figure

                path = Path(save_dir) / f"gradcam_top{rank}_{safe_filename(name)}.png"
                title = f"#{rank} {name} ({entry['confidence']:.1%})"
                save_gradcam_figure(batch[0], heatmap, overlay, title, path, False, colormap)
                entry["path"] = str(path)
            ranked.append(entry)
        return ranked


def _check_class_names(class_names: Any, num_classes: int) -> list[str] | None:
    """Class names as a list, checked against the model's number of outputs."""
    if class_names is None:
        return None
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        # The guide's snippet passes placeholder names; a wrong name would be worse than none,
        # so classes are reported by index and the user is told how to get names.
        logger.warning(
            "got %d class names for a model with %d outputs; reporting class indices instead "
            "(pass LabelMap.load('data/label_mapping.json').class_names)",
            len(names),
            num_classes,
        )
        return None
    return names


def generate_gradcam_analysis(image: Any, model: Any, **kwargs: Any) -> dict[str, Any]:
    """Monitoring helper from the guide: a compact analysis of one image (see src.monitoring)."""
    from src.monitoring.attention_log import generate_gradcam_analysis as analyse

    return analyse(image, model, **kwargs)


def log_attention_pattern(result: dict[str, Any], image_id: str, **kwargs: Any) -> Any:
    """Monitoring helper from the guide: append an analysis to the attention log."""
    from src.monitoring.attention_log import log_attention_pattern as log

    return log(result, image_id, **kwargs)
