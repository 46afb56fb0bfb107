"""Grad-CAM for any Keras 3 model: one compiled, batched computation; arrays in, arrays out.

Example:
    >>> model = load_model_for_gradcam("models/best_model.h5")
    >>> gradcam = GradCAM(model)                      # target layer found automatically
    >>> result = gradcam.explain(images)              # images: (N, 64, 64, 1) float32
    >>> result.heatmaps.shape                         # (N, 64, 64), each in [0, 1]
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from src.data.input_spec import InputSpec
from src.errors import SketchError
from src.inference.ranking import top_classes
from src.visualization.cam_engine import CamEngine, CamResult
from src.visualization.cam_methods import METHODS, method_named
from src.visualization.target_layers import describe_layers, list_conv_layers
from src.visualization.targets import ClassSum, ClassTarget, Contrast, Predicted

logger = logging.getLogger(__name__)

__all__ = [
    "METHODS",
    "CamResult",
    "ClassSum",
    "ClassTarget",
    "Contrast",
    "GradCAM",
    "Predicted",
    "describe_layers",
    "list_conv_layers",
    "load_model_for_gradcam",
]


def load_model_for_gradcam(model_path: str | Path, safe_mode: bool = True) -> Any:
    """Load a ``.h5`` or ``.keras`` model ready for ``GradCAM``.

    Raises:
        ModelLoadError: missing file, not a Keras model, or unsafe (Lambda) layers.
    """
    from src.models.io import load_model

    return load_model(model_path, safe_mode=safe_mode)


class GradCAM:
    """Class activation maps (Grad-CAM and six relatives) for a Keras model: docs/usage_guide.md's API.

    A thin facade over ``CamEngine`` (one target layer, compiled once on the running Keras
    backend) and a method object (``cam_methods``). The model is never modified or cloned.
    Gradients are of each image's target logit (pre-softmax), for the whole batch at once.

    Args:
        model: a built Keras model (Functional, Sequential, or with nested models).
        layer_name: target layer name or "outer/inner" path; default: the last layer whose
            output is spatial and larger than 1x1.
        method: one of ``METHODS`` (gradcam, gradcam++, hirescam, layercam, xgradcam,
            scorecam, eigencam).
        score_cam_batch_size: masked images per forward pass in Score-CAM (memory knob).
        engine: a ``CamEngine`` already built for this model and layer (shared by an
            ``Explainer`` between methods); ``layer_name`` is then ignored.
        input_spec: the model's input convention (``src.data.input_spec.InputSpec``), used by
            ``model_input`` and to draw what the model sees; default: resolved on first use from
            the model, the ``model_card.json`` beside the file it was loaded from, else the
            defaults. Arrays given to ``explain`` are always fed as they are.

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
        >>> spec = resolve_input_spec(model, ink="light", value_range="0-1")
        >>> gradcam = GradCAM(model, input_spec=spec)      # a model fed Google's bitmaps
        >>> result = gradcam.explain(gradcam.model_input(Image.open("sketch.png")))
    """

    def __init__(
        self,
        model: Any,
        layer_name: str | None = None,
        method: str = "gradcam",
        score_cam_batch_size: int = 64,
        engine: CamEngine | None = None,
        input_spec: InputSpec | None = None,
    ) -> None:
        # The method first: a typo is reported before the model is sliced and compiled.
        self.method_object = method_named(method, score_cam_batch_size)
        self.model = model
        self.method = method
        self.score_cam_batch_size = score_cam_batch_size
        self.engine = engine if engine is not None else CamEngine(model, layer_name)
        self.layer_name = self.engine.layer_name
        # Spatial size of the inputs (None for fully convolutional models: taken per batch).
        self.input_size = self.engine.input_size
        self._input_spec = input_spec

    @property
    def input_spec(self) -> InputSpec:
        """The model's input convention (given, else resolved on first use).

        Raises:
            ModelLoadError: an input shape or card convention SketchCAM cannot feed.
        """
        if self._input_spec is None:
            from src.models.io import input_spec_of

            self._input_spec = input_spec_of(self.model)
        return self._input_spec

    def model_input(self, image: Any) -> np.ndarray:
        """A sketch (PIL image, array of either polarity) as this model's input (H, W, C), in
        its convention: ``src.data.preprocess.to_model_input`` with ``input_spec``.

        Raises:
            InvalidImageError: an unusable image.
        """
        from src.data.preprocess import to_model_input

        return to_model_input(image, spec=self.input_spec)

    def _display(self, image: np.ndarray) -> np.ndarray:
        """The picture to draw under a map: what the model sees when a convention was given,
        else the caller's own array (the guide feeds arrays it made itself)."""
        return image if self._input_spec is None else self._input_spec.decode(image)

    def explain(self, images: Any, class_indices: Any = None) -> CamResult:
        """Maps for a batch of images in one compiled call.

        Nothing drawn: an input with no ink (``src.data.preprocess.is_empty`` of its ink)
        still gets arrays here, since the model ranks classes for a blank image too; they
        describe nothing. Check ``Explainer.empty_inputs`` first, as every interface does, and
        answer "nothing drawn" instead.

        Args:
            images: (H, W), (H, W, C), (1, H, W, C) or (N, H, W, C) float input.
            class_indices: None (each image's predicted class), one int or target for all
                (``targets.ClassTarget``, ``Contrast``, ``ClassSum``), or one per image.

        Returns:
            CamResult with heatmaps (N, H, W) float32 in [0, 1].

        Raises:
            InvalidImageError: bad shapes or non-finite values.
            UnknownClassError: class index out of range.
        """
        return self.engine.explain(images, self.method_object, class_indices)

    def predict(self, images: Any) -> np.ndarray:
        """The model's output probabilities (N, C) for a batch: one compiled forward pass."""
        return self.engine.probabilities(images)

    def generate_gradcam(self, image: Any, class_idx: int | None = None) -> np.ndarray:
        """The normalised heatmap: (H, W) for one image, (N, H, W) for a batch of N > 1.

        Nothing drawn: an input with no ink (``src.data.preprocess.is_empty`` of its ink)
        still gets arrays here, since the model ranks classes for a blank image too; they
        describe nothing. Check ``Explainer.empty_inputs`` first, as every interface does, and
        answer "nothing drawn" instead.

        Args:
            image: (H, W), (H, W, 1), (1, H, W, 1) or (N, H, W, 1).
            class_idx: class to explain; default the predicted class.
        """
        heatmaps = self.explain(image, class_idx).heatmaps
        return heatmaps[0] if len(heatmaps) == 1 else heatmaps

    def _one_image(self, image_tensor: Any, caller: str) -> np.ndarray:
        """A batch of exactly one checked image."""
        batch = self.engine.batch(image_tensor)
        if len(batch) != 1:
            raise SketchError(
                f"{caller} takes one image, got {len(batch)}; use explain() for batches"
            )
        return batch

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

        Nothing drawn: an input with no ink (``src.data.preprocess.is_empty`` of its ink)
        still gets arrays here, since the model ranks classes for a blank image too; they
        describe nothing. Check ``Explainer.empty_inputs`` first, as every interface does, and
        answer "nothing drawn" instead.

        Returns:
            dict with predicted_class (name if class_names given, else index),
            predicted_class_index, confidence, predictions (probabilities), heatmap (H, W),
            overlay (H, W, 3) uint8, target_class_index, target_confidence, layer_name, method.
        """
        from src.visualization.overlay import overlay_heatmap

        batch = self._one_image(image_tensor, "visualize_prediction")
        names = _check_class_names(class_names, self.engine.classes)
        result = self.explain(batch, class_idx)
        probabilities = result.probabilities[0]
        predicted = int(top_classes(probabilities, 1)[0])
        target = int(result.class_indices[0])
        picture = self._display(batch[0])
        overlay = overlay_heatmap(picture, result.heatmaps[0], alpha=alpha, colormap=colormap)
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
            # Drawing lives in the figures module (the only one that imports pyplot).
            from src.visualization.figures import save_prediction_figure

            save_prediction_figure(picture, summary, save_path, show_plot, colormap)
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

        Nothing drawn: an input with no ink (``src.data.preprocess.is_empty`` of its ink)
        still gets arrays here, since the model ranks classes for a blank image too; they
        describe nothing. Check ``Explainer.empty_inputs`` first, as every interface does, and
        answer "nothing drawn" instead.

        Writes ``gradcam_top{rank}_{class}.png`` into ``save_dir`` when given (class names made
        safe for file names, see ``src.utils.filenames.safe_filename``).

        Returns:
            One dict per rank: rank, class_name, class_index, confidence, heatmap, overlay
            (and path when saved).
        """
        from src.visualization.overlay import overlay_heatmap

        batch = self._one_image(image_tensor, "analyze_top_predictions")
        names = _check_class_names(class_names, self.engine.classes)
        if top_k < 1:
            raise ValueError(f"top_k must be at least 1, got {top_k}")
        probabilities = self.predict(batch)[0]
        order = top_classes(probabilities, top_k)
        result = self.explain(np.repeat(batch, len(order), axis=0), order)
        picture = self._display(batch[0])
        ranked = []
        for rank, (class_index, heatmap) in enumerate(zip(order, result.heatmaps), start=1):
            name = names[class_index] if names else str(int(class_index))
            overlay = overlay_heatmap(picture, heatmap, alpha=alpha, colormap=colormap)
            entry = {
                "rank": rank,
                "class_name": name,
                "class_index": int(class_index),
                "confidence": float(probabilities[class_index]),
                "heatmap": heatmap,
                "overlay": overlay,
            }
            if save_dir is not None:
                from src.visualization.figures import save_top_prediction_figure

                entry["path"] = str(
                    save_top_prediction_figure(
                        picture,
                        heatmap,
                        overlay,
                        rank,
                        name,
                        entry["confidence"],
                        save_dir,
                        colormap,
                    )
                )
            ranked.append(entry)
        return ranked


def _check_class_names(class_names: Any, num_classes: int) -> list[str] | None:
    """Class names as a list, checked against the model's number of outputs."""
    if class_names is None:
        return None
    names = [str(name) for name in class_names]
    if len(names) != num_classes:
        # docs/usage_guide.md's snippet passes placeholder names; a wrong name would be worse than none,
        # so classes are reported by index and the user is told how to get names.
        logger.warning(
            "got %d class names for a model with %d outputs; reporting class indices instead "
            "(pass LabelMap.load('data/label_mapping.json').class_names)",
            len(names),
            num_classes,
        )
        return None
    return names
