"""What a class activation map explains: a class, the predicted class, "A over B", a sum.

A target is a linear combination of class scores (logits): ``coefficients`` gives its weight
per class. The predicted class is the one target that depends on the image, so it is a flag
the compiled computation resolves from the scores it has just computed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.errors import UnknownClassError


def _checked(index: Any, classes: int) -> int:
    """A class index as int, in range.

    Raises:
        UnknownClassError: outside 0..classes-1.
    """
    value = int(index)
    if not 0 <= value < classes:
        raise UnknownClassError(f"class index out of range 0..{classes - 1}: {value}")
    return value


@dataclass(frozen=True)
class Predicted:
    """The class the model predicts for each image (its top score)."""

    def coefficients(self, classes: int) -> np.ndarray:
        """No fixed weights: the compiled call sets the top class's weight to one."""
        return np.zeros(classes, np.float32)

    def main_class(self, scores: np.ndarray) -> int:
        """The class the map is reported for."""
        return int(np.argmax(scores))


@dataclass(frozen=True)
class ClassTarget:
    """One given class (its logit)."""

    index: int

    def coefficients(self, classes: int) -> np.ndarray:
        """One-hot on the class."""
        weights = np.zeros(classes, np.float32)
        weights[_checked(self.index, classes)] = 1.0
        return weights

    def main_class(self, scores: np.ndarray) -> int:
        """The class itself."""
        return int(self.index)


@dataclass(frozen=True)
class Contrast:
    """Evidence for class ``first`` over class ``second``: logit(first) - logit(second)."""

    first: int
    second: int

    def coefficients(self, classes: int) -> np.ndarray:
        """+1 on the first class, -1 on the second.

        Raises:
            UnknownClassError: out of range, or the two classes are the same.
        """
        first, second = _checked(self.first, classes), _checked(self.second, classes)
        if first == second:
            raise UnknownClassError("contrast needs two different classes (A equals B)")
        weights = np.zeros(classes, np.float32)
        weights[first], weights[second] = 1.0, -1.0
        return weights

    def main_class(self, scores: np.ndarray) -> int:
        """The class argued for."""
        return int(self.first)


@dataclass(frozen=True)
class ClassSum:
    """The summed logits of several classes (for example every kind of vehicle)."""

    indices: tuple[int, ...]

    def coefficients(self, classes: int) -> np.ndarray:
        """One on every listed class.

        Raises:
            UnknownClassError: empty, or an index out of range.
        """
        if not self.indices:
            raise UnknownClassError("a sum of classes needs at least one class")
        weights = np.zeros(classes, np.float32)
        for index in self.indices:
            weights[_checked(index, classes)] = 1.0
        return weights

    def main_class(self, scores: np.ndarray) -> int:
        """The listed class the model scores highest."""
        return max(self.indices, key=lambda index: (scores[index], -index))


Target = Predicted | ClassTarget | Contrast | ClassSum


def as_targets(targets: Any, count: int) -> list[Target]:
    """One target per image from None (predicted), an int, a Target, or a sequence of them.

    Raises:
        UnknownClassError: a sequence whose length is not ``count``.
    """
    if targets is None:
        return [Predicted()] * count
    if isinstance(targets, (Predicted, ClassTarget, Contrast, ClassSum)):
        return [targets] * count
    if isinstance(targets, (int, np.integer)):
        return [ClassTarget(int(targets))] * count
    items = list(np.asarray(targets).ravel()) if isinstance(targets, np.ndarray) else targets
    if not isinstance(items, Sequence):
        raise UnknownClassError(f"cannot use {type(targets).__name__} as a class target")
    if len(items) == 1 and count != 1:
        items = list(items) * count
    if len(items) != count:
        raise UnknownClassError(f"got {len(items)} class targets for {count} images")
    return [
        item
        if isinstance(item, (Predicted, ClassTarget, Contrast, ClassSum))
        else Predicted()
        if item is None
        else ClassTarget(int(item))
        for item in items
    ]


def target_arrays(targets: list[Target], classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients (N, C) float32, predicted flags (N,) bool) for the compiled call.

    Raises:
        UnknownClassError: for any target naming a class outside the model.
    """
    predicted = np.array([isinstance(target, Predicted) for target in targets], dtype=bool)
    if predicted.all():  # the common case, without a row built per image
        return np.zeros((len(targets), classes), np.float32), predicted
    coefficients = np.stack([target.coefficients(classes) for target in targets])
    return coefficients.astype(np.float32), predicted
