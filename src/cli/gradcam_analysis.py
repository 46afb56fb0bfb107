"""``python scripts/gradcam_analysis.py [global options] COMMAND [command options]``.

Global options (model, labels, output folder, layer, method, rendering) come before the
subcommand, as in docs/usage_guide.md. Each subcommand lives in ``src/cli/commands/<module>.py``
and is plugged in by listing its module in ``COMMAND_MODULES``. Errors end the program with one
line on stderr and a documented exit code (``src.utils.exit_status.ExitStatus``); ``--traceback``
shows the full trace instead.

File names made from class names or input names go through
``src.utils.filenames.safe_filename``: characters other than ASCII letters, digits, ``.``, ``-``
and ``_`` become ``_``, so "smiley face" writes ``gradcam_top1_smiley_face.png``; nothing is
ever written outside the output folder.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from pathlib import Path

from src.cli.common import (
    DEFAULT_OUTPUT_DIR,
    add_engine_options,
    add_verbose_option,
    configure_verbose_logging,
)
from src.data.input_spec import join_value_range
from src.utils.exit_status import EXIT_CODES_HELP, ExitStatus, run_guarded
from src.utils.tensorflow_logging import configure_tensorflow_logging, wants_verbose

__all__ = ["COMMAND_MODULES", "ExitStatus", "build_parser", "main"]

PROGRAM = "gradcam_analysis"
# Modules under src.cli.commands, each exposing register(subparsers); order = order in --help.
COMMAND_MODULES = [
    "single",
    "class_analysis",
    "batch",
    "layers",
    "compare",
    "compare_models",
    "timeline",
    "strokes",
    "evaluate_explanations",
    "monitor",
    "audit",
    "probe_input",
]


def build_parser() -> argparse.ArgumentParser:
    """The parser: global options, then one subparser per module in ``COMMAND_MODULES``."""
    parser = argparse.ArgumentParser(
        prog=f"{PROGRAM}.py",
        description="Grad-CAM analysis of sketch predictions: why the model said what it said.",
        epilog=EXIT_CODES_HELP,
    )
    add_engine_options(parser)
    parser.add_argument(
        "--output",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        help="output folder, created if missing (default: gradcam_results)",
    )
    add_verbose_option(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(f"src.cli.commands.{module_name}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the subcommand, return the exit code."""
    # Before parsing: parsing --method already imports TensorFlow.
    configure_tensorflow_logging(wants_verbose(argv))
    parser = build_parser()
    try:
        args = parser.parse_args(join_value_range(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_request:
        # argparse exits for --help (0) and for bad arguments (2); main() returns instead.
        return int(exit_request.code or 0) if not isinstance(exit_request.code, str) else 2
    configure_verbose_logging(args.verbose)
    return run_guarded(PROGRAM, lambda: args.handler(args), args.traceback)
