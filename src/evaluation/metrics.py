"""Classification metrics in plain NumPy (top-k, per-class accuracy, confusion, confused pairs)."""

from __future__ import annotations

import numpy as np


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Fraction of rows whose true label is among the k highest scores (0.0 for no rows)."""
    if len(labels) == 0:
        return 0.0
    top = np.argsort(-probabilities, axis=1)[:, :k]
    return float(np.mean(np.any(top == np.asarray(labels)[:, None], axis=1)))


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, int), np.asarray(predictions, int)), 1)
    return matrix


def per_class_accuracy(matrix: np.ndarray, class_names: tuple[str, ...]) -> dict[str, float | None]:
    """Top-1 accuracy per class from a confusion matrix (None for a class with no items)."""
    totals = matrix.sum(axis=1)
    return {
        name: (float(matrix[index, index] / totals[index]) if totals[index] else None)
        for index, name in enumerate(class_names)
    }


def most_confused_pairs(
    matrix: np.ndarray, class_names: tuple[str, ...], count: int = 10
) -> list[dict[str, object]]:
    """The largest off-diagonal cells: which true class is most often taken for which."""
    off_diagonal = matrix.copy()
    np.fill_diagonal(off_diagonal, 0)
    flat = np.argsort(-off_diagonal, axis=None)[:count]
    pairs = []
    for true_idx, predicted_idx in zip(*np.unravel_index(flat, matrix.shape), strict=True):
        if off_diagonal[true_idx, predicted_idx] == 0:
            break
        pairs.append(
            {
                "true": class_names[true_idx],
                "predicted": class_names[predicted_idx],
                "count": int(off_diagonal[true_idx, predicted_idx]),
            }
        )
    return pairs


def summarise(
    probabilities: np.ndarray, labels: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, object]:
    """Top-1, top-3, count, per-class accuracy and the confusion matrix as JSON-ready values."""
    matrix = confusion_matrix(labels, np.argmax(probabilities, axis=1), len(class_names))
    return {
        "count": int(len(labels)),
        "top1": top_k_accuracy(probabilities, labels, 1),
        "top3": top_k_accuracy(probabilities, labels, 3),
        "per_class_top1": per_class_accuracy(matrix, class_names),
        "confusion_matrix": matrix.tolist(),
    }
