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

from src.cli.exit_status import EXIT_CODES_HELP, ExitStatus, run_guarded
from src.config import ModelConfig, TrainConfig
from src.data.labels import LabelMap
from src.models.architectures import (
    ARCHITECTURE_NAMES,
    DEFAULT_ARCHITECTURE,
    config_with_filters,
)
from src.models.io import load_model
from src.training.batch_norm import recalibration_callback
from src.training.checkpoint import (
    BEST_FILENAME,
    checkpoint_callbacks,
    checkpoint_dir,
    clear_checkpoint,
    load_config,
    read_state,
    restore,
    save_config,
)
from src.training.dataset import (
    SketchData,
    build_training_sequence,
    load_training_data,
    soft_targets,
)
from src.training.guards import check_finite, check_hyperparameters, check_writable_folder
from src.training.model_card import build_model_card
from src.training.publish import copy_from, json_writer, publish_together
from src.utils.tensorflow_logging import configure_tensorflow_logging

logger = logging.getLogger(__name__)

# The shipped default: Google's 16 numpy_bitmap classes in shared/data, then the 8 stroke classes.
DEFAULT_CLASSES = (
    "airplane", "alarm clock", "apple", "banana", "bicycle", "bird", "book", "cat", "diamond",
    "dog", "eye", "fish", "flower", "house", "rainbow", "train",
    "teapot", "snowman", "smiley face", "necklace", "power outlet", "piano", "cake", "monkey",
)  # fmt: skip
MODEL_FILENAME = "best_model.h5"
# What ``--resume`` may change; everything else comes from the stopped run's saved settings.
RESUME_OVERRIDES = ("epochs", "max_minutes", "patience", "workers")
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
    # A repeated class name is refused here, before any data is read, as LabelMap refuses it.
    LabelMap(tuple(config.classes))
    if config.bitmap_dir is None and config.strokes_dir is None and config.images_dir is None:
        raise ValueError("give at least one of --bitmap_dir, --strokes_dir, --images_dir")
    check_hyperparameters(
        {
            "--learning_rate": config.learning_rate,
            "--outlier_weight": config.outlier_weight,
            "--ema_momentum": config.ema_momentum,
            "--max_minutes": config.max_minutes,
            "--validation_fraction": config.validation_fraction,
            "--test_fraction": config.test_fraction,
        }
    )
    if config.learning_rate <= 0 or config.outlier_weight < 0 or config.max_minutes < 0:
        raise ValueError(
            "--learning_rate must be positive, --outlier_weight and --max_minutes not negative"
        )
    if config.validation_fraction <= 0 or config.test_fraction < 0:
        raise ValueError("--validation_fraction must be positive, --test_fraction not negative")
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
    """A callback that ends training once another epoch would cross ``max_minutes``.

    The next epoch is assumed to last as long as the slowest so far, so a run given a time
    budget ends inside it, with the last epoch's checkpoint ready for ``--resume``.
    """
    import keras

    class TimeLimit(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_begin(self, logs=None) -> None:  # type: ignore[no-untyped-def]
            self.started = time.perf_counter()
            self.slowest = 0.0

        def on_epoch_begin(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            self.epoch_started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            now = time.perf_counter()
            self.slowest = max(self.slowest, now - self.epoch_started)
            if now - self.started + self.slowest > max_minutes * 60:
                logger.info(
                    "time limit of %.1f minutes: stopping after epoch %d (resumable)",
                    max_minutes,
                    epoch + 1,
                )
                self.model.stop_training = True

    return TimeLimit()


def fit_model(  # type: ignore[no-untyped-def]
    model, data: SketchData, config: TrainConfig, directory: Path, replicas: int = 1
) -> dict:
    """Run fit with early stopping, a best-checkpoint and a resumable checkpoint per epoch.

    ``directory``: the checkpoint folder; with ``config.resume`` the run continues from the
    state there. Returns the Keras history dict of every epoch, resumed ones included.
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
    state = read_state(directory) if config.resume else None
    if state is not None:
        restore(model, directory, state)
        sequence.start_at_epoch(state["epochs_done"])
    best_checkpoint = keras.callbacks.ModelCheckpoint(
        str(directory / BEST_FILENAME), monitor="val_accuracy", mode="max", save_best_only=True
    )
    # The best model on disk is what train() evaluates and ships, so no in-memory copy is kept.
    early_stopping = keras.callbacks.EarlyStopping(
        monitor="val_accuracy", mode="max", patience=config.patience
    )
    save_weights, save_state = checkpoint_callbacks(
        directory, state, early_stopping, best_checkpoint
    )
    # First: the raw weights are saved before SwapEMAWeights swaps the average in.
    callbacks = [save_weights, keras.callbacks.TerminateOnNaN()]
    # With a weight average, it is swapped in before validation and at each epoch's end, so the
    # batch-norm recalibration, the checkpoint and early stopping all see the averaged weights.
    if config.ema_momentum > 0:
        callbacks.append(keras.callbacks.SwapEMAWeights(swap_on_epoch=True))
    # Before each validation: batch-norm statistics of the current weights, not of the
    # weights of the last ~100 steps (see src/training/batch_norm.py).
    callbacks += [
        recalibration_callback(lambda index: sequence[index][0], len(sequence)),
        best_checkpoint,
        early_stopping,
    ]
    if config.max_minutes > 0:
        callbacks.append(_time_limit_callback(config.max_minutes))
    callbacks.append(save_state)
    validation = data.validation
    # A multiple of the replicas, so the last validation batch splits evenly too.
    kept = len(validation.labels) - len(validation.labels) % replicas
    model.fit(
        sequence,
        validation_data=(
            validation.as_float()[:kept],
            soft_targets(validation.labels[:kept], len(data.class_names)),
        ),
        validation_batch_size=config.batch_size,
        epochs=config.epochs,
        initial_epoch=state["epochs_done"] if state else 0,
        # The sequence shuffles by (seed, epoch) itself; Keras's own shuffle of the batch order
        # draws on Python's global generator, which a resumed process would not replay.
        shuffle=False,
        callbacks=callbacks,
        verbose=2 if os.environ.get("SKETCH_PROGRESS_BAR", "") != "1" else 1,
    )
    return save_state.history


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
    output_dir = Path(config.output_dir)
    directory = checkpoint_dir(output_dir)
    # Checked before the (long) data loading, so a bad output path fails at once.
    check_writable_folder(output_dir, "--output_dir")
    check_writable_folder(Path(config.labels_path).parent, "--labels_path")
    check_writable_folder(directory, "--output_dir")
    if not config.resume:
        clear_checkpoint(directory)
        save_config(config, directory)
    # Load (and fork render workers) before Keras starts its backend's threads.
    data = load_training_data(config, workers=config.workers)
    import keras

    keras.utils.set_random_seed(config.seed)
    with _distribution(config) as replicas:
        # Built inside the distribution's scope, so its variables are replicated on each device.
        model = _initial_model(config)
        history = fit_model(model, data, config, directory, replicas)
    check_finite(history)
    training_seconds = time.perf_counter() - started
    # Evaluate the file actually shipped, which also proves it loads back.
    best_path = directory / BEST_FILENAME
    best = load_model(best_path)
    card = build_model_card(best, data, config, history, training_seconds)
    card["training"]["devices"] = replicas
    card["training"]["architecture"] = config.architecture
    _add_open_set(card, best, data)
    _keep_initial_record(card, config)
    result = TrainResult(
        output_dir / MODEL_FILENAME,
        Path(config.labels_path),
        output_dir / CARD_FILENAME,
        history,
        card["metrics"],
    )
    publish_together(
        {
            result.model_path: copy_from(best_path),
            result.labels_path: LabelMap(tuple(config.classes)).save,
            result.card_path: json_writer(card),
        }
    )
    logger.info(
        "test top-1 %.4f top-3 %.4f; cross-domain strokes top-1 %s",
        card["metrics"]["test"]["top1"],
        card["metrics"]["test"]["top3"],
        card["cross_domain"].get("strokes_top1"),
    )
    return result


def _initial_model(config: TrainConfig):  # type: ignore[no-untyped-def]
    """The model to train: the ``--init_model`` to fine-tune, else a fresh architecture."""
    if config.init_model is not None:
        logger.info("fine-tuning %s", config.init_model)
        return load_model(config.init_model)
    from src.models.architectures import build_model

    return build_model(config.architecture, replace(config.model, num_classes=len(config.classes)))


def _keep_initial_record(card: dict, config: TrainConfig) -> None:
    """Keep the record of how the starting model was trained (e.g. on a GPU)."""
    if config.init_model is None:
        return
    previous_card = Path(config.init_model).with_name(CARD_FILENAME)
    if previous_card.is_file():
        previous = json.loads(previous_card.read_text(encoding="utf-8"))
        card["training"]["initialised_from"] = previous.get("training", {})


def evaluate_trained(config: TrainConfig, model_path: Path) -> TrainResult:
    """Rebuild the model card of a trained model on this machine (e.g. one trained on a GPU).

    The data split is the same as in training (same seed and fractions); the card's
    ``training`` block is kept from an existing card in ``output_dir``.
    """
    _validate(config)
    check_writable_folder(Path(config.output_dir), "--output_dir")
    check_writable_folder(Path(config.labels_path).parent, "--labels_path")
    model = load_model(model_path)
    data = load_training_data(config, workers=config.workers, render_variants=False)
    import keras

    card_path = Path(config.output_dir) / CARD_FILENAME
    previous = json.loads(card_path.read_text(encoding="utf-8")) if card_path.is_file() else {}
    card = build_model_card(model, data, config, {}, 0.0)
    _add_open_set(card, model, data)
    card["training"] = previous.get("training", card["training"])
    card["evaluated_with_backend"] = keras.backend.backend()
    publish_together(
        {
            Path(config.labels_path): LabelMap(tuple(config.classes)).save,
            card_path: json_writer(card),
        }
    )
    return TrainResult(Path(model_path), Path(config.labels_path), card_path, {}, card["metrics"])


def _widths(text: str) -> tuple[int, ...]:
    """Parse ``--filters 48,96,192`` into positive stage widths."""
    try:
        widths = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None
    if not widths or min(widths) < 1:
        raise argparse.ArgumentTypeError(f"expected positive stage widths, got {text!r}")
    return widths


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags of ``python -m src.training.train``."""
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(
        description="Train the SketchCAM sketch classifier.", epilog=EXIT_CODES_HELP
    )
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
        "--architecture",
        choices=ARCHITECTURE_NAMES,
        default=DEFAULT_ARCHITECTURE,
        help="the network a fresh run builds (see src/models/architectures.py)",
    )
    parser.add_argument(
        "--filters",
        type=_widths,
        default=None,
        help="comma-separated stage widths, e.g. 48,96,192 (default: the architecture's own)",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="continue the stopped run whose output folder is DIR, with its own settings "
        "(only --epochs, --max_minutes, --patience and --workers may change)",
        metavar="DIR",
    )
    parser.add_argument("--traceback", action="store_true", help="show the full trace of an error")
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
        architecture=args.architecture,
        model=config_with_filters(ModelConfig(), args.architecture, args.filters),
    )


def _resumed_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainConfig:
    """The configuration saved in ``--resume DIR``, with the flags that may change applied."""
    from dataclasses import replace as with_changes

    config = load_config(args.resume)
    changed = {
        name: getattr(args, name)
        for name in RESUME_OVERRIDES
        if getattr(args, name) != parser.get_default(name)
    }
    return with_changes(config, **changed, output_dir=args.resume, resume=True)


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Train, resume or evaluate as the flags say; bad configurations exit 2."""
    try:
        if args.resume is not None:
            result = train(_resumed_config(args, parser))
        elif args.evaluate_model is not None:
            result = evaluate_trained(config_from_args(args), args.evaluate_model)
        else:
            result = train(config_from_args(args))
    except ValueError as error:
        # A configuration that cannot train: one line naming the flag to fix, as argparse does.
        sys.stderr.write(f"train: error: {error}\n")
        return int(ExitStatus.USAGE)
    logger.info("wrote %s, %s and %s", result.model_path, result.labels_path, result.card_path)
    return int(ExitStatus.SUCCESS)


def main(argv: list[str] | None = None) -> int:
    """Entry point: parse flags, train, log where the outputs went; returns the exit code.

    Bad data, unwritable outputs, a diverged loss and Ctrl-C end with one line on stderr and
    the documented exit code of ``src/cli/exit_status.py``.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_tensorflow_logging(args.verbose)
    return run_guarded("train", lambda: _run(args, parser), args.traceback)


if __name__ == "__main__":
    raise SystemExit(main())
