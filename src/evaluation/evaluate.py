"""Evaluate a model on a data folder: ``python -m src.evaluation.evaluate --model_path ...``.

The folder may hold ``<class>.npy`` numpy_bitmaps, ``<class>.ndjson`` strokes, ``<class>.bin``
drawings and/or ``<class>/*.png`` images; classes not in the label mapping are skipped (logged).
Writes ``metrics.json`` (top-1, top-3, per-class accuracy, confusion matrix, confused pairs) and
``confusion_matrix.png`` into the output folder.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np

from src.config import DEFAULT_LABELS_PATH, DEFAULT_MODEL_PATH, PROJECT_ROOT
from src.data.labels import LabelMap
from src.data.preprocess import IMAGE_SUFFIXES, strokes_to_model_input, to_model_input
from src.data.quickdraw import load_bitmaps, read_binary, read_image_folder, read_ndjson
from src.errors import DataFormatError
from src.evaluation.metrics import most_confused_pairs, summarise
from src.utils.tensorflow_logging import configure_tensorflow_logging

logger = logging.getLogger(__name__)


def _class_of(name: str, labels: LabelMap) -> int | None:
    """The index of a class name, or None (logged) when the model does not know it."""
    if name in labels.class_names:
        return labels.class_names.index(name)
    logger.info("skipping %r: not a class of this model", name)
    return None


def load_folder(
    data_dir: str | Path, labels: LabelMap, limit: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Every supported file of a folder as model inputs (N, 64, 64, 1) and class indices (N,).

    Args:
        data_dir: folder of ``<class>.npy|.ndjson|.bin`` files and/or ``<class>/`` image folders.
        labels: the model's label mapping (classes outside it are skipped).
        limit: at most this many items per file or image folder (0 = all).

    Raises:
        DataFormatError: if the folder is missing or holds no item of a known class.
    """
    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataFormatError(f"data folder not found: {folder}")
    images: list[np.ndarray] = []
    targets: list[int] = []
    for path in sorted(folder.iterdir()):
        index = _class_of(path.stem if path.is_file() else path.name, labels)
        if index is None:
            continue
        if path.suffix == ".npy":
            loaded = [to_model_input(image) for image in load_bitmaps(path)[: limit or None]]
        elif path.suffix in (".ndjson", ".bin"):
            reader = read_ndjson(path) if path.suffix == ".ndjson" else read_binary(path)
            loaded = [strokes_to_model_input(drawing.strokes) for drawing in reader]
            loaded = loaded[: limit or None]
        elif path.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in path.iterdir()):
            loaded = [
                to_model_input(item.image)
                for item in read_image_folder(folder, only_class=path.name)
            ][: limit or None]
        else:
            continue
        images.extend(loaded)
        targets.extend([index] * len(loaded))
    if not images:
        raise DataFormatError(f"{folder} holds no drawings of the model's classes")
    return np.stack(images).astype(np.float32), np.asarray(targets, np.int32)


def evaluate(model, images: np.ndarray, targets: np.ndarray, labels: LabelMap) -> dict:  # type: ignore[no-untyped-def]
    """Top-1, top-3, per-class accuracy, confusion matrix and confused pairs of a model."""
    probabilities = np.asarray(model.predict(images, batch_size=512, verbose=0))
    result = summarise(probabilities, targets, labels.class_names)
    result["most_confused_pairs"] = most_confused_pairs(
        np.asarray(result["confusion_matrix"]), labels.class_names
    )
    result["class_names"] = list(labels.class_names)
    return result


def build_parser() -> argparse.ArgumentParser:
    """The command-line flags of ``python -m src.evaluation.evaluate``."""
    parser = argparse.ArgumentParser(description="Evaluate a sketch model on a data folder.")
    parser.add_argument("--model_path", "--model-path", type=Path, default=DEFAULT_MODEL_PATH)
    parser.add_argument(
        "--label_mapping", "--label-mapping", "--labels", type=Path, default=DEFAULT_LABELS_PATH
    )
    parser.add_argument("--data_dir", "--data-dir", type=Path, required=True)
    parser.add_argument(
        "--output_dir", "--output-dir", type=Path, default=PROJECT_ROOT / "evaluation"
    )
    parser.add_argument("--limit", type=int, default=0, help="items per class file (0 = all)")
    parser.add_argument(
        "--verbose", action="store_true", help="also show TensorFlow's own start-up messages"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point: load, evaluate, write metrics.json and confusion_matrix.png."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    from src.models.io import load_model

    configure_tensorflow_logging(args.verbose)

    from src.visualization.figures import save_confusion_matrix

    labels = LabelMap.load(args.label_mapping)
    images, targets = load_folder(args.data_dir, labels, args.limit)
    # The project's loader: safe mode (no Lambda code), clear errors, legacy .h5 handled.
    model = load_model(args.model_path)
    result = evaluate(model, images, targets, labels)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    (output / "metrics.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    save_confusion_matrix(
        result["confusion_matrix"],
        labels.class_names,
        output / "confusion_matrix.png",
        title=f"{args.data_dir.name}: top-1 {result['top1']:.3f}",
    )
    logger.info(
        "%d items: top-1 %.4f, top-3 %.4f; wrote %s",
        result["count"],
        result["top1"],
        result["top3"],
        output,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
