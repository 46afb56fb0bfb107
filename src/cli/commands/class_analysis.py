"""``class --image P --class_name C``: the map for class C, whatever the model predicts.

Writes ``gradcam_class_{C}.png`` (three panels) and ``class_analysis_{C}.json``, with C made
safe for file names by ``src.utils.filenames.safe_filename`` ("smiley face" -> "smiley_face").
An unknown class name exits with UNKNOWN_CLASS (6) and names the closest classes.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from src.cli.common import (
    emit,
    load_engine,
    load_labels,
    nothing_drawn_text,
    prepare_output_dir,
    relative_to,
)
from src.cli.exit_status import ExitStatus
from src.inference.open_set import not_sure_text
from src.utils.atomic_write import write_json_atomic


def register(subparsers: Any) -> None:
    """Add the ``class`` subcommand."""
    parser = subparsers.add_parser(
        "class",
        help="explain one image for a chosen class",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--image", required=True, type=Path, help="sketch image file")
    parser.add_argument(
        "--class_name",
        "--class-name",
        dest="class_name",
        required=True,
        help="class to explain, as in the label mapping",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: check the class name first (no model load needed to reject it), then analyse."""
    from src.utils.filenames import path_inside, safe_filename

    labels = load_labels(args)
    class_index = labels.index_of(args.class_name)
    class_name = labels.name_of(class_index)
    engine = load_engine(args, labels)
    output_dir = prepare_output_dir(args.output)
    image = engine.model_input(args.image)
    if engine.empty_inputs(image)[0]:
        # No ink: no class and no map to explain, whichever class was asked for.
        emit(nothing_drawn_text(args.image))
        return ExitStatus.SUCCESS
    figure_path = path_inside(output_dir, f"gradcam_class_{safe_filename(class_name)}.png")
    result = engine.gradcam.visualize_prediction(
        image,
        list(labels.class_names),
        save_path=figure_path,
        class_idx=class_index,
        alpha=args.alpha,
        colormap=args.colormap,
    )
    verdict = engine.open_set_of(image[None])[0]
    summary = {
        "image_path": str(args.image),
        "model_path": str(engine.model_path),
        "target_class": class_name,
        "target_class_index": class_index,
        "target_class_confidence": result["target_confidence"],
        "predicted_class": result["predicted_class"],
        "predicted_class_index": result["predicted_class_index"],
        "predicted_class_confidence": result["confidence"],
        "recognised": verdict.recognised,
        "open_set_score": verdict.score,
        "layer": engine.gradcam.layer_name,
        "method": engine.gradcam.method,
        "figure": relative_to(figure_path, output_dir),
    }
    write_json_atomic(
        path_inside(output_dir, f"class_analysis_{safe_filename(class_name)}.json"), summary
    )
    predicted = (
        f"predicted {summary['predicted_class']}, {summary['predicted_class_confidence']:.1%}"
        if verdict.recognised
        else not_sure_text(summary["predicted_class"], summary["predicted_class_confidence"])
    )
    emit(f"Class {class_name}: {summary['target_class_confidence']:.1%} ({predicted})")
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS
