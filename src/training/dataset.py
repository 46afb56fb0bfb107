"""Training data: load every source, split deterministically, and feed augmented batches.

Rasters (numpy_bitmap rows, image files) go through ``to_model_input`` once and are stored as
uint8 64x64. Stroke drawings are kept as vectors and pre-rendered in several random variants
(stroke dropout, line width, Google's 28x28 look or a direct 64x64 render), because stroke
augmentation needs the vectors and rendering every epoch would starve a GPU.

Strokes of classes that also have rasters are split by a hash of their key_id: a share
(``cross_domain_train_percent``) joins training, so that the stroke look stops being a cue for
the stroke-only classes, and the rest is held out as the cross-domain set, which measures whether
the model recognises a drawing's shape whatever its look. Google's bitmaps and strokes overlap
(bitmap position i is stroke line i), so each stroke's bitmap twin is found by image similarity:
the twins of held-out strokes are kept out of training, and a training-half stroke whose twin is
in validation or test is skipped, so neither the test split nor the cross-domain set leaks.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from src.config import TrainConfig
from src.data.preprocess import strokes_to_model_input, to_model_input
from src.data.quickdraw import Drawing, load_bitmaps, read_image_folder, read_ndjson
from src.errors import DataFormatError
from src.training.augment import render_augmented_strokes
from src.training.synthetic_outliers import make_synthetic_outliers

logger = logging.getLogger(__name__)

# Random renderings kept per stroke drawing; each epoch picks one of them.
STROKE_VARIANTS = 6
# Label of an outlier drawing (a category the model must not claim): trained towards the
# uniform distribution over the known classes (outlier exposure).
OUTLIER_LABEL = -1
# Outlier categories are split by name, so held-out figures describe categories never seen.
OUTLIER_SPLIT_PERCENT = {"train": 60, "validation": 20, "test": 20}
TRAIN, VALIDATION, TEST = "train", "validation", "test"
CROSS_DOMAIN = "cross_domain"
# A stroke drawing's bitmap twin is its most similar raster if the correlation reaches this
# (set below what true twins score, so erring drops a few items rather than keeping twins).
TWIN_MIN_SIMILARITY = 0.6
# Training strokes of raster classes are few next to their rasters; each is queued this many
# times (different random renderings) so the stroke look is common in every class.
RASTER_CLASS_STROKE_REPEATS = 4


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
    # One restyled (thinner or thicker pen) copy of each training raster, uint8 (N, 64, 64).
    train_restyled: np.ndarray | None = None
    # Outlier categories by split name, and each split's drawings rendered for evaluation.
    outlier_categories: dict[str, list[str]] = field(default_factory=dict)
    outlier_validation: np.ndarray | None = None
    outlier_test: np.ndarray | None = None


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


def _load_strokes(config: TrainConfig, class_name: str) -> list[Drawing]:
    """The stroke drawings of one class from ``strokes_dir/<class>.ndjson`` (may be empty)."""
    if config.strokes_dir is None:
        return []
    file = Path(config.strokes_dir) / f"{class_name}.ndjson"
    if not file.is_file():
        return []
    return list(read_ndjson(file))


def joins_training(drawing: Drawing, percent: int) -> bool:
    """Whether a stroke drawing of a raster class joins training (else it is held out).

    Depends only on the drawing's identity: ``sha256("sketchcam-cross-domain:" + key_id)``
    (the strokes' compact JSON when there is no key_id), first 8 hex digits, modulo 100,
    below ``percent``.
    """
    identity = drawing.key_id or json.dumps(drawing.strokes, separators=(",", ":"))
    digest = hashlib.sha256(("sketchcam-cross-domain:" + identity).encode()).hexdigest()
    return int(digest[:8], 16) % 100 < percent


def held_out_strokes(
    config: TrainConfig, class_name: str, drawings: list[Drawing]
) -> list[Drawing]:
    """The stroke drawings of a class that training with ``config`` never sees.

    For a class that also has rasters in ``config.bitmap_dir`` (and the cross-domain hold-out
    on): the drawings that do not join training (``joins_training``). Otherwise the test split
    of the class's strokes, chosen exactly as ``load_training_data`` chooses it.
    """
    has_rasters = (
        config.bitmap_dir is not None and (Path(config.bitmap_dir) / f"{class_name}.npy").is_file()
    )
    if has_rasters and config.holdout_cross_domain:
        percent = config.cross_domain_train_percent
        return [drawing for drawing in drawings if not joins_training(drawing, percent)]
    kept = _cap(drawings, config, class_name)
    test = _split_indices(len(kept), config, f"{class_name}/strokes")[TEST]
    return [kept[index] for index in sorted(test)]


def find_bitmap_twins(strokes: np.ndarray, rasters: np.ndarray) -> np.ndarray:
    """For each stroke model input, the index of its raster twin, or -1 when there is none.

    Both arguments are uint8 (N, 64, 64) model inputs; the twin is the raster with the highest
    Pearson correlation if it reaches ``TWIN_MIN_SIMILARITY``.
    """
    if len(strokes) == 0 or len(rasters) == 0:
        return np.full(len(strokes), -1, np.int64)

    def normalised(images: np.ndarray) -> np.ndarray:
        flat = images.reshape(len(images), -1).astype(np.float32)
        flat -= flat.mean(axis=1, keepdims=True)
        return flat / np.maximum(np.linalg.norm(flat, axis=1, keepdims=True), 1e-6)

    similarity = normalised(strokes) @ normalised(rasters).T
    best = similarity.argmax(axis=1)
    found = similarity[np.arange(len(strokes)), best] >= TWIN_MIN_SIMILARITY
    return np.where(found, best, -1).astype(np.int64)


def outlier_split(category: str) -> str:
    """Which split an outlier category belongs to: ``sha256("sketchcam-open-set:" + name)``."""
    digest = hashlib.sha256(("sketchcam-open-set:" + category).encode()).hexdigest()
    bucket = int(digest[:8], 16) % 100
    if bucket < OUTLIER_SPLIT_PERCENT["train"]:
        return TRAIN
    if bucket < OUTLIER_SPLIT_PERCENT["train"] + OUTLIER_SPLIT_PERCENT["validation"]:
        return VALIDATION
    return TEST


def load_outliers(
    strokes_dir: Path, known: tuple[str, ...], per_category: int
) -> dict[str, list[tuple[str, list]]]:
    """Drawings of every category in ``strokes_dir`` that is not a known class, by split.

    Returns ``{split: [(category, strokes), ...]}`` with at most ``per_category`` drawings each.
    """
    by_split: dict[str, list[tuple[str, list]]] = {TRAIN: [], VALIDATION: [], TEST: []}
    for file in sorted(Path(strokes_dir).glob("*.ndjson")):
        if file.stem in known:
            continue
        drawings = [drawing.strokes for drawing in read_ndjson(file)][:per_category]
        by_split[outlier_split(file.stem)].extend((file.stem, strokes) for strokes in drawings)
    return by_split


def _restyle(job: tuple[np.ndarray, int]) -> np.ndarray:
    """One restyled copy of a raster (a process-pool job)."""
    from src.training.augment import restyle_raster

    image, seed = job
    return restyle_raster(image, np.random.default_rng(seed))


def _render_variants(job: tuple[list, int, bool]) -> np.ndarray:
    """STROKE_VARIANTS random renderings of one drawing (a process-pool job)."""
    strokes, seed, augment = job
    if not augment:
        plain = _to_uint8(strokes_to_model_input(strokes))
        return np.stack([plain] * STROKE_VARIANTS)
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
        images = [_to_uint8(to_model_input(raster)) for raster in rasters]
        parts = _split_indices(len(rasters), self.config, key)
        for split, indices in parts.items():
            self.add(split, [images[index] for index in indices], label, source)
        return {name: len(indices) for name, indices in parts.items()}

    def add_rasters_and_strokes(
        self, rasters: list, drawings: list, label: int, key: str, source: str
    ) -> dict[str, dict[str, int]]:
        """A class with both: rasters split as usual, strokes by key_id hash, twins kept apart."""
        images = [_to_uint8(to_model_input(raster)) for raster in rasters]
        parts = _split_indices(len(rasters), self.config, key)
        split_of = np.empty(len(rasters), dtype=object)
        for split, indices in parts.items():
            split_of[indices] = split
        stroke_images = [_to_uint8(strokes_to_model_input(d.strokes)) for d in drawings]
        twins = find_bitmap_twins(np.stack(stroke_images), np.stack(images))
        excluded: set[int] = set()
        train_strokes, held_out, skipped = [], [], 0
        for drawing, image, twin in zip(drawings, stroke_images, twins, strict=True):
            if not joins_training(drawing, self.config.cross_domain_train_percent):
                held_out.append(image)
                if twin >= 0:
                    excluded.add(int(twin))
            elif twin >= 0 and split_of[twin] != TRAIN:
                skipped += 1
            else:
                train_strokes.append(drawing.strokes)
        parts[TRAIN] = np.asarray([i for i in parts[TRAIN] if int(i) not in excluded], np.int64)
        for split, indices in parts.items():
            self.add(split, [images[index] for index in indices], label, source)
        self.add(CROSS_DOMAIN, held_out, label, "strokes")
        self.queue_train_strokes(train_strokes * RASTER_CLASS_STROKE_REPEATS, label)
        raster_counts = {name: len(indices) for name, indices in parts.items()}
        raster_counts["excluded_twins_of_cross_domain"] = int(
            sum(split_of[i] == TRAIN for i in excluded)
        )
        stroke_counts = {CROSS_DOMAIN: len(held_out), TRAIN: len(train_strokes)}
        stroke_counts["skipped_twin_in_validation_or_test"] = skipped
        return {source: raster_counts, "strokes": stroke_counts}

    def queue_train_strokes(self, strokes: list, label: int) -> None:
        """Queue training drawings for random pre-rendered variants."""
        for drawing in strokes:
            seed = self.config.seed * 1_000_003 + len(self.stroke_jobs)
            self.stroke_jobs.append((drawing, seed))
            self.stroke_labels.append(label)

    def add_strokes(self, strokes: list, label: int, key: str) -> dict[str, int]:
        """Split drawings: validation and test rendered as at inference, train queued for variants."""
        parts = _split_indices(len(strokes), self.config, key)
        for split in (VALIDATION, TEST):
            images = [_to_uint8(strokes_to_model_input(strokes[i])) for i in parts[split]]
            self.add(split, images, label, "strokes")
        self.queue_train_strokes([strokes[index] for index in parts[TRAIN]], label)
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
    if strokes and rasters and config.holdout_cross_domain:
        return collector.add_rasters_and_strokes(rasters, strokes, label, key, raster_source)
    if rasters:
        counts[raster_source] = collector.add_rasters(rasters, label, key, raster_source)
    if strokes:
        strokes = _cap([drawing.strokes for drawing in strokes], config, class_name)
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
    outliers = (
        load_outliers(Path(config.strokes_dir), tuple(config.classes), config.outliers_per_category)
        if config.outlier_exposure and config.strokes_dir is not None
        else {}
    )
    if outliers and render_variants:
        for _ in range(config.outlier_repeats):
            collector.queue_train_strokes(
                [strokes for _, strokes in outliers[TRAIN]], OUTLIER_LABEL
            )
    if config.outlier_exposure and render_variants and config.synthetic_outliers > 0:
        known = [
            (drawing, label)
            for (drawing, _), label in zip(collector.stroke_jobs, collector.stroke_labels)
            if label != OUTLIER_LABEL
        ]
        synthetic = make_synthetic_outliers(
            [drawing for drawing, _ in known],
            [label for _, label in known],
            config.synthetic_outliers,
            config.seed,
        )
        logger.info("queued %d synthetic outliers", len(synthetic))
        collector.queue_train_strokes(synthetic, OUTLIER_LABEL)
    jobs = (
        [(strokes, seed, config.augment) for strokes, seed in collector.stroke_jobs]
        if render_variants
        else []
    )
    logger.info("rendering %d x %d stroke variants", len(jobs), STROKE_VARIANTS)
    variants = _map(_render_variants, jobs, workers)
    train = collector.build(TRAIN)
    restyled = None
    if render_variants and config.augment:
        restyle_jobs = [
            (image, config.seed * 7919 + index) for index, image in enumerate(train.images)
        ]
        restyled = np.stack(_map(_restyle, restyle_jobs, workers)) if restyle_jobs else None
    return SketchData(
        class_names=tuple(config.classes),
        train=train,
        train_stroke_variants=(
            np.stack(variants) if variants else np.zeros((0, STROKE_VARIANTS, 64, 64), np.uint8)
        ),
        train_stroke_labels=np.asarray(collector.stroke_labels if jobs else [], np.int32),
        validation=collector.build(VALIDATION),
        test=collector.build(TEST),
        cross_domain=collector.build(CROSS_DOMAIN),
        counts=counts,
        train_restyled=restyled,
        outlier_categories={
            split: sorted({category for category, _ in items}) for split, items in outliers.items()
        },
        outlier_validation=_render_plain([strokes for _, strokes in outliers.get(VALIDATION, [])]),
        outlier_test=_render_plain([strokes for _, strokes in outliers.get(TEST, [])]),
    )


def _render_plain(drawings: list) -> np.ndarray | None:
    """Drawings rendered as at inference (uint8 (N, 64, 64)), or None when there are none."""
    if not drawings:
        return None
    return np.stack([_to_uint8(strokes_to_model_input(strokes)) for strokes in drawings])


def soft_targets(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """One-hot rows for known labels, the uniform distribution for ``OUTLIER_LABEL``."""
    targets = np.full((len(labels), num_classes), 1.0 / num_classes, np.float32)
    known = labels != OUTLIER_LABEL
    targets[known] = np.eye(num_classes, dtype=np.float32)[labels[known]]
    return targets


def build_training_sequence(  # type: ignore[no-untyped-def]
    data: SketchData,
    batch_size: int,
    seed: int,
    workers: int = 1,
    augment: bool = True,
    outlier_weight: float = 0.5,
    batch_multiple: int = 1,
):
    """A ``keras.utils.PyDataset`` of augmented training batches (NumPy/Pillow: any backend).

    Each epoch visits every raster and every stroke drawing once (one random pre-rendered variant
    per drawing) in a new order, and jitters each image with ``augment_image``. Batches are
    ``(images, soft targets, sample weights)``: outliers weigh ``outlier_weight``. A short last
    batch is topped up from the start of the epoch's order to a multiple of ``batch_multiple``
    (the devices that share each batch).
    """
    import keras

    from src.training.augment import AugmentConfig, augment_image

    n_raster = len(data.train.labels)
    labels = np.concatenate([data.train.labels, data.train_stroke_labels])
    num_classes = len(data.class_names)
    restyled = data.train_restyled if augment else None
    restyle_probability = AugmentConfig().restyle_probability

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
            if len(chosen) % batch_multiple:
                missing = batch_multiple - len(chosen) % batch_multiple
                chosen = np.concatenate([chosen, np.resize(self.order, missing)])
            batch = np.empty((len(chosen), 64, 64, 1), np.float32)
            for slot, item in enumerate(chosen):
                if item < n_raster:
                    use_restyled = restyled is not None and rng.random() < restyle_probability
                    base = restyled[item] if use_restyled else data.train.images[item]
                else:
                    base = data.train_stroke_variants[
                        item - n_raster, rng.integers(STROKE_VARIANTS)
                    ]
                image = (base.astype(np.float32) / 255.0)[..., None]
                batch[slot] = augment_image(image, rng) if augment else image
            chosen_labels = labels[chosen]
            weights = np.where(chosen_labels == OUTLIER_LABEL, outlier_weight, 1.0)
            return batch, soft_targets(chosen_labels, num_classes), weights.astype(np.float32)

        def on_epoch_end(self) -> None:
            self.start_at_epoch(self.epoch + 1)

        def start_at_epoch(self, epoch: int) -> None:
            """Continue with epoch ``epoch`` (0-based): its order and its batches' generators."""
            self.epoch = epoch
            self.order = np.random.default_rng([seed, epoch]).permutation(len(labels))

    return AugmentedSketches()
