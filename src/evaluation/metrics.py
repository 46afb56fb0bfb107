"""Classification metrics in plain NumPy: top-k, per-class accuracy, precision, recall and F1,
confusion matrix, confused pairs."""

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


def precision_recall_f1(
    matrix: np.ndarray, class_names: tuple[str, ...]
) -> dict[str, dict[str, float | int | None]]:
    """Per class from a confusion matrix (rows true, columns predicted).

    Precision is the share of the class's predictions that were right, recall the share of its
    items found, F1 their harmonic mean; each is None where its denominator is 0. Classes that
    are neither true nor predicted anywhere are left out.
    """
    matrix = np.asarray(matrix)
    scores: dict[str, dict[str, float | int | None]] = {}
    for index, name in enumerate(class_names):
        hits = int(matrix[index, index])
        support, predicted = int(matrix[index].sum()), int(matrix[:, index].sum())
        if not support and not predicted:
            continue
        precision = hits / predicted if predicted else None
        recall = hits / support if support else None
        f1: float | None = None
        if precision is not None and recall is not None:
            f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
        scores[name] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
    return scores


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
