"""Train the sketch CNN: ``python -m src.training.train --bitmap_dir ... --strokes_dir ...``.

Writes ``<output_dir>/best_model.h5`` (best validation accuracy), the label mapping and
``<output_dir>/model_card.json``. Runs on any Keras 3 backend (augmentation is NumPy/Pillow).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

from src.config import TrainConfig
from src.data.labels import LabelMap
from src.training.batch_norm import recalibration_callback
from src.training.dataset import (
    SketchData,
    build_training_sequence,
    load_training_data,
    soft_targets,
)
from src.training.model_card import build_model_card, write_model_card
from src.utils.tensorflow_logging import configure_tensorflow_logging

logger = logging.getLogger(__name__)

# The shipped default: Google's 16 numpy_bitmap classes in shared/data, then the 8 stroke classes.
DEFAULT_CLASSES = (
    "airplane", "alarm clock", "apple", "banana", "bicycle", "bird", "book", "cat", "diamond",
    "dog", "eye", "fish", "flower", "house", "rainbow", "train",
    "teapot", "snowman", "smiley face", "necklace", "power outlet", "piano", "cake", "monkey",
)  # fmt: skip
MODEL_FILENAME = "best_model.h5"
CARD_FILENAME = "model_card.json"


@dataclass
class TrainResult:
    """What a training run produced: paths, per-epoch history and the card's metrics."""

    model_path: Path
    labels_path: Path
    card_path: Path
    history: dict[str, list[float]] = field(default_factory=dict)
    metrics: dict[str, object] = field(default_factory=dict)


def _validate(config: TrainConfig) -> None:
    """Refuse configurations that cannot train, naming the flag to fix."""
    if not config.classes or len(config.classes) < 2:
        raise ValueError("train needs at least two classes (--classes a,b,...)")
    if config.bitmap_dir is None and config.strokes_dir is None and config.images_dir is None:
        raise ValueError("give at least one of --bitmap_dir, --strokes_dir, --images_dir")
    if config.epochs < 1 or config.batch_size < 1:
        raise ValueError("--epochs and --batch_size must be positive")
    if not 0 <= config.ema_momentum < 1:
        raise ValueError("--ema_momentum must be at least 0 and below 1, e.g. 0.998")
    if not 0 <= config.cross_domain_train_percent <= 100:
        raise ValueError("--cross_domain_train_percent must be between 0 and 100")
    if not 0 <= config.validation_fraction + config.test_fraction < 1:
        raise ValueError("validation and test fractions must add up to less than 1")
    if config.distribute:
        from src.training.distribute import check_backend

        check_backend()


def _compile(model, config: TrainConfig, steps_per_epoch: int) -> None:  # type: ignore[no-untyped-def]
    """Adam with cosine decay, sparse cross-entropy, top-1 and top-3 accuracy."""
    import keras

    schedule = keras.optimizers.schedules.CosineDecay(
        config.learning_rate, decay_steps=max(config.epochs * steps_per_epoch, 1), alpha=0.02
    )
    # Soft targets: one-hot for known drawings, uniform for outliers (outlier exposure).
    model.compile(
        optimizer=keras.optimizers.Adam(
            schedule, use_ema=config.ema_momentum > 0, ema_momentum=config.ema_momentum
        ),
        loss=keras.losses.CategoricalCrossentropy(),
        metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(k=3, name="top3"),
        ],
    )


def _time_limit_callback(max_minutes: float):  # type: ignore[no-untyped-def]
    """A callback that stops training after the epoch that crosses ``max_minutes``."""
    import keras

    class TimeLimit(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs=None) -> None:  # type: ignore[no-untyped-def]
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            if time.perf_counter() - self.started > max_minutes * 60:
                logger.info(
                    "time limit of %.1f minutes reached after epoch %d", max_minutes, epoch + 1
                )
                self.model.stop_training = True

    return TimeLimit()


def _fit(  # type: ignore[no-untyped-def]
    model, data: SketchData, config: TrainConfig, model_path: Path, replicas: int = 1
) -> dict:
    """Run fit with early stopping and a best-checkpoint; returns the Keras history dict.

    ``replicas``: devices sharing each batch; every batch (the last one of an epoch and the
    validation batches included) then holds a multiple of it, so each device gets an equal part.
    """
    import keras

    sequence = build_training_sequence(
        data,
        config.batch_size,
        config.seed,
        config.workers,
        augment=config.augment,
        outlier_weight=config.outlier_weight,
        batch_multiple=replicas,
    )
    _compile(model, config, len(sequence))
    # With a weight average, it is swapped in before validation and at each epoch's end, so the
    # batch-norm recalibration, the checkpoint and early stopping all see the averaged weights.
    callbacks = (
        [keras.callbacks.SwapEMAWeights(swap_on_epoch=True)] if config.ema_momentum > 0 else []
    )
    callbacks += [
        # Before each validation: batch-norm statistics of the current weights, not of the
        # weights of the last ~100 steps (see src/training/batch_norm.py).
        recalibration_callback(lambda index: sequence[index][0], len(sequence)),
        keras.callbacks.ModelCheckpoint(
            str(model_path), monitor="val_accuracy", mode="max", save_best_only=True
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy",
            mode="max",
            patience=config.patience,
            restore_best_weights=True,
        ),
    ]
    if config.max_minutes > 0:
        callbacks.append(_time_limit_callback(config.max_minutes))
    validation = data.validation
    # A multiple of the replicas, so the last validation batch splits evenly too.
    kept = len(validation.labels) - len(validation.labels) % replicas
    history = model.fit(
        sequence,
        validation_data=(
            validation.as_float()[:kept],
            soft_targets(validation.labels[:kept], len(data.class_names)),
        ),
        validation_batch_size=config.batch_size,
        epochs=config.epochs,
        callbacks=callbacks,
        verbose=2 if os.environ.get("SKETCH_PROGRESS_BAR", "") != "1" else 1,
    )
    return {key: [float(value) for value in values] for key, values in history.history.items()}


def _add_open_set(card: dict, model, data: SketchData) -> None:  # type: ignore[no-untyped-def]
    """Choose and measure the "not sure" rule when outlier categories were loaded."""
    if data.outlier_validation is None or data.outlier_test is None:
        return
    from src.evaluation.open_set import open_set_card

    card["open_set"] = open_set_card(model, data)


@contextlib.contextmanager
def _distribution(config: TrainConfig) -> Iterator[int]:
    """Data parallel over every local device with ``--distribute``, else one device."""
    if not config.distribute:
        yield 1
        return
    from src.training.distribute import data_parallel

    with data_parallel(config.batch_size) as replicas:
        logger.info(
            "data parallel over %d devices, %d images each per batch",
            replicas,
            config.batch_size // replicas,
        )
        yield replicas


def train(config: TrainConfig) -> TrainResult:
    """Train a model on the configured data and write the model, label mapping and card.

    Args:
        config: data folders, classes, epochs and the rest (see ``TrainConfig``).

    Returns:
        A TrainResult with the written paths, the history and the evaluation metrics.

    Raises:
        ValueError: if the configuration cannot train (names the flag).
        DataFormatError: if a class has no data or a data file is malformed.
    """
    _validate(config)
    started = time.perf_counter()
    # Load (and fork render workers) before Keras starts its backend's threads.
    data = load_training_data(config, workers=config.workers)
    import keras

    from src.models.cnn import build_cnn

    keras.utils.set_random_seed(config.seed)
    output_dir = Path(config.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model_path = output_dir / MODEL_FILENAME
    with _distribution(config) as replicas:
        # Built inside the distribution's scope, so its variables are replicated on each device.
        if config.init_model is not None:
            model = keras.models.load_model(config.init_model, compile=False)
            logger.info("fine-tuning %s", config.init_model)
        else:
            model = build_cnn(replace(config.model, num_classes=len(config.classes)))
        history = _fit(model, data, config, model_path, replicas)
    training_seconds = time.perf_counter() - started
    # Evaluate the file actually shipped, which also proves it loads back.
    best = keras.models.load_model(model_path, compile=False)
    LabelMap(tuple(config.classes)).save(config.labels_path)
    card = build_model_card(best, data, config, history, training_seconds)
    card["training"]["devices"] = replicas
    _add_open_set(card, best, data)
    card_path = output_dir / CARD_FILENAME
    if config.init_model is not None:
        # Keep the record of how the starting model was trained (e.g. on a GPU).
        previous_card = Path(config.init_model).with_name(CARD_FILENAME)
        if previous_card.is_file():
            previous = json.loads(previous_card.read_text(encoding="utf-8"))
            card["training"]["initialised_from"] = previous.get("training", {})
    write_model_card(card, card_path)
    logger.info(
        "test top-1 %.4f top-3 %.4f; cross-domain strokes top-1 %s",
        card["metrics"]["test"]["top1"],
        card["metrics"]["test"]["top3"],
        card["cross_domain"].get("strokes_top1"),
    )
    return TrainResult(model_path, Path(config.labels_path), card_path, history, card["metrics"])


def evaluate_trained(config: TrainConfig, model_path: Path) -> TrainResult:
    """Rebuild the model card of a trained model on this machine (e.g. one trained on a GPU).

    The data split is the same as in training (same seed and fractions); the card's
    ``training`` block is kept from an existing card in ``output_dir``.
    """
    _validate(config)
    data = load_training_data(config, workers=config.workers, render_variants=False)
    import keras

    model = keras.models.load_model(model_path, compile=False)
    card_path = Path(config.output_dir) / CARD_FILENAME
    previous = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card = build_model_card(model, data, config, {}, 0.0)
    _add_open_set(card, model, data)
    card["training"] = previous.get("training", card["training"])
    card["evaluated_with_backend"] = keras.backend.backend()
    LabelMap(tuple(config.classes)).save(config.labels_path)
    write_model_card(card, card_path)
    return TrainResult(Path(model_path), Path(config.labels_path), card_path, {}, card["metrics"])


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags of ``python -m src.training.train``."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description="Train the SketchCAM sketch classifier.")
    parser.add_argument("--bitmap_dir", "--bitmap-dir", type=Path, help="folder of <class>.npy")
    parser.add_argument(
        "--strokes_dir", "--strokes-dir", type=Path, help="folder of <class>.ndjson"
    )
    parser.add_argument("--images_dir", "--images-dir", type=Path, help="folder of <class>/*.png")
    parser.add_argument(
        "--classes",
        default=",".join(DEFAULT_CLASSES),
        help="comma-separated class names, in output order (default: the 24)",
    )
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument(
        "--learning_rate", "--learning-rate", type=float, default=defaults.learning_rate
    )
    parser.add_argument("--output_dir", "--output-dir", type=Path, default=defaults.output_dir)
    parser.add_argument("--labels_path", "--labels-path", type=Path, default=defaults.labels_path)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--max_per_class",
        "--max-per-class",
        type=int,
        default=defaults.max_per_class,
        help="cap per class and source (0 = none)",
    )
    parser.add_argument("--patience", type=int, default=defaults.patience)
    parser.add_argument("--validation_fraction", type=float, default=defaults.validation_fraction)
    parser.add_argument("--test_fraction", type=float, default=defaults.test_fraction)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument(
        "--max_minutes",
        type=float,
        default=defaults.max_minutes,
        help="stop after the epoch that crosses this many minutes (0 = none)",
    )
    parser.add_argument(
        "--init_model",
        "--init-model",
        type=Path,
        help="fine-tune this trained model instead of starting fresh",
    )
    parser.add_argument(
        "--evaluate_model",
        "--evaluate-model",
        type=Path,
        help="skip training: rebuild the card of this trained model",
    )
    parser.add_argument(
        "--no_cross_domain_holdout",
        action="store_true",
        help="train on strokes of classes that also have bitmaps",
    )
    parser.add_argument(
        "--no_augment",
        "--no-augment",
        action="store_true",
        help="train on plain renders only (no pen, look or affine augmentation)",
    )
    parser.add_argument(
        "--outlier_exposure",
        "--outlier-exposure",
        action="store_true",
        help="train the other categories of --strokes_dir towards 'none of these' (open set)",
    )
    parser.add_argument("--outliers_per_category", type=int, default=defaults.outliers_per_category)
    parser.add_argument("--outlier_weight", type=float, default=defaults.outlier_weight)
    parser.add_argument(
        "--ema_momentum",
        type=float,
        default=defaults.ema_momentum,
        help="validate, checkpoint and ship an exponential moving average of the weights with "
        "this momentum, e.g. 0.998 (0 = off)",
    )
    parser.add_argument(
        "--synthetic_outliers",
        type=int,
        default=defaults.synthetic_outliers,
        help="with --outlier_exposure: this many scrambled known drawings and two-class chimeras "
        "also trained towards 'none of these'",
    )
    parser.add_argument(
        "--outlier_repeats",
        type=int,
        default=defaults.outlier_repeats,
        help="how many times each outlier drawing joins an epoch (each with its own renders)",
    )
    parser.add_argument(
        "--cross_domain_train_percent",
        type=int,
        default=defaults.cross_domain_train_percent,
        help="percent of the strokes of bitmap classes (by key_id hash) that join training",
    )
    parser.add_argument(
        "--distribute",
        action="store_true",
        help="data parallel over every local device (KERAS_BACKEND=jax); --batch_size is the "
        "global batch, split evenly across the devices",
    )
    parser.add_argument(
        "--verbose", action="store_true", help="also show TensorFlow's own start-up messages"
    )
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Fill a TrainConfig from parsed flags."""
    classes = tuple(name.strip() for name in args.classes.split(",") if name.strip())
    return TrainConfig(
        bitmap_dir=args.bitmap_dir,
        strokes_dir=args.strokes_dir,
        images_dir=args.images_dir,
        classes=classes,
        output_dir=args.output_dir,
        labels_path=args.labels_path,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        validation_fraction=args.validation_fraction,
        test_fraction=args.test_fraction,
        patience=args.patience,
        seed=args.seed,
        max_per_class=args.max_per_class,
        workers=args.workers,
        max_minutes=args.max_minutes,
        init_model=args.init_model,
        holdout_cross_domain=not args.no_cross_domain_holdout,
        cross_domain_train_percent=args.cross_domain_train_percent,
        augment=not args.no_augment,
        outlier_exposure=args.outlier_exposure,
        outliers_per_category=args.outliers_per_category,
        outlier_weight=args.outlier_weight,
        outlier_repeats=args.outlier_repeats,
        synthetic_outliers=args.synthetic_outliers,
        ema_momentum=args.ema_momentum,
        distribute=args.distribute,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse flags, train, log where the outputs went."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    configure_tensorflow_logging(args.verbose)
    config = config_from_args(args)
    try:
        if args.evaluate_model is not None:
            result = evaluate_trained(config, args.evaluate_model)
        else:
            result = train(config)
    except ValueError as error:
        # A configuration that cannot train: one line naming the flag to fix, as argparse does.
        sys.stderr.write(f"train: error: {error}\n")
        return 2
    logger.info("wrote %s, %s and %s", result.model_path, result.labels_path, result.card_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
