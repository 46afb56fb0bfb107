"""``--no_augment``: the training sequence feeds the stored renders unchanged."""

from __future__ import annotations

import numpy as np
import pytest


def _data():  # type: ignore[no-untyped-def]
    """Five distinct rasters and three stroke drawings whose variants are one plain render each."""
    from src.training.dataset import STROKE_VARIANTS, SketchData, Split

    rng = np.random.default_rng(0)
    rasters = rng.integers(0, 256, (5, 64, 64), dtype=np.uint8)
    renders = rng.integers(0, 256, (3, 64, 64), dtype=np.uint8)
    # With augmentation off every variant of a drawing is its one plain render (dataset.py).
    variants = np.repeat(renders[:, None], STROKE_VARIANTS, axis=1)
    empty = Split(np.zeros((0, 64, 64), np.uint8), np.zeros(0, np.int32), np.zeros(0, str))
    train = Split(rasters, np.array([0, 1, 2, 0, 1]), np.array(["bitmap"] * 5))
    data = SketchData(
        ("a", "b", "c"),
        train,
        variants,
        np.array([2, 1, 0], np.int32),
        empty,
        empty,
        empty,
        # A restyled copy that must not be used when augmentation is off.
        train_restyled=255 - rasters,
    )
    return data, np.concatenate([rasters, renders])


@pytest.mark.parametrize("augment", [False, True])
def test_sequence_feeds_stored_images_only_without_augmentation(augment: bool) -> None:
    from src.training.dataset import build_training_sequence

    data, stored = _data()
    images, targets, _ = build_training_sequence(data, 8, seed=0, augment=augment)[0]
    fed = sorted(np.round(image[..., 0] * 255).astype(np.uint8).tobytes() for image in images)
    unchanged = fed == sorted(image.tobytes() for image in stored)
    # Off: exactly the stored images, each once; on: jittered, so not all of them survive.
    assert unchanged is not augment
    assert targets.shape == (8, 3)


def test_no_augment_flag_turns_augmentation_off() -> None:
    from src.training.train import build_parser, config_from_args

    parser = build_parser()
    assert config_from_args(parser.parse_args(["--strokes_dir", "x"])).augment is True
    assert (
        config_from_args(parser.parse_args(["--strokes_dir", "x", "--no_augment"])).augment is False
    )


def test_short_last_batch_is_topped_up_to_a_multiple_of_the_devices() -> None:
    from src.training.dataset import build_training_sequence

    data, stored = _data()
    # 8 items in batches of 6: the last batch has 2, topped up to 3 devices' worth.
    sequence = build_training_sequence(data, 6, seed=0, augment=False, batch_multiple=3)
    first, _, _ = sequence[0]
    last, targets, weights = sequence[1]
    assert len(first) == 6 and len(last) == 3 and len(targets) == len(weights) == 3
    keys = [np.round(image[..., 0] * 255).astype(np.uint8).tobytes() for image in last]
    # The extra item is the epoch's first one: every stored image is still fed, none invented.
    first_keys = {np.round(image[..., 0] * 255).astype(np.uint8).tobytes() for image in first}
    assert keys[2] in first_keys
    assert {*keys, *first_keys} == {image.tobytes() for image in stored}
    # Without a multiple the last batch keeps its natural size.
    assert len(build_training_sequence(data, 6, seed=0, augment=False)[1][0]) == 2
