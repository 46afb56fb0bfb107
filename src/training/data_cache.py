"""Keep a run's loaded and rendered training data beside its checkpoint, so a resume skips it.

Rendering every stroke drawing in several variants is the slowest part of starting a run on
a CPU; the result depends only on the data files and the data settings, so it is stored once
(``<output_dir>/checkpoint/data.npz``) under a key made of both, and used again only when the
key matches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from src.config import TrainConfig
from src.training.dataset import SketchData, Split
from src.training.publish import publish_together

logger = logging.getLogger(__name__)

CACHE_FILENAME = "data.npz"
# Settings that change how the model trains but never which images it trains on.
NOT_DATA_SETTINGS = frozenset(
    {
        "epochs", "max_minutes", "patience", "workers", "resume", "output_dir", "labels_path",
        "learning_rate", "batch_size", "ema_momentum", "outlier_weight", "architecture",
        "architecture_comparison", "init_model", "distribute", "model",
    }
)  # fmt: skip
_SPLITS = ("train", "validation", "test", "cross_domain")
_ARRAYS = ("train_stroke_variants", "train_stroke_labels", "train_restyled")
_OPTIONAL = ("outlier_validation", "outlier_test")


def data_key(config: TrainConfig) -> str:
    """A digest of the data settings and of every data file's name, size and change time."""
    settings = {
        name: str(value)
        for name, value in dataclasses.asdict(config).items()
        if name not in NOT_DATA_SETTINGS
    }
    files = []
    for folder in (config.bitmap_dir, config.strokes_dir, config.images_dir):
        if folder is not None and Path(folder).is_dir():
            for file in sorted(Path(folder).rglob("*")):
                if file.is_file():
                    status = file.stat()
                    files.append([str(file), status.st_size, status.st_mtime_ns])
    text = json.dumps({"settings": settings, "files": files}, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _to_arrays(data: SketchData, key: str) -> dict[str, np.ndarray]:
    """SketchData as named arrays; the small dictionaries travel as one JSON string."""
    arrays: dict[str, np.ndarray] = {}
    for split in _SPLITS:
        for part in ("images", "labels", "sources"):
            arrays[f"{split}.{part}"] = getattr(getattr(data, split), part)
    for name in (*_ARRAYS, *_OPTIONAL):
        if getattr(data, name) is not None:
            arrays[name] = getattr(data, name)
    small = {
        "key": key,
        "class_names": list(data.class_names),
        "counts": data.counts,
        "outlier_categories": data.outlier_categories,
    }
    arrays["meta"] = np.asarray(json.dumps(small))
    return arrays


def _from_arrays(stored: dict[str, np.ndarray], small: dict) -> SketchData:
    """The inverse of ``_to_arrays``."""
    splits = {
        split: Split(*(stored[f"{split}.{part}"] for part in ("images", "labels", "sources")))
        for split in _SPLITS
    }
    return SketchData(
        class_names=tuple(small["class_names"]),
        counts=small["counts"],
        outlier_categories=small["outlier_categories"],
        **splits,
        **{name: stored.get(name) for name in (*_ARRAYS, *_OPTIONAL)},
    )


def _read(path: Path, key: str) -> SketchData | None:
    """The cached data when the file exists, is readable and was stored under ``key``."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as file:
            small = json.loads(str(file["meta"]))
            if small["key"] != key:
                return None
            return _from_arrays({name: file[name] for name in file.files}, small)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        logger.warning("ignoring the unreadable data cache %s (%s)", path, error)
        return None


def load_or_build(
    config: TrainConfig, directory: Path, build: Callable[[], SketchData]
) -> SketchData:
    """The data of ``config`` from ``directory``'s cache when it matches, else ``build()`` it.

    A freshly built result is stored for the next start (a resume or a restart with the same
    data settings); a cache that cannot be written only costs that saving.
    """
    key = data_key(config)
    path = directory / CACHE_FILENAME
    cached = _read(path, key)
    if cached is not None:
        logger.info("training data from %s (rendering skipped)", path)
        return cached
    data = build()
    arrays = _to_arrays(data, key)
    try:
        publish_together({path: lambda temporary: np.savez_compressed(temporary, **arrays)})
    except OSError as error:
        logger.warning("could not keep the training data in %s (%s)", path, error)
    return data
