"""Open-set training and calibration: hand-computed scores, temperature, ECE, AUROC, pens, outliers."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from src.config import ModelConfig, TrainConfig
from src.data.quickdraw import Drawing, write_ndjson
from src.evaluation.open_set import (
    auroc,
    expected_calibration_error,
    fit_temperature,
    threshold_for,
)
from src.inference.open_set import SCORE_NAMES, OpenSetRule, open_set_scores
from src.training.augment import AugmentConfig, render_pen_on_canvas, restyle_raster
from src.training.dataset import OUTLIER_LABEL, outlier_split, soft_targets


def test_scores_match_hand_computation() -> None:
    logits = np.array([[2.0, 0.0, 0.0]])
    # logits / T with T = 2 are [1, 0, 0].
    expected = {
        "max_logit": 1.0,
        "energy": 2.0 * math.log(math.e + 2.0),
        "max_softmax": math.e / (math.e + 2.0),
    }
    for name, value in expected.items():
        score = open_set_scores(logits, OpenSetRule(name, 2.0, 0.0))
        assert score[0] == pytest.approx(value, rel=1e-12)
    with pytest.raises(ValueError, match="unknown open-set score 'entropy'"):
        open_set_scores(logits, OpenSetRule("entropy", 1.0, 0.0))


def test_fit_temperature_recovers_the_generating_temperature() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 3.0, size=(20000, 5))
    scaled = logits / 2.0
    probabilities = np.exp(scaled) / np.exp(scaled).sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(5, p=row) for row in probabilities])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)


def test_expected_calibration_error_by_hand() -> None:
    probabilities = np.array([[0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    labels = np.array([0, 1, 0])
    # Bin 0.9: accuracy 1, confidence 0.9, weight 1/3; bin 0.6: accuracy 1/2, confidence 0.6,
    # weight 2/3. ECE = 0.1 / 3 + 0.1 * 2 / 3 = 0.1.
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.1)


def test_auroc_counts_ordered_pairs() -> None:
    # Pairs (known > unknown): 3 beats 1 and 2; 4 and 5 beat all three: 8 of 9.
    assert auroc(np.array([3.0, 4.0, 5.0]), np.array([1.0, 2.0, 3.5])) == pytest.approx(8 / 9)
    # A tie counts half: (1 vs 1) is 1/2, (2 vs 1) is 1; 1.5 of 2 pairs. Reversed: 0.5 of 2.
    assert auroc(np.array([1.0, 2.0]), np.array([1.0])) == pytest.approx(0.75)
    assert auroc(np.array([1.0]), np.array([1.0, 2.0])) == pytest.approx(0.25)
    assert threshold_for(np.arange(101, dtype=float), 0.02) == pytest.approx(2.0)


def test_soft_targets_are_one_hot_or_uniform() -> None:
    targets = soft_targets(np.array([2, OUTLIER_LABEL, 0]), 4)
    np.testing.assert_array_equal(targets[0], [0, 0, 1, 0])
    np.testing.assert_array_equal(targets[1], [0.25] * 4)
    np.testing.assert_array_equal(targets[2], [1, 0, 0, 0])


def test_outlier_split_is_by_category_and_stable() -> None:
    names = [f"category {index}" for index in range(2000)]
    splits = [outlier_split(name) for name in names]
    assert splits == [outlier_split(name) for name in names]
    shares = {split: splits.count(split) / len(names) for split in set(splits)}
    assert shares["train"] == pytest.approx(0.6, abs=0.04)
    assert shares["validation"] == pytest.approx(0.2, abs=0.04)
    assert shares["test"] == pytest.approx(0.2, abs=0.04)


def _line_config(width: float) -> AugmentConfig:
    return AugmentConfig(
        pen_relative_width=(width, width),
        plain_resize_probability=1.0,
        drawing_fraction=(1.0, 1.0),
        off_centre_probability=0.0,
    )


def test_pen_on_canvas_ink_grows_with_the_pen_width() -> None:
    # A horizontal line whose longer side fills the drawing: after the plain 256 -> 64 resize its
    # ink mass is length x width / 16 (plus the round caps), so it scales with the pen.
    strokes = [[[0, 255], [128, 128]]]
    side = 256 * (1 - 2 * 0.04)
    masses = {}
    for width in (1 / 64, 1 / 8):
        image = render_pen_on_canvas(strokes, np.random.default_rng(0), _line_config(width))
        assert image.shape == (64, 64, 1)
        masses[width] = float(image.sum())
        pen = width * side
        length = side - pen
        expected = (length * pen + math.pi * pen**2 / 4) / 16
        assert masses[width] == pytest.approx(expected, rel=0.12)


def test_restyle_raster_thins_and_thickens() -> None:
    image = np.zeros((64, 64), np.uint8)
    image[10:54, 28:36] = 255  # an 8-pixel-wide, 44-long bar
    thin = AugmentConfig(restyle_kernels=(-9,), plain_resize_probability=1.0)
    thick = AugmentConfig(restyle_kernels=(9,), plain_resize_probability=1.0)
    thinned = restyle_raster(image, np.random.default_rng(0), thin)
    thickened = restyle_raster(image, np.random.default_rng(0), thick)
    # At 256 pixels the bar is 32 x 176; a 9-pixel min/max filter takes or adds 4 pixels on each
    # side: 24 x 168 or 40 x 184 (the max filter's corners are square), ink mass ratios
    # 24 * 168 / (32 * 176) = 0.716 and 40 * 184 / (32 * 176) = 1.307.
    ratio_thin = thinned.sum() / image.sum()
    ratio_thick = thickened.sum() / image.sum()
    assert ratio_thin == pytest.approx(24 * 168 / (32 * 176), abs=0.03)
    assert ratio_thick == pytest.approx(40 * 184 / (32 * 176), abs=0.03)


@pytest.mark.slow
def test_training_with_outlier_exposure_writes_the_open_set_rule(tmp_path: Path) -> None:
    from src.training.train import train

    rng = np.random.default_rng(0)
    strokes_dir = tmp_path / "strokes"
    horizontal = [[[0, 255], [128, 128]]]
    vertical = [[[128, 128], [0, 255]]]
    for name, strokes in (("h", horizontal), ("v", vertical)):
        drawings = [Drawing(name, strokes, f"{name}{i}") for i in range(30)]
        write_ndjson(drawings, strokes_dir / f"{name}.ndjson")
    # Enough outlier categories that the by-name split gives each split at least one.
    names = [f"outlier {index}" for index in range(30)]
    assert {outlier_split(name) for name in names} == {"train", "validation", "test"}
    for name in names:
        points = [int(value) for value in rng.integers(0, 255, size=4)]
        drawing = [[[points[0], points[1]], [points[2], points[3]]]]
        write_ndjson(
            [Drawing(name, drawing, f"{name}/{i}") for i in range(4)],
            strokes_dir / f"{name}.ndjson",
        )
    config = TrainConfig(
        strokes_dir=strokes_dir,
        classes=("h", "v"),
        output_dir=tmp_path / "out",
        labels_path=tmp_path / "labels.json",
        epochs=2,
        batch_size=16,
        workers=1,
        outlier_exposure=True,
        outliers_per_category=4,
        model=ModelConfig(filters=(8,), dense_units=8, dropout=0.0),
    )
    result = train(config)
    block = json.loads(result.card_path.read_text())["open_set"]
    assert block["score"] in SCORE_NAMES
    test_names = [name for name in names if outlier_split(name) == "test"]
    assert block["outlier_test_categories"] == sorted(test_names)
    assert block["test"]["unknown_count"] == 4 * len(test_names)
    assert 0.0 <= block["test"]["auroc"] <= 1.0 and block["temperature"] > 0
