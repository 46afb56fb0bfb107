"""A run's rendered training data is kept beside its checkpoint and reused only when it matches."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from src.config import TrainConfig


def _config(tiny_data: Path, **overrides: object) -> TrainConfig:
    return TrainConfig(
        bitmap_dir=tiny_data / "bitmaps",
        strokes_dir=tiny_data / "strokes",
        classes=("h", "v", "plus"),
        workers=1,
        **overrides,  # type: ignore[arg-type]
    )


def _assert_same_data(got: object, expected: object) -> None:
    for field in dataclasses.fields(expected):  # type: ignore[arg-type]
        value, wanted = getattr(got, field.name), getattr(expected, field.name)
        if dataclasses.is_dataclass(wanted):
            _assert_same_data(value, wanted)
        elif isinstance(wanted, np.ndarray):
            np.testing.assert_array_equal(value, wanted)
        else:
            assert value == wanted, field.name


def test_cached_data_equals_a_fresh_load_and_skips_building(
    tiny_data: Path, tmp_path: Path
) -> None:
    from src.training.data_cache import load_or_build
    from src.training.dataset import load_training_data

    config = _config(tiny_data)
    builds: list[int] = []

    def build():  # type: ignore[no-untyped-def]
        builds.append(1)
        return load_training_data(config, workers=1)

    first = load_or_build(config, tmp_path, build)
    # Settings that only change how the model trains keep the cache.
    again = load_or_build(
        dataclasses.replace(config, epochs=99, learning_rate=0.5), tmp_path, build
    )
    assert len(builds) == 1
    _assert_same_data(again, load_training_data(config, workers=1))
    _assert_same_data(again, first)


def test_other_data_settings_or_changed_files_rebuild(tiny_data: Path, tmp_path: Path) -> None:
    from src.training.data_cache import load_or_build
    from src.training.dataset import load_training_data

    builds: list[int] = []

    def builder(config: TrainConfig):  # type: ignore[no-untyped-def]
        def build():  # type: ignore[no-untyped-def]
            builds.append(1)
            return load_training_data(config, workers=1)

        return build

    config = _config(tiny_data)
    load_or_build(config, tmp_path, builder(config))
    other_seed = dataclasses.replace(config, seed=7)
    load_or_build(other_seed, tmp_path, builder(other_seed))
    assert len(builds) == 2
    # The cache now holds seed 7; a data file that changed since makes it stale too.
    bitmaps = tiny_data / "bitmaps" / "plus.npy"
    status = bitmaps.stat()
    os.utime(bitmaps, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))
    try:
        load_or_build(other_seed, tmp_path, builder(other_seed))
    finally:
        os.utime(bitmaps, ns=(status.st_atime_ns, status.st_mtime_ns))
    assert len(builds) == 3


def test_unreadable_cache_is_rebuilt(tiny_data: Path, tmp_path: Path) -> None:
    from src.training.data_cache import CACHE_FILENAME, load_or_build
    from src.training.dataset import load_training_data

    config = _config(tiny_data)
    (tmp_path / CACHE_FILENAME).write_bytes(b"PK\x03\x04 truncated")
    data = load_or_build(config, tmp_path, lambda: load_training_data(config, workers=1))
    _assert_same_data(data, load_training_data(config, workers=1))
