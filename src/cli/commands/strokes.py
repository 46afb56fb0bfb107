"""``strokes --drawing F [--index N]``: how much each stroke of a drawing counts for its class.

Writes ``strokes.json`` (per stroke: mass, share of the map, rank) and ``strokes.png`` (the
drawing coloured by importance). ``--verify DATA`` instead checks the attribution over a folder
of ``<class>.ndjson`` files: deleting each drawing's top-ranked stroke must lower the class's
probability more than deleting a random stroke (``stroke_deletion.json``).
"""

from __future__ import annotations

import argparse
import random
from itertools import islice
from pathlib import Path
from typing import Any

from src.cli.common import emit, load_engine, prepare_output_dir
from src.data.json_input import JSONInputError, read_json_file
from src.errors import DataFormatError, InvalidImageError
from src.utils.arguments import positive_int
from src.utils.atomic_write import write_json_atomic
from src.utils.exit_status import ExitStatus


def add_drawing_options(parser: argparse.ArgumentParser, required: bool = True) -> None:
    """--drawing (ndjson or JSON stroke list) and --index, shared with ``timeline``."""
    parser.add_argument(
        "--drawing",
        type=Path,
        required=required,
        help="Quick, Draw! .ndjson file, or a .json file holding [[xs, ys], ...]",
    )
    parser.add_argument("--index", type=int, default=0, help="drawing number in an .ndjson file")


def load_drawing(path: Path, index: int = 0) -> list[Any]:
    """The stroke list of drawing ``index`` in an .ndjson file, or of a .json stroke file.

    Raises:
        DataFormatError: missing file, bad JSON, JSON that holds no stroke list, or index past
            the end.
    """
    from src.data.quickdraw import read_ndjson

    if path.suffix.lower() == ".ndjson":
        drawing = next(islice(read_ndjson(path), index, None), None)
        if drawing is None:
            raise DataFormatError(f"{path} has no drawing number {index} (count from 0)")
        return drawing.strokes
    if not path.is_file():
        raise DataFormatError(f"drawing file not found: {path}")
    try:
        data = read_json_file(path)
    except JSONInputError as error:
        raise DataFormatError(f"{path} is not JSON: {error}") from error
    strokes = data.get("drawing", data.get("strokes")) if isinstance(data, dict) else data
    if not isinstance(strokes, list):
        raise DataFormatError(f'{path}: expected [[xs, ys], ...] or {{"drawing": [...]}}')
    return strokes


def sample_drawings(
    data_dir: Path, class_names: Any, per_class: int, seed: int = 0
) -> list[tuple[int, list[Any]]]:
    """Up to ``per_class`` random drawings of each class from ``<data_dir>/<class>.ndjson``.

    Raises:
        DataFormatError: if the folder holds no ndjson file of any of the model's classes.
    """
    from src.data.quickdraw import read_ndjson

    chosen: list[tuple[int, list[Any]]] = []
    generator = random.Random(seed)
    for class_index, class_name in enumerate(class_names):
        file = Path(data_dir) / f"{class_name}.ndjson"
        if file.is_file():
            drawings = [drawing.strokes for drawing in read_ndjson(file)]
            picked = generator.sample(drawings, min(per_class, len(drawings)))
            chosen.extend((class_index, strokes) for strokes in picked)
    if not chosen:
        raise DataFormatError(
            f"{data_dir} has no <class>.ndjson file for the model's classes "
            f"({', '.join(list(class_names)[:5])}, ...)"
        )
    return chosen


def register(subparsers: Any) -> None:
    """Add the ``strokes`` subcommand."""
    parser = subparsers.add_parser(
        "strokes",
        help="score each stroke of a drawing by its share of the map",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_drawing_options(parser, required=False)
    parser.add_argument(
        "--class_name",
        "--class-name",
        dest="class_name",
        default=None,
        help="class to explain (default: the predicted class)",
    )
    parser.add_argument(
        "--verify",
        type=Path,
        default=None,
        help="folder of <class>.ndjson files: run the stroke-deletion check",
    )
    parser.add_argument(
        "--per_class",
        "--per-class",
        dest="per_class",
        type=positive_int,
        default=20,
        help="drawings per class for --verify (default 20)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed for --verify")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: attribution of one drawing, or the deletion check over a folder."""
    from src.explain.strokes import attribute_strokes, attribution_to_dict, stroke_deletion_check

    if args.drawing is None and args.verify is None:
        raise InvalidImageError("pass --drawing FILE (one drawing) or --verify DATA_DIR")
    engine = load_engine(args)
    output_dir = prepare_output_dir(args.output)
    if args.verify is not None:
        drawings = sample_drawings(args.verify, engine.class_names, args.per_class, args.seed)
        check = stroke_deletion_check([s for _, s in drawings], engine.gradcam, args.seed)
        write_json_atomic(output_dir / "stroke_deletion.json", check.to_dict())
        emit(
            f"Deleting the top stroke: mean drop {check.mean_drop_top:.4f}; a random stroke: "
            f"{check.mean_drop_random:.4f} ({check.drawings} drawings)"
        )
        return ExitStatus.SUCCESS
    from src.visualization.figures import save_stroke_importance_figure

    strokes = load_drawing(args.drawing, args.index)
    class_index = engine.labels.index_of(args.class_name) if args.class_name else None
    attribution = attribute_strokes(strokes, engine.gradcam, class_index)
    summary = attribution_to_dict(attribution, engine.class_names)
    write_json_atomic(output_dir / "strokes.json", summary)
    title = f"{summary['class_name']} ({summary['confidence']:.1%}): stroke importance"
    save_stroke_importance_figure(strokes, attribution.shares, title, output_dir / "strokes.png")
    top = summary["strokes"][int(attribution.ranking[0])]
    emit(
        f"{summary['class_name']}: stroke {top['stroke_index']} carries {top['share']:.1%} "
        f"of the map ({len(summary['strokes'])} strokes)"
    )
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS
