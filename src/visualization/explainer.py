"""The Explainer: a model, its labels and preprocessing, and compiled CAMs per (method, layer).

Every interface (CLI, web app, monitoring, sketch explanations) explains through one of these,
so a model is sliced and compiled once per layer, and each (method, layer) is built once.

Example:
    >>> explainer = Explainer.from_files("models/best_model.h5", "data/label_mapping.json")
    >>> result = explainer.explain(explainer.model_input(image), method="gradcam++")
    >>> explainer.predictor.predict(explainer.model_input(image), top_k=3)[0].class_name
"""

from __future__ import annotations

import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from src.data.labels import LabelMap
from src.inference.open_set import OpenSetVerdict, assess, load_open_set_rule
from src.inference.predictor import Predictor
from src.visualization.cam_engine import CamEngine, CamResult

DEFAULT_METHOD = "gradcam"
_BY_MODEL: weakref.WeakKeyDictionary[Any, Explainer] = weakref.WeakKeyDictionary()
_BY_MODEL_LOCK = threading.Lock()


class Explainer:
    """One model with its labels, forward pass and cached CAMs (safe to share between threads).

    Args:
        model: a built Keras model with one (N, H, W, C) image input.
        labels: the label map; default class indices as names.
        default_method: the method ``cam()`` uses when given None.
        default_layer: the layer ``cam()`` uses when given None (None: automatic).
        model_path: where the model came from (reported by the CLI).

    Raises:
        LabelMappingError: the model's outputs differ from the label count.
    """

    def __init__(
        self,
        model: Any,
        labels: LabelMap | None = None,
        default_method: str = DEFAULT_METHOD,
        default_layer: str | None = None,
        model_path: str | Path | None = None,
    ) -> None:
        classes = int(model.output_shape[-1])
        labels = labels if labels is not None else LabelMap(tuple(map(str, range(classes))))
        self.predictor = Predictor(model, labels)
        self.model = model
        self.labels = labels
        self.model_path = Path(model_path) if model_path is not None else None
        self.default_method = default_method
        self.default_layer = default_layer
        self.open_set_rule = load_open_set_rule(model_path)
        self._engines: dict[str | None, CamEngine] = {}
        self._cams: dict[tuple[str, str | None], Any] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_files(
        cls,
        model_path: str | Path,
        labels: LabelMap | str | Path,
        default_method: str = DEFAULT_METHOD,
        default_layer: str | None = None,
    ) -> Explainer:
        """Load a sketch model (``src.models.io.load_model``) with its label mapping.

        Raises:
            ModelLoadError, LabelMappingError: with the fix in the message.
        """
        predictor = Predictor.from_files(model_path, labels)
        return cls(predictor.model, predictor.labels, default_method, default_layer, model_path)

    @classmethod
    def for_model(cls, model: Any) -> Explainer:
        """The shared Explainer of a bare Keras model (built on first use, kept while the
        model lives): for callers that hold a model, like docs/usage_guide.md's monitoring snippet."""
        with _BY_MODEL_LOCK:
            if model not in _BY_MODEL:
                _BY_MODEL[model] = cls(model)
            return _BY_MODEL[model]

    @property
    def class_names(self) -> tuple[str, ...]:
        """Class names in output order."""
        return self.labels.class_names

    @property
    def input_size(self) -> int:
        """Side of the square model input."""
        return int(self.model.input_shape[1])

    def cam(self, method: str | None = None, layer: str | None = None) -> Any:
        """The ``GradCAM`` for (method, layer), built on first use; methods of one layer share
        its compiled engine.

        Raises:
            LayerNotFoundError: the layer is not in the model.
            ValueError: unknown method.
        """
        from src.visualization.gradcam import GradCAM

        method = method or self.default_method
        layer = layer if layer is not None else self.default_layer
        with self._lock:
            if (method, layer) not in self._cams:
                if layer not in self._engines:
                    self._engines[layer] = CamEngine(self.model, layer)
                self._cams[(method, layer)] = GradCAM(
                    self.model, method=method, engine=self._engines[layer]
                )
            return self._cams[(method, layer)]

    @property
    def gradcam(self) -> Any:
        """The default (method, layer) ``GradCAM``."""
        return self.cam()

    def model_input(self, image: Any) -> np.ndarray:
        """Any image (PIL, array, either polarity) as the model's (H, W, 1) input."""
        from src.data.preprocess import to_model_input

        return to_model_input(image, size=self.input_size)

    def open_set(self, result: CamResult) -> list[OpenSetVerdict]:
        """The "not sure" verdict for each image of ``result`` (``self.open_set_rule``)."""
        return assess(self.open_set_rule, result.logits, result.probabilities)

    def open_set_of(self, images: Any) -> list[OpenSetVerdict]:
        """The "not sure" verdict for each image, from a forward pass of its class scores."""
        logits, probabilities = self.cam().engine.scores_and_probabilities(images)
        return assess(self.open_set_rule, logits, probabilities)

    def probabilities(self, images: Any) -> np.ndarray:
        """Output probabilities (N, C): one compiled forward pass."""
        return self.predictor.probabilities(images)

    def explain(
        self,
        images: Any,
        targets: Any = None,
        method: str | None = None,
        layer: str | None = None,
    ) -> CamResult:
        """Maps for a batch: ``targets`` as in ``GradCAM.explain`` (None: predicted class)."""
        return self.cam(method, layer).explain(images, targets)  # type: ignore[no-any-return]

    def contrast(
        self,
        images: Any,
        class_a: Any,
        class_b: Any,
        method: str | None = None,
        layer: str | None = None,
    ) -> Any:
        """ "Why A and not B" maps (``src.explain.contrast.ContrastResult``).

        Raises:
            SketchError: for a forward-only method.
        """
        from src.explain.contrast import ContrastiveCAM

        return ContrastiveCAM(self.cam(method, layer)).explain(images, class_a, class_b)
