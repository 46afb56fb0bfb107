"""Predictor: a model and its labels, one compiled forward pass (on the running Keras backend),
ranked predictions out."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.data.labels import LabelMap
from src.data.preprocess import to_batch
from src.inference.ranking import top_classes


@dataclass(frozen=True)
class RankedClass:
    """One class in a ranking."""

    rank: int
    class_index: int
    class_name: str
    confidence: float


@dataclass(frozen=True)
class Prediction:
    """The model's answer for one image: the top class and the top-k ranking."""

    class_index: int
    class_name: str
    confidence: float
    top: tuple[RankedClass, ...]
    probabilities: np.ndarray


def rank_classes(
    probabilities: np.ndarray, labels: LabelMap, top_k: int
) -> tuple[RankedClass, ...]:
    """The ``top_k`` classes of one probability vector, most likely first (ties by index)."""
    order = top_classes(probabilities, top_k)
    return tuple(
        RankedClass(rank, int(index), labels.name_of(int(index)), float(probabilities[index]))
        for rank, index in enumerate(order, start=1)
    )


def load_model_and_labels(
    model_path: str | Path,
    labels: LabelMap | str | Path,
    declared_output: str | None = None,
    image_size: int | None = None,
) -> tuple[Any, LabelMap]:
    """A sketch model (``src.models.io.load_model``, input shape checked) and its label map.

    A model ending in raw scores gets a softmax on top, so confidences are probabilities.

    Args:
        model_path: ``.h5`` or ``.keras`` file taking (H, W, 1 or 3) sketches.
        labels: a loaded LabelMap, or the path of its JSON file.
        declared_output: "probabilities" or "logits" when the model cannot tell; default the
            ``"output"`` field of the model card beside the model.
        image_size: the square side the caller feeds, when it can feed only that; None (every
            interface: each model is fed its own ``InputSpec``) accepts any side from 16 to
            512 and 1 or 3 channels.

    Raises:
        ModelLoadError, LabelMappingError: with the fix in the message.
    """
    from src.models.io import check_sketch_input, declared_output_kind, load_model
    from src.models.sketch_model import output_kind, with_probabilities

    model = load_model(model_path)
    check_sketch_input(model, image_size=image_size, source=model_path)
    declared = declared_output or declared_output_kind(model_path)
    model = with_probabilities(model, output_kind(model, declared, source=model_path))
    return model, labels if isinstance(labels, LabelMap) else LabelMap.load(labels)


class Predictor:
    """Classify batches of preprocessed sketches with a compiled forward pass.

    Args:
        model: a Keras model whose outputs match ``labels``.
        labels: the label map.
        forward: the model's output (N, C) for a checked batch, already compiled (an explainer
            service passes its CAM engine's, so the model is compiled once); default: compile
            the model's own forward pass.

    Raises:
        LabelMappingError: if the model's number of outputs differs from the label count.
    """

    def __init__(
        self,
        model: Any,
        labels: LabelMap,
        forward: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        from src.models.forward import compile_forward

        labels.check_outputs(int(model.output_shape[-1]))
        self.model = model
        self.labels = labels
        self._forward = forward if forward is not None else compile_forward(model)

    @classmethod
    def from_files(
        cls,
        model_path: str | Path,
        labels: LabelMap | str | Path,
        declared_output: str | None = None,
    ) -> Predictor:
        """Load a sketch model (``src.models.io.load_model``) with its label mapping.

        A model ending in raw scores gets a softmax on top, so confidences are probabilities.

        Args:
            model_path: ``.h5`` or ``.keras`` file taking (H, W, 1 or 3) sketches.
            labels: a loaded LabelMap, or the path of its JSON file.
            declared_output: "probabilities" or "logits" when the model cannot tell; default
                the ``"output"`` field of the model card beside the model.
        """
        return cls(*load_model_and_labels(model_path, labels, declared_output))

    def probabilities(self, images: Any) -> np.ndarray:
        """Output probabilities (N, C) for (N, H, W, 1) inputs (single images accepted)."""
        return np.asarray(self._forward(to_batch(images)), dtype=np.float32)

    def predict(self, images: Any, top_k: int = 5) -> list[Prediction]:
        """Ranked predictions, one per image."""
        predictions = []
        for row in self.probabilities(images):
            top = rank_classes(row, self.labels, top_k)
            predictions.append(
                Prediction(top[0].class_index, top[0].class_name, top[0].confidence, top, row)
            )
        return predictions
