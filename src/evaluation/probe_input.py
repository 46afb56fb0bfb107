"""Which input convention does a model expect? Top-1 on labelled sketches under each one.

A published sketch model rarely says whether it was trained on dark ink on white or light ink
on black, scaled to 0..1, 0..255 or -1..1. Mean confidence does not tell these apart on real
models; accuracy on labelled drawings does. Each labelled input goes through the one
preprocessing path (``to_model_input``/``strokes_to_model_input`` via the batch inputs' own
decoding) with each ``InputSpec`` in turn, and the model's compiled forward pass answers.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from src.data.input_spec import INK_CHOICES, VALUE_RANGE_CHOICES, InputSpec
from src.errors import SketchError
from src.evaluation.label_check import check_labels
from src.evaluation.metrics import confusion_matrix

DEFAULT_MAX_PER_CLASS = 50
# Far beyond what telling six conventions apart needs; keeps one run's work bounded.
MAX_PER_CLASS = 10_000
DEFAULT_BATCH_SIZE = 256
# Every (ink, value range) pair, the default (dark, 0-1) first so that a tie keeps the default.
CONVENTIONS: tuple[tuple[str, str], ...] = tuple(
    (ink, value_range) for ink in INK_CHOICES for value_range in VALUE_RANGE_CHOICES
)


class SketchOrigin(Protocol):
    """What a labelled input is made of (``src.batch.inputs.InputOrigin``)."""

    def decode(self, spec: InputSpec) -> np.ndarray:
        """The model input of this sketch in ``spec``'s convention."""
        ...


class LabelledInput(Protocol):
    """One discovered input (``src.batch.inputs.BatchInput``)."""

    source: str
    true_class: str | None
    origin: SketchOrigin


@dataclass(frozen=True)
class ConventionScore:
    """Top-1 under one convention."""

    spec: InputSpec
    correct: int
    total: int

    @property
    def ink(self) -> str:
        """The convention's ink polarity."""
        return self.spec.ink

    @property
    def value_range(self) -> str:
        """The convention's value range."""
        return self.spec.value_range

    @property
    def accuracy(self) -> float:
        """Share of the labelled inputs answered right (0.0 when none)."""
        return self.correct / self.total if self.total else 0.0

    @property
    def options(self) -> str:
        """The command-line options that select this convention."""
        return self.spec.options()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields, accuracy and options included."""
        return {
            "ink": self.ink,
            "value_range": self.value_range,
            "correct": self.correct,
            "total": self.total,
            "accuracy": self.accuracy,
            "options": self.options,
        }


@dataclass
class ProbeResult:
    """Each convention's top-1, the best one, and the label check under the best one."""

    scores: list[ConventionScore]
    per_class: dict[str, int]
    label_check: dict[str, Any]
    failures: list[dict[str, str]] = field(default_factory=list)

    @property
    def best(self) -> ConventionScore:
        """The most accurate convention (on a tie, the earlier in ``CONVENTIONS``)."""
        return max(self.scores, key=lambda score: score.accuracy)

    def to_dict(self) -> dict[str, Any]:
        """What probe_input.json holds."""
        best = self.best
        return {
            "labelled": best.total,
            "per_class": self.per_class,
            "conventions": [score.to_dict() for score in self.scores],
            "best": best.to_dict(),
            "input_block": {"ink": best.ink, "value_range": best.value_range},
            "label_check": self.label_check,
            "failures": self.failures,
        }


def labelled_sample(inputs: Sequence[LabelledInput], max_per_class: int) -> list[LabelledInput]:
    """The labelled inputs, at most ``max_per_class`` of each class, in discovery order.

    Raises:
        ValueError: ``max_per_class`` outside 1..``MAX_PER_CLASS``.
    """
    if not 1 <= max_per_class <= MAX_PER_CLASS:
        raise ValueError(f"max_per_class is {max_per_class}; use 1 to {MAX_PER_CLASS}")
    taken: dict[str, int] = {}
    sample = []
    for item in inputs:
        if item.true_class is None or taken.get(item.true_class, 0) >= max_per_class:
            continue
        taken[item.true_class] = taken.get(item.true_class, 0) + 1
        sample.append(item)
    return sample


def probe_conventions(
    predictor: Any,
    sample: Sequence[LabelledInput],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ProbeResult:
    """Top-1 of ``predictor``'s model on ``sample`` under every ink and value range.

    Args:
        predictor: a ``src.inference.predictor.Predictor`` (its compiled forward pass and labels).
        sample: labelled inputs (``labelled_sample``); each ``true_class`` is a label name.
        batch_size: inputs per forward pass.

    Returns:
        The scores; inputs that cannot be decoded are left out and listed as failures.
    """
    labels = predictor.labels
    height, width, channels = (int(side) for side in predictor.model.input_shape[1:])
    failed: dict[str, str] = {}
    scores, answers = [], {}
    for ink, value_range in CONVENTIONS:
        spec = InputSpec(height, width, channels, ink, value_range, "option", "option")
        truth, predicted = _answers(predictor, sample, spec, batch_size, failed)
        answers[(ink, value_range)] = (truth, predicted)
        scores.append(ConventionScore(spec, int(np.sum(truth == predicted)), truth.size))
    result = ProbeResult(
        scores,
        _per_class_counts(sample, failed),
        {},
        [{"source": source, "reason": reason} for source, reason in failed.items()],
    )
    truth, predicted = answers[(result.best.ink, result.best.value_range)]
    matrix = confusion_matrix(truth, predicted, len(labels))
    result.label_check = check_labels(matrix, labels.class_names)
    return result


def _answers(
    predictor: Any,
    sample: Sequence[LabelledInput],
    spec: InputSpec,
    batch_size: int,
    failed: dict[str, str],
) -> tuple[np.ndarray, np.ndarray]:
    """True and predicted class indices of the decodable inputs under ``spec``."""
    truth: list[int] = []
    predicted: list[np.ndarray] = []
    for chunk in _chunks(sample, batch_size):
        arrays, indices = [], []
        for item in chunk:
            try:
                arrays.append(item.origin.decode(spec=spec))
            except (SketchError, OSError, ValueError) as error:
                # Decoding does not depend on the convention: a failure is one for all of them.
                failed[item.source] = " ".join(str(error).split()) or type(error).__name__
                continue
            indices.append(predictor.labels.index_of(item.true_class))
        if arrays:
            probabilities = predictor.probabilities(np.stack(arrays))
            predicted.append(np.argmax(probabilities, axis=1))
            truth.extend(indices)
    answered = np.concatenate(predicted) if predicted else np.zeros(0, dtype=np.int64)
    return np.asarray(truth, dtype=np.int64), answered


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _per_class_counts(sample: Sequence[LabelledInput], failed: dict[str, str]) -> dict[str, int]:
    """How many decodable inputs each class contributed."""
    counts: dict[str, int] = {}
    for item in sample:
        if item.source not in failed and item.true_class is not None:
            counts[item.true_class] = counts.get(item.true_class, 0) + 1
    return counts
