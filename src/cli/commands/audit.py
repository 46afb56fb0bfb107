"""``audit --data DIR [--per_class N]``: does the model answer from how a sketch was drawn?

Renders every drawing of ``DIR/<class>.ndjson`` (files of classes the model lacks are skipped
and listed) black on white under nuisance factors, one at a time: pen width relative to the
drawing (1/64 to 1/8), canvas size (256 to 1024), drawing size and place, rotation, jittered
points, stroke order. Each rendering goes through both input paths, the plain snippet of docs/usage_guide.md
(``convert('L').resize((64, 64)) / 255``) and ``to_model_input``. Per level, path and class:
top-1, top-3, mean probability of the true class, and the Spearman rank correlation of the true
class's Grad-CAM map with the reference rendering's map in the drawing's own frame. A factor
whose top-1 moves by more than 5 points is flagged as a likely shortcut, naming the classes
that absorb the errors. Writes ``audit.json`` and ``audit.png`` (top-1 against level, one panel
per factor, both paths). The label check (``label_check`` in audit.json, one stderr line when
suspect) reads the reference rendering's answers. Exit code 8 when DIR is not a folder or has
no usable file.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from src.audit import AUDIT_FIGURE, AUDIT_JSON
from src.cli.common import emit, load_engine, load_labels, prepare_output_dir
from src.cli.exit_status import ExitStatus
from src.evaluation.label_check import label_check_line
from src.utils.arguments import MAX_SEED, bounded_int
from src.utils.atomic_write import write_json_atomic

# Far beyond any Quick, Draw! class file's useful share: each drawing is rendered at every level.
MAX_PER_CLASS = 100_000
MAX_BATCH_SIZE = 65_536


def register(subparsers: Any) -> None:
    """Add the ``audit`` subcommand."""
    parser = subparsers.add_parser(
        "audit",
        help="invariance audit: accuracy and map stability under pen, canvas, size, rotation...",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="folder of Quick, Draw! <class>.ndjson files"
    )
    parser.add_argument(
        "--per_class",
        "--per-class",
        dest="per_class",
        type=bounded_int(1, MAX_PER_CLASS),
        default=40,
        help=(
            "drawings per class, the first valid ones of each file "
            f"(default 40, at most {MAX_PER_CLASS})"
        ),
    )
    parser.add_argument(
        "--batch_size",
        "--batch-size",
        dest="batch_size",
        type=bounded_int(1, MAX_BATCH_SIZE),
        default=256,
        help=f"images per Grad-CAM call (default 256, at most {MAX_BATCH_SIZE})",
    )
    parser.add_argument(
        "--seed",
        type=bounded_int(0, MAX_SEED),
        default=0,
        help=f"seed of jitter and shuffled order (0 to {MAX_SEED})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: read the drawings, audit, write audit.json and audit.png, print the table."""
    from src.audit.run import PATHS, load_audit_data, run_audit
    from src.visualization.figures import save_audit_figure

    # Data before the model: a wrong --data is reported without the slow model load.
    labels = load_labels(args)
    data = load_audit_data(args.data, labels.class_names, args.per_class)
    engine = load_engine(args, labels)
    output_dir = prepare_output_dir(args.output)
    report = {
        "model": str(engine.model_path),
        "data": str(args.data),
        **run_audit(
            engine.gradcam, data, engine.class_names, batch_size=args.batch_size, seed=args.seed
        ),
    }
    write_json_atomic(output_dir / AUDIT_JSON, report)
    save_audit_figure(report["factors"], PATHS, output_dir / AUDIT_FIGURE)
    for name in report["skipped_files"]:
        emit(f"skipped {name}: not a class of the label mapping")
    for problem in report["unreadable_files"]:
        emit(f"could not read {problem}")
    emit(f"Audited {report['drawings']} drawings in {report['seconds']['total']:.0f} s")
    for line in _table(report, PATHS):
        emit(line)
    for flag in report["flags"]:
        emit(f"FLAG {flag['message']}")
    if not report["flags"]:
        emit("No factor moved top-1 by more than 5 points.")
    if (warning := label_check_line(report["label_check"])) is not None:
        sys.stderr.write(warning + "\n")
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS


def _table(report: dict[str, Any], paths: tuple[str, ...]) -> list[str]:
    """Top-1 per level, one row per factor and path (the reference level starred)."""
    lines = []
    for name, factor in report["factors"].items():
        levels = factor["levels"]
        header = "  ".join(
            f"{entry['level'] + ('*' if entry['reference'] else ''):>11}" for entry in levels
        )
        lines.append(f"{name:<14} {'':<15}{header}")
        for path in paths:
            cells = "  ".join(f"{entry['paths'][path]['top1']:>11.1%}" for entry in levels)
            lines.append(f"{'':<14} {path:<15}{cells}")
    return lines
