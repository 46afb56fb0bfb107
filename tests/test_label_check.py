"""The label check on hand-written confusion matrices (rows true, columns answered)."""

from __future__ import annotations

import pytest

from src.evaluation.label_check import check_labels, label_check_line

CLASSES = ("apple", "bus", "cat")


def test_a_rotated_mapping_is_suspect_with_the_reordering_that_fixes_it() -> None:
    # The model's output 0 is really "bus", 1 "cat", 2 "apple"; the file says apple, bus, cat.
    # So true apples are answered as output 2 ("cat"), buses as 0 ("apple"), cats as 1 ("bus").
    matrix = [
        [1, 0, 9],
        [8, 2, 0],
        [0, 7, 3],
    ]
    check = check_labels(matrix, CLASSES)
    assert check["suspect"] is True
    assert check["answered_as"] == {"apple": "cat", "bus": "apple", "cat": "bus"}
    assert check["suggested_labels"] == ["bus", "cat", "apple"]
    assert check["labelled_classes"] == 3
    assert label_check_line(check).startswith("label check: 3 of 3 labelled classes")


def test_a_swap_of_two_of_three_classes_is_suspect() -> None:
    matrix = [
        [0, 5, 0],
        [6, 0, 0],
        [0, 0, 4],
    ]
    check = check_labels(matrix, CLASSES)
    assert check["suspect"] is True
    assert check["suggested_labels"] == ["bus", "apple", "cat"]


def test_a_weak_but_right_model_is_not_suspect() -> None:
    # Right about a third of the time, the errors spread over the other classes.
    matrix = [
        [4, 3, 3],
        [3, 4, 3],
        [3, 3, 4],
    ]
    check = check_labels(matrix, CLASSES)
    assert check["suspect"] is False
    assert check["answered_as"] == {}
    assert check["suggested_labels"] is None
    assert label_check_line(check) is None


def test_one_class_answered_by_another_is_not_most_classes() -> None:
    matrix = [
        [0, 9, 1],
        [0, 10, 0],
        [0, 1, 9],
    ]
    check = check_labels(matrix, CLASSES)
    assert check["suspect"] is False
    assert check["answered_as"] == {"apple": "bus"}


def test_exactly_half_mostly_is_not_mostly() -> None:
    # Each class half right, half one other class: not "mostly" another class.
    matrix = [
        [5, 5, 0],
        [0, 5, 5],
        [5, 0, 5],
    ]
    assert check_labels(matrix, CLASSES)["answered_by_other"] == 0


def test_an_unlabelled_batch_is_not_suspect() -> None:
    assert check_labels([[0, 0, 0]] * 3, CLASSES) == {
        "suspect": False,
        "reason": "no labelled inputs",
    }


def test_a_single_labelled_class_cannot_be_suspect() -> None:
    check = check_labels([[0, 7, 0], [0, 0, 0], [0, 0, 0]], CLASSES)
    assert check["suspect"] is False
    assert "only one labelled class" in check["reason"]


def test_a_matrix_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="expected 3x3"):
        check_labels([[1, 0], [0, 1]], CLASSES)
