"""Does a label mapping fit its model? Telling a shuffled mapping from a merely weak model.

A label file written in another order than the model was trained with is a real case among
published sketch models: every answer is then confidently "wrong", and accuracy alone cannot
tell that from a bad model. The confusion matrix can: with a shuffled mapping most classes are
answered, mostly, by one single other class; a weak model spreads its answers out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# "Mostly": more than half of a class's inputs get the same other answer.
MOSTLY = 0.5
# "Most classes": more than half of the labelled classes are answered that way.
MOST = 0.5
# One labelled class answered by another could as well be a biased model; a mapping's order
# only shows across several classes.
MIN_LABELLED_CLASSES = 2


def check_labels(matrix: Any, class_names: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """Whether the confusion matrix looks like a mapping in the wrong order, and the fix.

    Args:
        matrix: counts (classes, classes), rows the true class, columns the answer, in the
            label mapping's order.
        class_names: the label mapping's names in output order.

    Returns:
        ``{"suspect": bool, "reason": str, "labelled_classes": int, "answered_by_other": int,
        "answered_as": {true: answer}, "suggested_labels": [...] | None}``. ``answered_as``
        names, for each labelled class answered mostly by one other class, that class;
        ``suggested_labels`` is the mapping in output order that would turn those answers
        right (None when the answers do not form one consistent reordering).
    """
    counts = np.asarray(matrix, dtype=np.int64)
    names = list(class_names)
    if counts.shape != (len(names), len(names)):
        raise ValueError(
            f"confusion matrix is shaped {counts.shape}; expected {len(names)}x{len(names)}"
        )
    support = counts.sum(axis=1)
    labelled = np.flatnonzero(support)
    if labelled.size == 0:
        return {"suspect": False, "reason": "no labelled inputs"}
    answered_as = {
        names[row]: names[int(np.argmax(counts[row]))]
        for row in labelled
        if int(np.argmax(counts[row])) != row and counts[row].max() > MOSTLY * support[row]
    }
    suspect = labelled.size >= MIN_LABELLED_CLASSES and len(answered_as) > MOST * labelled.size
    return {
        "suspect": bool(suspect),
        "reason": _reason(suspect, len(answered_as), int(labelled.size)),
        "labelled_classes": int(labelled.size),
        "answered_by_other": len(answered_as),
        "answered_as": answered_as,
        "suggested_labels": _suggested_labels(names, answered_as) if suspect else None,
    }


def _reason(suspect: bool, answered_by_other: int, labelled: int) -> str:
    """One sentence saying what the check found."""
    if suspect:
        return (
            f"{answered_by_other} of {labelled} labelled classes are answered mostly as one "
            "other class: the label mapping is probably in a different order than the model's "
            "outputs"
        )
    if labelled < MIN_LABELLED_CLASSES:
        return "only one labelled class: the mapping's order cannot be checked"
    return f"{answered_by_other} of {labelled} labelled classes answered mostly as another class"


def _suggested_labels(names: list[str], answered_as: dict[str, str]) -> list[str] | None:
    """The mapping with each answer renamed to the class it stood for; None if that clashes."""
    if len(set(answered_as.values())) != len(answered_as):
        return None
    suggested = list(names)
    for true_name, answer in answered_as.items():
        suggested[names.index(answer)] = true_name
    # Outputs whose old name moved elsewhere but which took no new one would repeat a name.
    return suggested if len(set(suggested)) == len(suggested) else None


def label_check_line(check: dict[str, Any]) -> str | None:
    """The one warning line for a suspect check (None otherwise)."""
    if not check.get("suspect"):
        return None
    fix = check.get("suggested_labels")
    suggestion = f"; try the labels in this order: {fix}" if fix else ""
    return f"label check: {check['reason']}{suggestion}"
