"""A short training run on synthetic sketches, and .h5 / .keras round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.config import ModelConfig, TrainConfig
from src.data.quickdraw import Drawing, write_ndjson
from src.training.augment import augment_image, drop_stroke


def _tiny_config(tiny_data: Path, tmp_path: Path, **overrides: object) -> TrainConfig:
    """A short run on the tiny three-class data, batches of 8, no early stop; ``overrides`` win."""
    settings: dict[str, object] = {
        "bitmap_dir": tiny_data / "bitmaps",
        "strokes_dir": tiny_data / "strokes",
        "classes": ("h", "v", "plus"),
        "output_dir": tmp_path / "out",
        "labels_path": tmp_path / "labels.json",
        "batch_size": 8,
        "patience": 10,
        "workers": 1,
    }
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.slow
def test_short_training_run_learns(tiny_data: Path, tmp_path: Path) -> None:
    from src.training.train import train

    config = _tiny_config(
        tiny_data,
        tmp_path,
        epochs=5,
        learning_rate=1e-2,
        model=ModelConfig(filters=(8, 16), dense_units=16, dropout=0.0),
    )
    result = train(config)
    losses = result.history["loss"]
    assert losses[-1] < 0.8 * losses[0]
    assert result.model_path.is_file()
    assert json.loads(config.labels_path.read_text()) == {"0": "h", "1": "v", "2": "plus"}
    card = json.loads(result.card_path.read_text())
    # "plus" has bitmaps: its 40 stroke drawings are split by key_id hash into training and the
    # held-out cross-domain set; training strokes whose bitmap twin is in validation/test are skipped.
    strokes = card["counts"]["plus"]["strokes"]
    assert sum(strokes.values()) == 40
    assert (
        strokes["cross_domain"] > 0
        and strokes["train"] + strokes["skipped_twin_in_validation_or_test"] > 0
    )
    assert card["cross_domain"]["strokes_count"] == strokes["cross_domain"]
    assert card["classes"] == ["h", "v", "plus"]


def test_h5_and_keras_round_trips_predict_identically(tmp_path: Path) -> None:
    import keras

    from src.models.cnn import LAST_CONV, LOGITS, build_cnn

    model = build_cnn(ModelConfig(num_classes=3, filters=(8, 16), dense_units=16))
    batch = np.random.default_rng(3).random((4, 64, 64, 1), dtype=np.float32)
    expected = model.predict(batch, verbose=0)
    for suffix in (".h5", ".keras"):
        path = tmp_path / f"model{suffix}"
        model.save(path)
        loaded = keras.models.load_model(path, compile=False)
        np.testing.assert_allclose(loaded.predict(batch, verbose=0), expected, atol=1e-6)
        assert loaded.get_layer(LOGITS) is not None and loaded.get_layer(LAST_CONV) is not None


def test_drop_stroke_keeps_the_longest() -> None:
    strokes = [[[0, 1], [0, 1]], [[0, 1, 2, 3], [0, 1, 2, 3]], [[5, 6], [5, 6]]]
    for seed in range(5):
        kept = drop_stroke(strokes, np.random.default_rng(seed))
        assert len(kept) == 2 and strokes[1] in kept
    assert drop_stroke(strokes[:2], np.random.default_rng(0)) == strokes[:2]


def test_augment_keeps_shape_range_and_most_ink() -> None:
    image = np.zeros((64, 64, 1), np.float32)
    image[20:44, 30:34] = 1.0
    for seed in range(5):
        out = augment_image(image, np.random.default_rng(seed))
        assert out.shape == (64, 64, 1) and out.dtype == np.float32
        assert 0.0 <= out.min() and out.max() <= 1.0
        # Jitter moves and scales by a few percent: the ink mass stays within a factor of two.
        assert 0.5 * image.sum() < out.sum() < 2.5 * image.sum()


def test_cross_domain_split_is_by_key_id_and_finds_twins(tiny_data: Path) -> None:
    from src.training.dataset import find_bitmap_twins, joins_training, load_training_data

    drawings = [Drawing("plus", [[[0, 9], [0, 9]]], str(i)) for i in range(200)]
    chosen = [joins_training(drawing, 50) for drawing in drawings]
    assert 70 < sum(chosen) < 130
    assert chosen == [joins_training(drawing, 50) for drawing in drawings]
    assert not any(joins_training(drawing, 0) for drawing in drawings)

    rng = np.random.default_rng(1)
    rasters = (rng.random((5, 64, 64)) * 255).astype(np.uint8)
    strokes = np.stack([rasters[3], (rng.random((64, 64)) * 255).astype(np.uint8)])
    assert find_bitmap_twins(strokes, rasters).tolist() == [3, -1]

    def config(percent: int) -> TrainConfig:
        return TrainConfig(
            bitmap_dir=tiny_data / "bitmaps",
            strokes_dir=tiny_data / "strokes",
            classes=("h", "plus"),
            cross_domain_train_percent=percent,
        )

    held_out = load_training_data(config(0), render_variants=False)
    assert held_out.counts["plus"]["strokes"]["cross_domain"] == 40
    assert len(held_out.cross_domain.labels) == 40
    split = load_training_data(config(50), render_variants=False)
    plus = split.counts["plus"]
    # The test split of the rasters does not depend on the stroke split.
    assert plus["bitmap"]["test"] == held_out.counts["plus"]["bitmap"]["test"]
    assert plus["strokes"]["cross_domain"] == len(split.cross_domain.labels) < 40


def test_held_out_strokes_are_exactly_the_drawings_training_holds_out(tiny_data: Path) -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.data.quickdraw import read_ndjson
    from src.training.dataset import held_out_strokes, load_training_data

    config = TrainConfig(
        bitmap_dir=tiny_data / "bitmaps",
        strokes_dir=tiny_data / "strokes",
        classes=("h", "plus"),
    )
    data = load_training_data(config, render_variants=False)
    plus = list(read_ndjson(tiny_data / "strokes" / "plus.ndjson"))
    held_plus = held_out_strokes(config, "plus", plus)
    assert len(held_plus) == data.counts["plus"]["strokes"]["cross_domain"]
    # Stroke-only class: its test split, rendered, is the data's test split for that label.
    h = list(read_ndjson(tiny_data / "strokes" / "h.ndjson"))
    held_h = held_out_strokes(config, "h", h)
    test_h = data.test.images[data.test.labels == 0]
    rendered = np.stack(
        [np.round(strokes_to_model_input(d.strokes)[..., 0] * 255).astype(np.uint8) for d in held_h]
    )
    # The same drawings, in any order.
    assert sorted(image.tobytes() for image in rendered) == sorted(
        image.tobytes() for image in test_h
    )


def _random_drawing(rng: np.random.Generator) -> list:
    """Two strokes of four random points: distinct from every other such drawing."""
    return [[rng.integers(0, 256, 4).tolist(), rng.integers(0, 256, 4).tolist()] for _ in range(2)]


def test_twins_of_held_out_strokes_never_reach_training(tmp_path: Path) -> None:
    from src.data.preprocess import to_model_input
    from src.data.raster import render_strokes
    from src.training.dataset import joins_training, load_training_data

    # Google's bitmaps and strokes come in pairs: bitmap i is stroke drawing i, rendered at 28x28.
    rng = np.random.default_rng(7)
    drawings = [Drawing("plus", _random_drawing(rng), f"key{i}") for i in range(60)]
    bitmaps = np.stack([render_strokes(d.strokes, size=28, line_width=1.5) for d in drawings])
    write_ndjson(drawings, tmp_path / "strokes" / "plus.ndjson")
    write_ndjson(drawings[:20], tmp_path / "strokes" / "h.ndjson")
    (tmp_path / "bitmaps").mkdir()
    np.save(tmp_path / "bitmaps" / "plus.npy", bitmaps.reshape(60, 784))
    config = TrainConfig(
        bitmap_dir=tmp_path / "bitmaps",
        strokes_dir=tmp_path / "strokes",
        classes=("h", "plus"),
        cross_domain_train_percent=50,
    )
    data = load_training_data(config, render_variants=False)

    def raster_key(bitmap: np.ndarray) -> bytes:
        return np.round(to_model_input(bitmap)[..., 0] * 255).astype(np.uint8).tobytes()

    keys = [raster_key(bitmap) for bitmap in bitmaps]
    assert len(set(keys)) == 60
    in_split = {
        name: {image.tobytes() for image in split.images}
        for name, split in (
            ("train", data.train),
            ("validation", data.validation),
            ("test", data.test),
        )
    }
    held_out = [i for i, d in enumerate(drawings) if not joins_training(d, 50)]
    joining = [i for i in range(60) if i not in held_out]
    assert held_out and joining
    # No held-out drawing's twin raster is trained on ...
    assert [i for i in held_out if keys[i] in in_split["train"]] == []
    # ... while rasters whose stroke twin joins training (or that have no held-out twin) still are.
    assert [i for i in joining if keys[i] in in_split["train"]]
    # A stroke joins training only when its twin raster is in the training split as well.
    twin_in_training = [i for i in joining if keys[i] in in_split["train"]]
    assert data.counts["plus"]["strokes"]["train"] == len(twin_in_training)
    assert data.counts["plus"]["strokes"]["skipped_twin_in_validation_or_test"] == (
        len(joining) - len(twin_in_training)
    )


@pytest.mark.slow
def test_weight_average_is_what_gets_shipped(tiny_data: Path, tmp_path: Path) -> None:
    """With a momentum near 1 the average barely leaves the first step's weights, so the shipped
    model stays next to its starting point while plain training at the same rate walks away."""
    import keras

    from src.models.cnn import build_cnn
    from src.training.train import train

    start = tmp_path / "start.h5"
    keras.utils.set_random_seed(0)
    build_cnn(ModelConfig(num_classes=3, filters=(8,), dense_units=8, dropout=0.0)).save(start)
    start_weights = keras.models.load_model(start, compile=False).get_weights()

    def distance_from_start(ema_momentum: float) -> float:
        config = _tiny_config(
            tiny_data,
            tmp_path,
            output_dir=tmp_path / f"out{ema_momentum}",
            epochs=3,
            learning_rate=3e-2,
            init_model=start,
            ema_momentum=ema_momentum,
        )
        shipped = keras.models.load_model(train(config).model_path, compile=False)
        # Trainable kernels only: batch-norm statistics are recomputed either way.
        return max(
            float(np.abs(after - before).max())
            for after, before, variable in zip(
                shipped.get_weights(), start_weights, shipped.weights, strict=True
            )
            if variable.trainable
        )

    plain = distance_from_start(0.0)
    averaged = distance_from_start(0.999999)
    # One Adam step moves each weight by about the learning rate; plain training, many steps.
    assert averaged < 2 * 3e-2
    assert plain > 4 * averaged


def test_weight_average_momentum_is_checked() -> None:
    from src.training.train import train

    with pytest.raises(ValueError, match="--ema_momentum must be at least 0 and below 1"):
        train(TrainConfig(strokes_dir=Path("."), classes=("a", "b"), ema_momentum=1.0))
