"""Training data: load every source, split deterministically, and feed augmented batches.

Rasters (numpy_bitmap rows, image files) go through ``to_model_input`` once and are stored as
uint8 64x64. Stroke drawings are kept as vectors and pre-rendered in several random variants
(stroke dropout, line width, Google's 28x28 look or a direct 64x64 render), because stroke
augmentation needs the vectors and rendering every epoch would starve a GPU. Strokes of classes
that also have rasters are held out whole as the cross-domain set: they measure whether the
model recognises a drawing's shape whatever its look.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.config import TrainConfig
from src.data.preprocess import strokes_to_model_input, to_model_input
from src.data.quickdraw import load_bitmaps, read_image_folder, read_ndjson
from src.errors import DataFormatError
from src.training.augment import render_augmented_strokes

logger = logging.getLogger(__name__)

# Random renderings kept per stroke drawing; each epoch picks one of them.
STROKE_VARIANTS = 4
TRAIN, VALIDATION, TEST = "train", "validation", "test"


@dataclass
class Split:
    """Model inputs as uint8 (N, 64, 64), labels and the source of each item."""

    images: np.ndarray
    labels: np.ndarray
    sources: np.ndarray

    def as_float(self) -> np.ndarray:
        """The images as float32 (N, 64, 64, 1) in [0, 1], the model's input."""
        return (self.images.astype(np.float32) / 255.0)[..., np.newaxis]


@dataclass
class SketchData:
    """Everything training needs, split into train / validation / test / cross-domain."""

    class_names: tuple[str, ...]
    train: Split
    # Stroke variants of the training drawings: uint8 (M, STROKE_VARIANTS, 64, 64) and labels.
    train_stroke_variants: np.ndarray
    train_stroke_labels: np.ndarray
    validation: Split
    test: Split
    cross_domain: Split
    counts: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    """A float model input (64, 64, 1) in [0, 1] as uint8 (64, 64)."""
    return np.round(image[..., 0] * 255.0).astype(np.uint8)


def _split_indices(count: int, config: TrainConfig, key: str) -> dict[str, np.ndarray]:
    """Deterministic per-(class, source) split: the same seed gives the same items."""
    digest = sum(ord(character) * (index + 1) for index, character in enumerate(key))
    order = np.random.default_rng([config.seed, digest]).permutation(count)
    n_validation = int(round(count * config.validation_fraction))
    n_test = int(round(count * config.test_fraction))
    return {
        VALIDATION: order[:n_validation],
        TEST: order[n_validation : n_validation + n_test],
        TRAIN: order[n_validation + n_test :],
    }


def _cap(items: list, config: TrainConfig, key: str) -> list:
    """Keep at most max_per_class items, chosen deterministically."""
    if config.max_per_class <= 0 or len(items) <= config.max_per_class:
        return items
    keep = np.random.default_rng([config.seed, len(key)]).permutation(len(items))
    return [items[index] for index in sorted(keep[: config.max_per_class])]


def _load_rasters(config: TrainConfig, class_name: str) -> tuple[list[np.ndarray], str]:
    """The raster drawings of one class (bitmaps first, then image folders) and their source."""
    if config.bitmap_dir is not None:
        file = Path(config.bitmap_dir) / f"{class_name}.npy"
        if file.is_file():
            return list(load_bitmaps(file)), "bitmap"
    if config.images_dir is not None:
        folder = Path(config.images_dir) / class_name
        if folder.is_dir():
            images = [
                item.image
                for item in read_image_folder(Path(config.images_dir), only_class=class_name)
            ]
            return images, "image"
    return [], ""


def _load_strokes(config: TrainConfig, class_name: str) -> list[list]:
    """The stroke drawings of one class from ``strokes_dir/<class>.ndjson`` (may be empty)."""
    if config.strokes_dir is None:
        return []
    file = Path(config.strokes_dir) / f"{class_name}.ndjson"
    if not file.is_file():
        return []
    return [drawing.strokes for drawing in read_ndjson(file)]


def _render_variants(job: tuple[list, int]) -> np.ndarray:
    """STROKE_VARIANTS random renderings of one drawing (a process-pool job)."""
    strokes, seed = job
    rng = np.random.default_rng(seed)
    return np.stack(
        [_to_uint8(render_augmented_strokes(strokes, rng)) for _ in range(STROKE_VARIANTS)]
    )


def _map(function, jobs: list, workers: int) -> list:  # type: ignore[no-untyped-def]
    """Map in a process pool when there is enough work, else in this process."""
    if workers > 1 and len(jobs) > 200:
        with ProcessPoolExecutor(workers) as pool:
            return list(pool.map(function, jobs, chunksize=64))
    return [function(job) for job in jobs]


class _Collector:
    """Accumulates images, labels and sources per split, and the stroke jobs to render."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.parts: dict[str, tuple[list, list, list]] = {}
        self.stroke_jobs: list[tuple[list, int]] = []
        self.stroke_labels: list[int] = []

    def add(self, split: str, images: list[np.ndarray], label: int, source: str) -> None:
        images_list, labels, sources = self.parts.setdefault(split, ([], [], []))
        images_list.extend(images)
        labels.extend([label] * len(images))
        sources.extend([source] * len(images))

    def add_rasters(self, rasters: list, label: int, key: str, source: str) -> dict[str, int]:
        """Split rasters and store their model inputs; returns the count per split."""
        parts = _split_indices(len(rasters), self.config, key)
        for split, indices in parts.items():
            images = [_to_uint8(to_model_input(rasters[index])) for index in indices]
            self.add(split, images, label, source)
        return {name: len(indices) for name, indices in parts.items()}

    def add_strokes(self, strokes: list, label: int, key: str) -> dict[str, int]:
        """Split drawings: validation and test rendered as at inference, train queued for variants."""
        parts = _split_indices(len(strokes), self.config, key)
        for split in (VALIDATION, TEST):
            images = [_to_uint8(strokes_to_model_input(strokes[i])) for i in parts[split]]
            self.add(split, images, label, "strokes")
        for index in parts[TRAIN]:
            seed = self.config.seed * 1_000_003 + len(self.stroke_jobs)
            self.stroke_jobs.append((strokes[index], seed))
            self.stroke_labels.append(label)
        return {name: len(indices) for name, indices in parts.items()}

    def build(self, split: str) -> Split:
        images, labels, sources = self.parts.get(split, ([], [], []))
        stacked = np.stack(images) if images else np.zeros((0, 64, 64), np.uint8)
        return Split(stacked, np.asarray(labels, np.int32), np.asarray(sources, dtype=str))


def _add_class(collector: _Collector, label: int, class_name: str) -> dict[str, dict[str, int]]:
    """Load one class's rasters and strokes into the collector; returns its counts."""
    config = collector.config
    rasters, raster_source = _load_rasters(config, class_name)
    strokes = _load_strokes(config, class_name)
    if not rasters and not strokes:
        raise DataFormatError(
            f"class {class_name!r} has no data: expected <bitmap_dir>/{class_name}.npy, "
            f"<strokes_dir>/{class_name}.ndjson or <images_dir>/{class_name}/"
        )
    counts: dict[str, dict[str, int]] = {}
    if rasters:
        rasters = _cap(rasters, config, class_name)
        key = f"{class_name}/{raster_source}"
        counts[raster_source] = collector.add_rasters(rasters, label, key, raster_source)
    if strokes and rasters and config.holdout_cross_domain:
        images = [_to_uint8(strokes_to_model_input(drawing)) for drawing in strokes]
        collector.add("cross_domain", images, label, "strokes")
        counts["strokes"] = {"cross_domain": len(strokes)}
    elif strokes:
        strokes = _cap(strokes, config, class_name)
        counts["strokes"] = collector.add_strokes(strokes, label, f"{class_name}/strokes")
    return counts


def load_training_data(
    config: TrainConfig, workers: int = 1, render_variants: bool = True
) -> SketchData:
    """Load, split and pre-render every class of ``config.classes``.

    ``render_variants=False`` skips the training renders (for evaluating a trained model).

    Raises:
        DataFormatError: if a class has no data in any of the given folders.
    """
    collector = _Collector(config)
    counts = {}
    for label, class_name in enumerate(config.classes):
        counts[class_name] = _add_class(collector, label, class_name)
        logger.info("loaded %s: %s", class_name, counts[class_name])
    jobs = collector.stroke_jobs if render_variants else []
    logger.info("rendering %d x %d stroke variants", len(jobs), STROKE_VARIANTS)
    variants = _map(_render_variants, jobs, workers)
    return SketchData(
        class_names=tuple(config.classes),
        train=collector.build(TRAIN),
        train_stroke_variants=(
            np.stack(variants) if variants else np.zeros((0, STROKE_VARIANTS, 64, 64), np.uint8)
        ),
        train_stroke_labels=np.asarray(collector.stroke_labels if jobs else [], np.int32),
        validation=collector.build(VALIDATION),
        test=collector.build(TEST),
        cross_domain=collector.build("cross_domain"),
        counts=counts,
    )


def source_counts(split: Split) -> dict[str, int]:
    """How many items of each source a split holds."""
    return dict(Counter(split.sources.tolist()))


def build_training_sequence(data: SketchData, batch_size: int, seed: int, workers: int = 1):  # type: ignore[no-untyped-def]
    """A ``keras.utils.PyDataset`` of augmented training batches (NumPy/Pillow: any backend).

    Each epoch visits every raster and every stroke drawing once (one random pre-rendered variant
    per drawing) in a new order, and jitters each image with ``augment_image``.
    """
    import keras

    from src.training.augment import augment_image

    n_raster = len(data.train.labels)
    labels = np.concatenate([data.train.labels, data.train_stroke_labels])

    class AugmentedSketches(keras.utils.PyDataset):  # type: ignore[misc]
        """Shuffled, augmented (images, labels) batches."""

        def __init__(self) -> None:
            super().__init__(workers=workers, use_multiprocessing=False)
            self.epoch = 0
            self.order = np.random.default_rng([seed, 0]).permutation(len(labels))

        def __len__(self) -> int:
            return math.ceil(len(labels) / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            # A per-batch generator keeps batches reproducible and thread-safe.
            rng = np.random.default_rng([seed, self.epoch, index])
            chosen = self.order[index * batch_size : (index + 1) * batch_size]
            batch = np.empty((len(chosen), 64, 64, 1), np.float32)
            for slot, item in enumerate(chosen):
                if item < n_raster:
                    base = data.train.images[item]
                else:
                    base = data.train_stroke_variants[
                        item - n_raster, rng.integers(STROKE_VARIANTS)
                    ]
                batch[slot] = augment_image((base.astype(np.float32) / 255.0)[..., None], rng)
            return batch, labels[chosen]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = np.random.default_rng([seed, self.epoch]).permutation(len(labels))

    return AugmentedSketches()
