"""The model card: what a trained model is, what it was trained on, and how well it does."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import numpy as np

from src.config import TrainConfig
from src.evaluation.metrics import most_confused_pairs, summarise, top_k_accuracy
from src.training.dataset import SketchData, Split

PREPROCESSING = (
    "Every image goes through src.data.preprocess.to_model_input: grayscale (alpha composited on "
    "white), polarity from the border's median (ink becomes 1.0 on 0.0), ink cropped to its "
    "bounding box, centred in a square with a 6% margin (a pen thinner than 3% of that square, "
    "estimated from the ink's distance transform, widened to 4.5% of it by a grey dilation), "
    "area-averaged down to 28x28 (Google's "
    "numpy_bitmap resolution, so bitmaps, stroke renders and canvas PNGs share one look), then "
    "bilinear to 64x64, float32 (64,64,1). Strokes are rendered by src.data.raster.render_strokes "
    "at 64x64 (line width 3.0 px, calibrated to the bitmaps' ink mass) and then to_model_input. "
    "Training draws strokes with stroke dropout and random line width, half the time directly at "
    "28x28 (Google's look), or with a pen from 1/72 to 1/5 of the drawing on a 256 px canvas read "
    "by either input path; half of Google's bitmaps are redrawn crisp at 256 px with a thinner or "
    "thicker pen; every training image then gets affine jitter and random blur, sharpening or "
    "thickening."
)


def library_versions() -> dict[str, str]:
    """Versions of the libraries that shape training and its results."""
    versions = {"python": platform.python_version()}
    for name in ("keras", "tensorflow", "tensorflow-cpu", "jax", "numpy", "pillow", "h5py"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _predict(model, split: Split) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Softmax outputs for a split (empty array for an empty split)."""
    if len(split.labels) == 0:
        return np.zeros((0, model.output_shape[-1]), np.float32)
    return np.asarray(model.predict(split.as_float(), batch_size=512, verbose=0))


def _figures(probabilities: np.ndarray, labels: np.ndarray) -> dict[str, float | int]:
    """Top-1, top-3 and count."""
    return {
        "count": int(len(labels)),
        "top1": top_k_accuracy(probabilities, labels, 1),
        "top3": top_k_accuracy(probabilities, labels, 3),
    }


def _cross_domain(  # type: ignore[no-untyped-def]
    model, data: SketchData, config: TrainConfig, test_probabilities: np.ndarray
) -> dict:
    """Held-out strokes of the raster classes vs the held-out rasters of the same classes."""
    cross = data.cross_domain
    if len(cross.labels) == 0:
        return {"description": "no class had both rasters and strokes"}
    probabilities = _predict(model, cross)
    classes = np.unique(cross.labels)
    same = np.isin(data.test.labels, classes) & (data.test.sources != "strokes")
    result = summarise(probabilities, cross.labels, data.class_names)
    return {
        "description": (
            f"The stroke drawings of the classes that have bitmaps are split by "
            f"sha256('sketchcam-cross-domain:' + key_id): {config.cross_domain_train_percent}% "
            "join training (so the stroke look is no cue for the stroke-only classes), the rest "
            "are held out here, rendered with strokes_to_model_input, and compared with the "
            "held-out test bitmaps of the same classes. The bitmap twin of each stroke drawing "
            "(Google's bitmap i is stroke line i; found by image correlation) is kept out of "
            "training when the stroke is held out, and a training-half stroke whose twin is in "
            "validation or test is skipped. Near-equal figures mean the model reads shape, not look."
        ),
        "strokes_count": int(len(cross.labels)),
        "strokes_top1": result["top1"],
        "strokes_top3": result["top3"],
        "bitmaps_same_classes": _figures(test_probabilities[same], data.test.labels[same]),
        "strokes_per_class_top1": {
            name: value for name, value in result["per_class_top1"].items() if value is not None
        },
    }


def build_model_card(  # type: ignore[no-untyped-def]
    model, data: SketchData, config: TrainConfig, history: dict, training_seconds: float
) -> dict:
    """Everything the card records, as JSON-ready values."""
    import keras

    validation = _predict(model, data.validation)
    test = _predict(model, data.test)
    test_summary = summarise(test, data.test.labels, data.class_names)
    by_source = {
        source: _figures(
            test[data.test.sources == source], data.test.labels[data.test.sources == source]
        )
        for source in sorted(set(data.test.sources.tolist()))
    }
    best_epoch = int(np.argmax(history.get("val_accuracy", [0.0]))) + 1
    return {
        "model": "models/best_model.h5",
        # What training fed the model (src.data.preprocess.to_model_input without a spec):
        # read back by src.data.input_spec, so every interface feeds it the same way.
        "input": {"ink": "light", "value_range": "0-1"},
        "classes": list(data.class_names),
        "counts": data.counts,
        "metrics": {
            "validation": _figures(validation, data.validation.labels),
            "test": {key: test_summary[key] for key in ("count", "top1", "top3")},
            "test_by_source": by_source,
            "test_per_class_top1": test_summary["per_class_top1"],
        },
        "cross_domain": _cross_domain(model, data, config, test),
        "most_confused_pairs": most_confused_pairs(
            np.asarray(test_summary["confusion_matrix"]), data.class_names
        ),
        "training": {
            "seconds": round(training_seconds, 1),
            "epochs_run": len(history.get("loss", [])),
            "best_epoch": best_epoch,
            "backend": keras.backend.backend(),
            "device": _device_name(),
            "seed": config.seed,
            "config": {key: str(value) for key, value in asdict(config).items()},
        },
        "library_versions": library_versions(),
        "preprocessing": PREPROCESSING,
        "splits": (
            f"Deterministic per class and source with seed {config.seed}: "
            f"{config.validation_fraction:.0%} validation (early stopping and checkpoint), "
            f"{config.test_fraction:.0%} test (reported here, never used for choices)."
        ),
    }


def _device_name() -> str:
    """The accelerator Keras trained on, as well as the backend can tell."""
    try:
        import jax

        return str(jax.devices()[0].device_kind)
    except ImportError:
        return platform.processor() or platform.machine()


def write_model_card(card: dict, path: str | Path) -> None:
    """Write the card as indented UTF-8 JSON."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
