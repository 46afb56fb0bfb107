"""The explainer service: a model, its labels, input convention and open-set rule, one
compiled forward pass, and compiled CAMs per (method, layer).

Every interface (CLI, web app, batch job, monitoring) explains and predicts through one of
these, so a model is sliced and compiled once per layer, each (method, layer) is built once,
and prediction shares the CAM engine's forward pass instead of compiling a second one.

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

from src.data.input_spec import InputSpec, resolve_input_spec
from src.data.labels import LabelMap
from src.explain.contrast import ContrastiveCAM, ContrastResult
from src.inference.open_set import OpenSetVerdict, assess, load_open_set_rule
from src.inference.predictor import Predictor, load_model_and_labels
from src.visualization.cam_engine import CamEngine, CamResult
from src.visualization.cam_methods import DEFAULT_METHOD
from src.visualization.gradcam import GradCAM

_BY_MODEL: weakref.WeakKeyDictionary[Any, Explainer] = weakref.WeakKeyDictionary()
_BY_MODEL_LOCK = threading.Lock()


class Explainer:
    """One model with its labels, forward pass and cached CAMs (safe to share between threads).

    Args:
        model: a built Keras model with one (N, H, W, C) image input.
        labels: the label map; default class indices as names.
        default_method: the method ``cam()`` uses when given None.
        default_layer: the layer ``cam()`` uses when given None (None: automatic).
        model_path: where the model came from (reported by the CLI; its model card may hold
            the input convention).
        input_spec: the model's input convention; default resolved from the model, the card
            beside ``model_path`` (or beside the file ``load_model`` read it from) and the
            defaults (``src.data.input_spec.resolve_input_spec``).

    Raises:
        LabelMappingError: the model's outputs differ from the label count.
        ModelLoadError: an input shape or card convention SketchCAM cannot feed.
    """

    def __init__(
        self,
        model: Any,
        labels: LabelMap | None = None,
        default_method: str = DEFAULT_METHOD,
        default_layer: str | None = None,
        model_path: str | Path | None = None,
        input_spec: InputSpec | None = None,
    ) -> None:
        classes = int(model.output_shape[-1])
        labels = labels if labels is not None else LabelMap(tuple(map(str, range(classes))))
        # Predictions run the default layer's compiled forward: one compilation per model.
        self.predictor = Predictor(model, labels, forward=self._forward)
        self.model = model
        self.labels = labels
        self.model_path = Path(model_path) if model_path is not None else None
        self.default_method = default_method
        self.default_layer = default_layer
        self.open_set_rule = load_open_set_rule(model_path)
        # Resolved on first use (from the card beside the model file, else by the GradCAM), so
        # a model SketchCAM cannot feed still gets its scores and maps from ready-made inputs.
        self._input_spec = input_spec
        self._engines: dict[str | None, CamEngine] = {}
        self._cams: dict[tuple[str, str | None], GradCAM] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_files(
        cls,
        model_path: str | Path,
        labels: LabelMap | str | Path,
        default_method: str = DEFAULT_METHOD,
        default_layer: str | None = None,
        ink: str | None = None,
        value_range: str | None = None,
    ) -> Explainer:
        """Load a sketch model (``src.models.io.load_model``) with its label mapping.

        Args:
            ink: ``--ink`` (None: the model card's, else the default).
            value_range: ``--value_range`` (likewise).

        Raises:
            ModelLoadError, LabelMappingError: with the fix in the message.
        """
        model, label_map = load_model_and_labels(model_path, labels)
        spec = resolve_input_spec(model, ink, value_range, model_path)
        return cls(model, label_map, default_method, default_layer, model_path, spec)

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
    def input_spec(self) -> InputSpec:
        """The model's input convention: size, channels, ink and value range (a bare model's
        is its GradCAM's, resolved there on first use).

        Raises:
            ModelLoadError: an input shape or card convention SketchCAM cannot feed.
        """
        if self._input_spec is None and self.model_path is not None:
            self._input_spec = resolve_input_spec(self.model, model_path=self.model_path)
        if self._input_spec is not None:
            return self._input_spec
        return self.gradcam.input_spec

    @property
    def input_size(self) -> int:
        """Height of the model input (``input_spec`` has the whole shape and convention)."""
        return self.input_spec.height

    def cam(self, method: str | None = None, layer: str | None = None) -> GradCAM:
        """The ``GradCAM`` for (method, layer), built on first use; methods of one layer share
        its compiled engine.

        Raises:
            LayerNotFoundError: the layer is not in the model.
            ValueError: unknown method.
        """
        method = method or self.default_method
        layer = layer if layer is not None else self.default_layer
        with self._lock:
            if (method, layer) not in self._cams:
                if layer not in self._engines:
                    self._engines[layer] = CamEngine(self.model, layer)
                self._cams[(method, layer)] = GradCAM(
                    self.model,
                    method=method,
                    engine=self._engines[layer],
                    input_spec=self._input_spec,
                )
            return self._cams[(method, layer)]

    @property
    def gradcam(self) -> GradCAM:
        """The default (method, layer) ``GradCAM``."""
        return self.cam()

    def model_input(self, image: Any = None, strokes: Any = None) -> np.ndarray:
        """The model's (H, W, C) input, in its own convention (``input_spec``), from strokes
        (preferred) or an image (a file path, encoded bytes, PIL image or array, either
        polarity): the one place an interface turns a sketch into model input.

        Raises:
            InvalidImageError: neither given, an unreadable image or malformed strokes.
        """
        from src.data.preprocess import load_image, strokes_to_model_input, to_model_input
        from src.errors import InvalidImageError

        if strokes is not None:
            return strokes_to_model_input(strokes, spec=self.input_spec)
        if image is None:
            raise InvalidImageError("no sketch given: pass an image or strokes")
        if isinstance(image, (str, Path, bytes)):
            image = load_image(image)
        return to_model_input(image, spec=self.input_spec)

    def seen(self, model_input: np.ndarray) -> np.ndarray:
        """What the model sees in its input(s) ``(..., H, W, C)``: ink intensities
        ``(..., H, W)`` in [0, 1] (``InputSpec.decode``), the picture every display draws."""
        return self.input_spec.decode(model_input)

    def empty_inputs(self, images: Any) -> np.ndarray:
        """Which model inputs hold no ink (``src.data.preprocess.is_empty``): (N,) bool.

        Every interface asks this before classifying: an empty input gets "nothing drawn",
        never a class or a map. The input is read back to ink intensities in the model's own
        convention (``input_spec.decode``) when the service has one, else it is that ink
        already (light on dark, 0-1).
        """
        from src.data.preprocess import is_empty, to_batch
        from src.errors import ModelLoadError

        try:
            spec: InputSpec | None = self.input_spec
        except ModelLoadError:  # a model outside 16-512 px has no convention: canonical ink
            spec = None
        batch = to_batch(images)
        ink = spec.decode(batch) if spec is not None else batch
        return np.array([is_empty(picture) for picture in ink], dtype=bool)

    def open_set(self, result: CamResult) -> list[OpenSetVerdict]:
        """The "not sure" verdict for each image of ``result`` (``self.open_set_rule``)."""
        return assess(self.open_set_rule, result.logits, result.probabilities)

    def classify(self, images: Any) -> tuple[np.ndarray, list[OpenSetVerdict]]:
        """Output probabilities (N, C) and each image's "not sure" verdict, from one forward
        pass of the default layer's engine (no gradients)."""
        logits, probabilities = self.cam().engine.scores_and_probabilities(images)
        return probabilities, assess(self.open_set_rule, logits, probabilities)

    def open_set_of(self, images: Any) -> list[OpenSetVerdict]:
        """The "not sure" verdict for each image, from a forward pass of its class scores."""
        return self.classify(images)[1]

    def probabilities(self, images: Any) -> np.ndarray:
        """Output probabilities (N, C): one compiled forward pass."""
        return self.predictor.probabilities(images)

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        """The model's output for a batch through the default layer's compiled engine."""
        return self.cam().engine.probabilities(batch)

    def explain(
        self,
        images: Any,
        targets: Any = None,
        method: str | None = None,
        layer: str | None = None,
    ) -> CamResult:
        """Maps for a batch: ``targets`` as in ``GradCAM.explain`` (None: predicted class)."""
        return self.cam(method, layer).explain(images, targets)

    def contrast(
        self,
        images: Any,
        class_a: Any,
        class_b: Any,
        method: str | None = None,
        layer: str | None = None,
    ) -> ContrastResult:
        """ "Why A and not B" maps.

        Raises:
            SketchError: for a forward-only method.
        """
        return ContrastiveCAM(self.cam(method, layer)).explain(images, class_a, class_b)
