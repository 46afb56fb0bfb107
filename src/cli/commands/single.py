"""``single --image P``: explain one sketch's prediction and its top-k classes.

Writes into the output folder:
    gradcam_prediction.png                      three panels: sketch, heatmap, overlay
    gradcam_on_image.png                        the map over your own image, at its own size
    analysis_summary.json                       prediction, top-k ranking, layer and method
    top_predictions/gradcam_top{k}_{class}.png  one figure per ranked class (safe file names)
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.cli.common import (
    DEFAULT_ALPHA,
    DEFAULT_COLORMAP,
    DEFAULT_TOP_K,
    emit,
    load_engine,
    nothing_drawn_text,
    prepare_output_dir,
    relative_to,
)
from src.inference.open_set import not_sure_text
from src.utils.atomic_write import write_json_atomic
from src.utils.exit_status import ExitStatus

if TYPE_CHECKING:
    from src.service.explainer import Explainer

FIGURE_NAME = "gradcam_prediction.png"
ON_IMAGE_NAME = "gradcam_on_image.png"
SUMMARY_NAME = "analysis_summary.json"
TOP_PREDICTIONS_DIR = "top_predictions"


def register(subparsers: Any) -> None:
    """Add the ``single`` subcommand."""
    parser = subparsers.add_parser(
        "single",
        help="explain one image: figure, summary JSON, top-k maps",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--image", required=True, type=Path, help="sketch image file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: load the engine, analyse the image, report where the results are."""
    engine = load_engine(args)
    output_dir = prepare_output_dir(args.output)
    summary = analyse_image(engine, args.image, output_dir, args.top_k, args.alpha, args.colormap)
    report_summary(summary, output_dir)
    return ExitStatus.SUCCESS


def analyse_image(
    engine: Explainer,
    image_path: str | Path,
    output_dir: Path,
    top_k: int = DEFAULT_TOP_K,
    alpha: float = DEFAULT_ALPHA,
    colormap: str = DEFAULT_COLORMAP,
) -> dict[str, Any]:
    """Explain one image and write the figure, the top-k figures and ``analysis_summary.json``.

    Args:
        engine: model, labels and GradCAM from ``load_engine``.
        image_path: the sketch file.
        output_dir: an existing folder (see ``prepare_output_dir``).
        top_k: how many ranked classes get a figure.
        alpha: heatmap opacity in the overlays.
        colormap: matplotlib colormap name.

    Returns:
        The summary written to ``analysis_summary.json``; for an image with no ink it says
        ``"empty": true`` with no class, and no figure is drawn.

    Raises:
        InvalidImageError: if the image is missing or unreadable.
    """
    import numpy as np

    image = engine.model_input(image_path)
    if engine.empty_inputs(image)[0]:
        return _write_summary(output_dir, _nothing_drawn_summary(engine, image_path))
    names = list(engine.class_names)
    prediction = engine.gradcam.visualize_prediction(
        image, names, save_path=output_dir / FIGURE_NAME, alpha=alpha, colormap=colormap
    )
    ranked = engine.gradcam.analyze_top_predictions(
        image,
        names,
        top_k=top_k,
        save_dir=output_dir / TOP_PREDICTIONS_DIR,
        alpha=alpha,
        colormap=colormap,
    )
    _write_on_image(image_path, prediction["heatmap"], output_dir / ON_IMAGE_NAME, alpha, colormap)
    verdict = engine.open_set_of(image[np.newaxis])[0]
    summary = {
        "image_path": str(image_path),
        "model_path": str(engine.model_path),
        "predicted_class": prediction["predicted_class_index"],
        "predicted_label": prediction["predicted_class"],
        "confidence": prediction["confidence"],
        "recognised": verdict.recognised,
        "open_set_score": verdict.score,
        "top_predictions": [
            {
                "rank": entry["rank"],
                "class_name": entry["class_name"],
                "class_index": entry["class_index"],
                "confidence": entry["confidence"],
                "file": relative_to(Path(entry["path"]), output_dir),
            }
            for entry in ranked
        ],
        "layer": engine.gradcam.layer_name,
        "method": engine.gradcam.method,
        "figure": FIGURE_NAME,
        "overlay_on_image": ON_IMAGE_NAME,
    }
    return _write_summary(output_dir, summary)


def _nothing_drawn_summary(engine: Explainer, image_path: str | Path) -> dict[str, Any]:
    """The summary of an image with no ink: no class, no score, no figure."""
    return {
        "image_path": str(image_path),
        "model_path": str(engine.model_path),
        "empty": True,
        "predicted_class": None,
        "predicted_label": None,
        "confidence": None,
        "recognised": False,
        "open_set_score": None,
        "top_predictions": [],
        "figure": None,
    }


def _write_summary(output_dir: Path, summary: dict[str, Any]) -> dict[str, Any]:
    """Write ``analysis_summary.json`` and return the summary."""
    write_json_atomic(output_dir / SUMMARY_NAME, summary)
    return summary


def _write_on_image(
    image_path: str | Path, heatmap: Any, path: Path, alpha: float, colormap: str
) -> None:
    """The map, computed at the model's size, over the user's image at its own size."""
    from src.data.preprocess import load_image
    from src.utils.atomic_write import write_bytes_atomic
    from src.visualization.image_overlay import overlay_on_image
    from src.visualization.overlay import to_png_bytes

    rgb = overlay_on_image(load_image(image_path), heatmap, alpha, colormap)
    write_bytes_atomic(path, to_png_bytes(rgb))


def answer_text(summary: dict[str, Any]) -> str:
    """ "cake (93.1%)", or "not sure (closest: cake 41%)" when the open-set rule abstains."""
    if summary.get("recognised", True):
        return f"{summary['predicted_label']} ({summary['confidence']:.1%})"
    return not_sure_text(summary["predicted_label"], summary["confidence"])


def report_summary(summary: dict[str, Any], output_dir: Path) -> None:
    """Print the prediction, the ranking and where the files are (one line for no ink)."""
    if summary.get("empty"):
        emit(nothing_drawn_text(summary["image_path"]))
        return
    emit(f"Predicted: {answer_text(summary)}")
    for entry in summary["top_predictions"]:
        emit(f"  {entry['rank']}. {entry['class_name']}: {entry['confidence']:.3f}")
    emit(f"Layer: {summary['layer']}  method: {summary['method']}")
    emit(f"Results written to {output_dir}")
