"""The flags of ``python -m src.training.train`` and the TrainConfig they fill."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from src.config import ModelConfig, TrainConfig
from src.models.architectures import ARCHITECTURE_NAMES, DEFAULT_ARCHITECTURE, config_with_filters
from src.training.checkpoint import load_config
from src.utils.exit_status import EXIT_CODES_HELP

# The shipped default: Google's 16 numpy_bitmap classes in shared/data, then the 8 stroke classes.
DEFAULT_CLASSES = (
    "airplane", "alarm clock", "apple", "banana", "bicycle", "bird", "book", "cat", "diamond",
    "dog", "eye", "fish", "flower", "house", "rainbow", "train",
    "teapot", "snowman", "smiley face", "necklace", "power outlet", "piano", "cake", "monkey",
)  # fmt: skip
# What ``--resume`` may change; everything else comes from the stopped run's saved settings.
RESUME_OVERRIDES = ("epochs", "max_minutes", "patience", "workers")
# Flags that are not training settings.
RESUME_IGNORED = ("resume", "verbose", "traceback")


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
        "--architecture_comparison",
        type=Path,
        help="JSON rows of the comparison that chose --architecture "
        "(bench/architecture_comparison.py), recorded in the card",
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
        architecture_comparison=args.architecture_comparison,
        model=config_with_filters(ModelConfig(), args.architecture, args.filters),
    )


def resumed_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> TrainConfig:
    """The configuration saved in ``--resume DIR``, with the flags that may change applied.

    Raises:
        ValueError: if another setting is given (it would silently not apply).
        FileNotFoundError: if DIR holds no checkpoint.
    """
    given = {
        name
        for name, value in vars(args).items()
        if value != parser.get_default(name) and name not in RESUME_IGNORED
    }
    refused = sorted(given - set(RESUME_OVERRIDES))
    if refused:
        flags = ", ".join(f"--{name}" for name in refused)
        raise ValueError(
            f"--resume continues with the stopped run's own settings; {flags} cannot change "
            f"(only {', '.join('--' + name for name in RESUME_OVERRIDES)} can)"
        )
    config = load_config(args.resume)
    changed = {name: getattr(args, name) for name in given}
    return replace(config, **changed, output_dir=args.resume, resume=True)
