"""``timeline --drawing F [--index N]``: the prediction and its map after each stroke.

Writes ``timeline.json`` (per stroke: top classes, the final class's confidence, and after how
many strokes the prediction settled) and ``timeline.png`` (a filmstrip of overlays).
"""

from __future__ import annotations

import argparse
from typing import Any

from src.cli.commands.strokes import add_drawing_options, load_drawing
from src.cli.common import emit, load_engine, prepare_output_dir
from src.utils.atomic_write import write_json_atomic
from src.utils.exit_status import ExitStatus


def register(subparsers: Any) -> None:
    """Add the ``timeline`` subcommand."""
    parser = subparsers.add_parser(
        "timeline",
        help="prediction and map after each stroke (filmstrip)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_drawing_options(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: one batched explain call over every prefix of the drawing."""
    from src.explain.timeline import build_timeline, timeline_to_dict
    from src.visualization.figures import save_filmstrip_figure
    from src.visualization.overlay import overlay_heatmap

    engine = load_engine(args)
    output_dir = prepare_output_dir(args.output)
    timeline = build_timeline(load_drawing(args.drawing, args.index), engine.gradcam)
    summary = timeline_to_dict(timeline, engine.class_names, args.top_k)
    write_json_atomic(output_dir / "timeline.json", summary)
    overlays = [
        overlay_heatmap(engine.seen(image), heatmap, alpha=args.alpha, colormap=args.colormap)
        for image, heatmap in zip(timeline.images, timeline.heatmaps)
    ]
    captions = [
        f"{step['strokes']}: {step['predicted']} {step['confidence']:.0%}"
        for step in summary["steps"]
    ]
    title = f"{summary['final_class']}, settled after {summary['settled_after_strokes']} strokes"
    save_filmstrip_figure(overlays, captions, title, output_dir / "timeline.png")
    emit(
        f"Final class {summary['final_class']}; the prediction settled after "
        f"{summary['settled_after_strokes']} of {len(summary['steps'])} strokes"
    )
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS
