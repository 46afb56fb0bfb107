"""``compare --image P [--classes A B]``: why A and not B (default: the two most likely classes).

The contrastive map is Grad-CAM of ``logit_A - logit_B``: red where the sketch argues for A
over B. The figure's third panel shows the opposite evidence. Writes ``compare_{A}_vs_{B}.png``
and ``.json`` (names made safe for file names).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from src.cli.common import emit, load_engine, load_labels, prepare_output_dir
from src.errors import UnknownClassError
from src.utils.atomic_write import write_json_atomic
from src.utils.exit_status import ExitStatus


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="contrastive map: why class A and not class B",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--image", required=True, type=Path, help="sketch image file")
    parser.add_argument(
        "--classes",
        nargs=2,
        metavar=("A", "B"),
        default=None,
        help="the two classes (default: the top two predictions)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: resolve the classes (names checked before loading the model), then contrast."""
    from src.explain.contrast import pick_pair
    from src.utils.filenames import path_inside
    from src.visualization.figures import save_contrast_figure
    from src.visualization.overlay import overlay_heatmap

    labels = load_labels(args)
    chosen = [labels.index_of(name) for name in args.classes] if args.classes else None
    if chosen is not None and chosen[0] == chosen[1]:
        raise UnknownClassError("--classes needs two different classes")
    engine = load_engine(args, labels)
    output_dir = prepare_output_dir(args.output)
    image = engine.model_input(args.image)
    probabilities = engine.predictor.probabilities(image)[0]
    class_a, class_b = pick_pair(probabilities, *(chosen or (None, None)))
    result = engine.contrast(image, class_a, class_b)
    name_a, name_b = labels.name_of(class_a), labels.name_of(class_b)
    stem = f"compare_{name_a}_vs_{name_b}"
    overlays = [
        overlay_heatmap(engine.seen(image), maps[0], args.alpha, args.colormap)
        for maps in (result.heatmaps, result.against)
    ]
    titles = (
        f"{name_a} {probabilities[class_a]:.1%} vs {name_b} {probabilities[class_b]:.1%}",
        f"for {name_a} over {name_b}",
        f"for {name_b} over {name_a}",
    )
    figure = save_contrast_figure(
        image, overlays[0], overlays[1], titles, path_inside(output_dir, stem + ".png")
    )
    summary = {
        "image_path": str(args.image),
        "class_a": name_a,
        "class_b": name_b,
        "confidence_a": float(probabilities[class_a]),
        "confidence_b": float(probabilities[class_b]),
        "logit_margin": float(result.logit_margin[0]),
        "layer": engine.gradcam.layer_name,
        "method": engine.gradcam.method,
        "figure": figure.name,
    }
    write_json_atomic(path_inside(output_dir, stem + ".json"), summary)
    emit(f"{name_a} over {name_b}: logit margin {summary['logit_margin']:+.3f}")
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS
