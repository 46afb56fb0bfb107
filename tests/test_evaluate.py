"""Evaluation: metrics against hand-computed values, and loading a mixed data folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.labels import LabelMap
from src.data.quickdraw import Drawing, write_ndjson
from src.errors import DataFormatError
from src.evaluation.evaluate import load_folder
from src.evaluation.metrics import confusion_matrix, most_confused_pairs, top_k_accuracy

PROBABILITIES = np.array(
    [[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5]], np.float32
)
LABELS = np.array([0, 1, 1, 2])


def test_top_k_by_hand() -> None:
    # Row 1's true class 1 is second; row 2's true class 1 is second: top-1 2/4, top-2 4/4.
    assert top_k_accuracy(PROBABILITIES, LABELS, 1) == 0.5
    assert top_k_accuracy(PROBABILITIES, LABELS, 2) == 1.0


def test_confusion_and_pairs_by_hand() -> None:
    matrix = confusion_matrix(LABELS, PROBABILITIES.argmax(axis=1), 3)
    assert matrix.tolist() == [[1, 0, 0], [1, 0, 1], [0, 0, 1]]
    pairs = most_confused_pairs(matrix, ("a", "b", "c"))
    assert {(p["true"], p["predicted"]) for p in pairs} == {("b", "a"), ("b", "c")}


def test_load_folder_reads_every_format(tmp_path: Path) -> None:
    np.save(tmp_path / "cat.npy", np.zeros((3, 784), np.uint8))
    write_ndjson([Drawing("dog", [[[0, 9], [0, 9]]])] * 2, tmp_path / "dog.ndjson")
    (tmp_path / "sun").mkdir()
    Image.new("L", (20, 20), 255).save(tmp_path / "sun" / "a.png")
    write_ndjson([Drawing("zebra", [[[0, 9], [0, 9]]])], tmp_path / "zebra.ndjson")  # unknown
    images, targets = load_folder(tmp_path, LabelMap(("cat", "dog", "sun")))
    assert images.shape == (6, 64, 64, 1) and sorted(targets.tolist()) == [0, 0, 0, 1, 1, 2]


def test_load_folder_without_known_classes(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="no drawings"):
        load_folder(tmp_path, LabelMap(("cat", "dog")))
