"""Synthetic outliers: scrambles keep each stroke's shape, chimeras keep both drawings, and training
queues them as outliers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from src.config import TrainConfig
from src.data.quickdraw import Drawing, write_ndjson
from src.training.dataset import OUTLIER_LABEL, load_training_data
from src.training.synthetic_outliers import (
    SCRAMBLE_MIN_STROKES,
    chimera,
    make_synthetic_outliers,
    scramble_strokes,
)

# Three strokes: a 3-4-5 right angle's legs and hypotenuse, drawn apart (lengths 3, 4 and 5).
TRIANGLE = [[[0, 3], [0, 0]], [[10, 10], [0, 4]], [[20, 23], [0, 4]]]


def _length(stroke: list) -> float:
    xs, ys = np.asarray(stroke[0], float), np.asarray(stroke[1], float)
    return float(np.hypot(np.diff(xs), np.diff(ys)).sum())


def _centre(stroke: list) -> np.ndarray:
    return np.asarray(stroke[:2], float).mean(axis=1)


def test_scramble_keeps_every_stroke_length_and_moves_the_strokes_apart() -> None:
    scrambled = scramble_strokes(TRIANGLE, np.random.default_rng(3))
    assert [_length(stroke) for stroke in scrambled] == pytest.approx([3.0, 4.0, 5.0])
    before = [_centre(stroke) for stroke in TRIANGLE]
    after = [_centre(stroke) for stroke in scrambled]
    # Relative positions change: the gap between the first two strokes' centres is not kept.
    gap_before = np.linalg.norm(before[1] - before[0])
    gap_after = np.linalg.norm(after[1] - after[0])
    assert abs(gap_after - gap_before) > 0.5


def test_chimera_keeps_both_drawings_side_by_side() -> None:
    square = [[[0, 10, 10, 0, 0], [0, 0, 10, 10, 0]]]
    line = [[[0, 50], [0, 50]]]
    combined = chimera(square, line, np.random.default_rng(0))
    assert len(combined) == 2
    first = np.asarray(combined[0], float)
    second = np.asarray(combined[1], float)
    # Each part scaled so its longer side is 255; the second shifted along one axis by
    # 255 less at most a third of it.
    assert first.min(axis=1) == pytest.approx([0, 0]) and first.max(axis=1) == pytest.approx(
        [255, 255]
    )
    shift = second.min(axis=1)
    assert sorted(shift)[0] == pytest.approx(0.0)
    assert 170.0 - 1e-9 <= sorted(shift)[1] <= 255.0
    assert _length(combined[1]) == pytest.approx(255.0 * np.sqrt(2))


def test_make_synthetic_outliers_pairs_short_drawings_across_classes() -> None:
    short = [[[0, 5], [0, 0]]]
    drawings = [short, [[[0, 0], [0, 5]]]]
    made = make_synthetic_outliers(drawings, [0, 1], 6, seed=1)
    assert len(made) == 6
    # Too few strokes to scramble: every one is a two-drawing chimera of one stroke each.
    assert all(len(drawing) == 2 for drawing in made)
    assert SCRAMBLE_MIN_STROKES > 1
    assert make_synthetic_outliers(drawings, [0, 0], 6, seed=1) == []
    scrambles = make_synthetic_outliers([TRIANGLE, short], [0, 1], 10, seed=2)
    assert sum(len(drawing) == 3 for drawing in scrambles) >= 1


def test_training_data_queues_the_synthetic_outliers(tmp_path: Path) -> None:
    strokes_dir = tmp_path / "strokes"
    for name in ("h", "v"):
        drawings = [Drawing(name, TRIANGLE, f"{name}{index}") for index in range(20)]
        write_ndjson(drawings, strokes_dir / f"{name}.ndjson")
    write_ndjson(
        [Drawing("other", [[[0, 9], [9, 0]]], f"o{index}") for index in range(3)],
        strokes_dir / "other.ndjson",
    )

    def outliers_queued(synthetic: int) -> int:
        config = TrainConfig(
            strokes_dir=strokes_dir,
            classes=("h", "v"),
            workers=1,
            outlier_exposure=True,
            outlier_repeats=1,
            synthetic_outliers=synthetic,
        )
        labels = load_training_data(config).train_stroke_labels
        return int((labels == OUTLIER_LABEL).sum())

    assert outliers_queued(7) - outliers_queued(0) == 7
