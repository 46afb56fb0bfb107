"""Train the sketch CNN: ``python -m src.training.train --bitmap_dir ... --strokes_dir ...``.

Writes ``<output_dir>/best_model.h5`` (best validation accuracy), the label mapping and
``<output_dir>/model_card.json`` together at the end; while it trains, the resumable state lives
in ``<output_dir>/checkpoint/`` (``--resume <output_dir>``). Runs on any Keras 3 backend
(augmentation is NumPy/Pillow). Errors end with one stderr line and the exit codes of
``src/utils/exit_status.py``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from src.config import TrainConfig
from src.data.labels import LabelMap
from src.errors import ModelLoadError
from src.models.io import load_model
from src.training.arguments import (
    build_parser,
    config_from_args,
    resumed_config,
)
from src.training.checkpoint import (
    BEST_FILENAME,
    checkpoint_dir,
    clear_checkpoint,
    save_config,
)
from src.training.data_cache import load_or_build
from src.training.dataset import (
    SketchData,
    load_training_data,
)
from src.training.fit import distribution, fit_model
from src.training.guards import check_finite, check_hyperparameters, check_writable_folder
from src.training.model_card import build_model_card
from src.training.publish import copy_from, json_writer, publish_together
from src.utils.exit_status import ExitStatus, run_guarded
from src.utils.tensorflow_logging import configure_tensorflow_logging

logger = logging.getLogger(__name__)

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
    if config.architecture_comparison is not None:
        _comparison(config.architecture_comparison)
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


def _add_open_set(card: dict, model, data: SketchData) -> None:  # type: ignore[no-untyped-def]
    """Choose and measure the "not sure" rule when outlier categories were loaded."""
    if data.outlier_validation is None or data.outlier_test is None:
        return
    from src.evaluation.open_set import open_set_card

    card["open_set"] = open_set_card(model, data)


def train(config: TrainConfig) -> TrainResult:
    """Train a model on the configured data and write the model, label mapping and card.

    Args:
        config: data folders, classes, epochs and the rest (see ``TrainConfig``).

    Returns:
        A TrainResult with the written paths, the history and the evaluation metrics.

    Raises:
        ValueError: if the configuration cannot train (names the flag).
        LabelMappingError: if a class is listed twice.
        OSError: if an output folder is a file or cannot be written (before any data is read).
        DataFormatError: if a class has no data or a data file is malformed.
        ModelLoadError: if ``init_model`` is missing or not a loadable model.
        TrainingDivergedError: if the loss became NaN or infinite (no model is written).
    """
    _validate(config)
    started = time.perf_counter()
    output_dir = Path(config.output_dir)
    directory = checkpoint_dir(output_dir)
    # Checked before the (long) data loading, so a bad output path fails at once.
    check_writable_folder(output_dir, "--output_dir")
    check_writable_folder(Path(config.labels_path).parent, "--labels_path")
    check_writable_folder(directory, "--output_dir")
    if config.init_model is not None and not Path(config.init_model).is_file():
        # A missing start fails now; a damaged one when Keras reads it, after the data.
        raise ModelLoadError(f"--init_model {config.init_model}: model file not found")
    if not config.resume:
        clear_checkpoint(directory)
        save_config(config, directory)
    # Load (and fork render workers) before Keras starts its backend's threads.
    data = load_or_build(
        config, directory, lambda: load_training_data(config, workers=config.workers)
    )
    import keras

    keras.utils.set_random_seed(config.seed)
    with distribution(config) as replicas:
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
    if config.architecture_comparison is not None:
        card["training"]["architecture_comparison"] = _comparison(config.architecture_comparison)
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


def _comparison(path: Path) -> object:
    """The JSON of ``--architecture_comparison``, read before training so a bad file fails early.

    Raises:
        ValueError: if the file cannot be read or is not JSON (names the flag).
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"--architecture_comparison {path}: not a readable JSON file ({error})"
        ) from error


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


def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Train, resume or evaluate as the flags say; bad configurations exit 2."""
    try:
        if args.resume is not None:
            result = train(resumed_config(args, parser))
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
    the documented exit code of ``src/utils/exit_status.py``.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_tensorflow_logging(args.verbose)
    return run_guarded("train", lambda: _run(args, parser), args.traceback)


if __name__ == "__main__":
    raise SystemExit(main())
