"""``probe-input --data DIR``: which ink and value range does the model expect?

Reads DIR's labelled inputs as ``batch`` reads them (class-named folders or files, ``.ndjson``
drawings, ``.npy`` bitmaps), at most ``--max_per_class`` of each class, and feeds them to the
model at its own size under each ink (dark, light) and value range (0-1, 0-255, -1-1). Prints
top-1 per convention, the best one and the options to pass to the other commands
(``--ink light --value_range 0-1``), and writes ``probe_input.json`` to the output folder.
``--write_card`` also sets the ``"input"`` block of the ``model_card.json`` beside the model,
which every command then reads when no option is given. The label check runs on the best
convention's answers. DIR not a folder, or with no labelled input: exit code 8.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from src.batch.inputs import discover_inputs
from src.cli.common import emit, load_labels, prepare_output_dir
from src.cli.exit_status import ExitStatus
from src.errors import DataFormatError
from src.evaluation.label_check import label_check_line
from src.evaluation.probe_input import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_PER_CLASS,
    MAX_PER_CLASS,
    ProbeResult,
    labelled_sample,
    probe_conventions,
)
from src.utils.arguments import bounded_int
from src.utils.atomic_write import write_json_atomic

PROBE_JSON = "probe_input.json"
MAX_BATCH_SIZE = 65_536


def register(subparsers: Any) -> None:
    """Add the ``probe-input`` subcommand."""
    parser = subparsers.add_parser(
        "probe-input",
        help="find the model's ink and value range from labelled sketches",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data",
        required=True,
        type=Path,
        help="labelled sketches, read as batch reads them (class folders or class-named files)",
    )
    parser.add_argument(
        "--max_per_class",
        "--max-per-class",
        dest="max_per_class",
        type=bounded_int(1, MAX_PER_CLASS),
        default=DEFAULT_MAX_PER_CLASS,
        help=f"inputs per class (default {DEFAULT_MAX_PER_CLASS}, at most {MAX_PER_CLASS})",
    )
    parser.add_argument(
        "--batch_size",
        "--batch-size",
        dest="batch_size",
        type=bounded_int(1, MAX_BATCH_SIZE),
        default=DEFAULT_BATCH_SIZE,
        help=f"inputs per forward pass (default {DEFAULT_BATCH_SIZE})",
    )
    parser.add_argument(
        "--write_card",
        "--write-card",
        dest="write_card",
        action="store_true",
        help='set the "input" block of the model_card.json beside the model to the best one',
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: the labelled sample first (cheap), then the model, the probe and the outputs."""
    from src.data.input_spec import write_card_convention
    from src.inference.predictor import Predictor, load_model_and_labels

    labels = load_labels(args)
    if not args.data.is_dir():
        raise DataFormatError(
            f"{args.data} is not a folder; pass --data a folder of labelled sketches"
        )
    discovery = discover_inputs(args.data, labels, args.max_per_class, args.output)
    sample = labelled_sample(discovery.inputs, args.max_per_class)
    if not sample:
        raise DataFormatError(
            f"no labelled input in {args.data}: put sketches in folders named after a class "
            "(apple/x.png) or name them after one (apple.png, apple_2.png)"
        )
    # Any size: every input is encoded at the model's own size by its InputSpec.
    predictor = Predictor(*load_model_and_labels(args.model, labels, image_size=None))
    result = probe_conventions(predictor, sample, args.batch_size)
    output_dir = prepare_output_dir(args.output)
    report = {"model": str(args.model), "data": str(args.data), **result.to_dict()}
    if args.write_card:
        best = result.best
        report["card"] = str(write_card_convention(args.model, best.ink, best.value_range))
    write_json_atomic(output_dir / PROBE_JSON, report)
    _print_report(result, report.get("card"))
    if (warning := label_check_line(result.label_check)) is not None:
        sys.stderr.write(warning + "\n")
    emit(f"Results written to {output_dir / PROBE_JSON}")
    return ExitStatus.SUCCESS


def _print_report(result: ProbeResult, card: str | None) -> None:
    """The table of top-1 per convention, the best one and the options to pass."""
    emit(f"Probed {result.best.total} labelled inputs of {len(result.per_class)} classes")
    emit(f"{'ink':<6} {'value range':<12} {'top-1':>7}")
    for score in result.scores:
        emit(f"{score.ink:<6} {score.value_range:<12} {score.accuracy:>7.1%}")
    best = result.best
    emit(f"Best: {best.ink} ink, values {best.value_range} (top-1 {best.accuracy:.1%})")
    emit(f"Pass: {best.options}")
    if card is not None:
        emit(f'Wrote the "input" block to {card}')
    for failure in result.failures[:10]:
        emit(f"  failed: {failure['source']}: {failure['reason']}")
