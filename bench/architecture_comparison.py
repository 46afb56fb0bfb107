"""Compare candidate architectures on one subset: parameters, top-1 after N epochs, minutes.

Usage (from the repository root)::

    python -m bench.architecture_comparison --bitmap_dir DIR --strokes_dir DIR \
        --max_per_class 200 --epochs 2 --output comparison.json

The data is loaded and rendered once and every candidate trains on it with the same seed and
the trainer's own fit (augmentation, outlier exposure, EMA, batch-norm recalibration), so the
table differs only in the network. Top-1 is measured on the validation and test splits of the
subset with each candidate's best checkpoint. Wall-clock minutes depend on the machine's load,
so compare them within one run only.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from src.config import ModelConfig, TrainConfig
from src.training.arguments import DEFAULT_CLASSES

# name, architecture, stage widths
CANDIDATES = (
    ("cnn 32-64-128 (current)", "cnn", (32, 64, 128)),
    ("residual 48-96-192", "residual", (48, 96, 192)),
)


def _top1(model, images: np.ndarray, labels: np.ndarray) -> float:  # type: ignore[no-untyped-def]
    """Top-1 accuracy of ``model`` on uint8 images."""
    from src.evaluation.metrics import top_k_accuracy

    probabilities = model.predict(images.astype(np.float32)[..., None] / 255.0, verbose=0)
    return top_k_accuracy(probabilities, labels, 1)


def compare(config: TrainConfig) -> list[dict[str, object]]:
    """Train every candidate on the same loaded data; one row per candidate."""
    from src.training.dataset import load_training_data

    data = load_training_data(config, workers=config.workers)
    import keras

    from src.models.architectures import build_model
    from src.training.checkpoint import BEST_FILENAME
    from src.training.fit import fit_model

    rows = []
    for name, architecture, filters in CANDIDATES:
        keras.utils.set_random_seed(config.seed)
        model_config = ModelConfig(num_classes=len(config.classes), filters=filters)
        model = build_model(architecture, model_config)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as directory:
            history = fit_model(
                model, data, replace(config, architecture=architecture), Path(directory)
            )
            best = keras.models.load_model(Path(directory) / BEST_FILENAME, compile=False)
        rows.append(
            {
                "candidate": name,
                "architecture": architecture,
                "filters": list(filters),
                "parameters": int(model.count_params()),
                "epochs": len(history.get("loss", [])),
                "validation_top1": round(
                    _top1(best, data.validation.images, data.validation.labels), 4
                ),
                "test_top1": round(_top1(best, data.test.images, data.test.labels), 4),
                "minutes": round((time.perf_counter() - started) / 60, 1),
            }
        )
        logging.getLogger(__name__).info("%s", rows[-1])
    return rows


def main() -> None:
    """Parse flags, compare, print a Markdown table and write the rows as JSON."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bitmap_dir", type=Path, required=True)
    parser.add_argument("--strokes_dir", type=Path, required=True)
    parser.add_argument("--max_per_class", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--max_minutes", type=float, default=0.0, help="per candidate (0 = the full --epochs)"
    )
    parser.add_argument(
        "--ema_momentum",
        type=float,
        default=0.0,
        help="weight average as in the full run; off by default, since in a few dozen steps "
        "the average still leans on the initial weights",
    )
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    config = TrainConfig(
        bitmap_dir=args.bitmap_dir,
        strokes_dir=args.strokes_dir,
        classes=DEFAULT_CLASSES,
        max_per_class=args.max_per_class,
        epochs=args.epochs,
        max_minutes=args.max_minutes,
        learning_rate=2e-3,
        patience=args.epochs,
        outlier_exposure=True,
        outliers_per_category=10,
        outlier_repeats=1,
        synthetic_outliers=500,
        outlier_weight=1.0,
        ema_momentum=args.ema_momentum,
    )
    rows = compare(config)
    args.output.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    header = "| candidate | parameters | epochs | validation top-1 | test top-1 | minutes |"
    lines = [header, "|---|---|---|---|---|---|"] + [
        f"| {row['candidate']} | {row['parameters']:,} | {row['epochs']} | "
        f"{row['validation_top1']:.3f} | {row['test_top1']:.3f} | {row['minutes']} |"
        for row in rows
    ]
    logging.getLogger(__name__).info("\n%s", "\n".join(lines))


if __name__ == "__main__":
    main()
