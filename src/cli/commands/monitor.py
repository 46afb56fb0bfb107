"""``monitor --log PATH``: summarise an attention log written by the server or the Python API.

Counts per time bucket, the most frequent low-confidence classes with their mean confidence and
mean 8x8 map. Writes ``monitor_summary.json`` and ``monitor_summary.html`` (self-contained).
No model is loaded. The log is untrusted: only regular files are read (a FIFO or a device
exits 8), a line longer than 1 MiB or a record of the wrong shape is skipped and counted, and at
most ``--max_bytes`` are read in all (default 600 MiB, ten times what the server's rotation keeps).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from src.cli.common import emit, prepare_output_dir
from src.monitoring.log_records import DEFAULT_MAX_READ_BYTES
from src.utils.arguments import bounded_int, positive_int, unit_float
from src.utils.atomic_write import write_json_atomic, write_text_atomic
from src.utils.exit_status import ExitStatus

# Even an explicit --max_bytes stays within what a summary can hold in memory.
MAX_READ_BYTES_LIMIT = 64 * 1024**3


def register(subparsers: Any) -> None:
    """Add the ``monitor`` subcommand."""
    parser = subparsers.add_parser(
        "monitor",
        help="summarise an attention log (JSON and HTML)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log",
        type=Path,
        default=None,
        help="attention log (default: $SKETCHCAM_LOG_DIR/attention.jsonl, else logs/attention.jsonl in the working directory); rotated files are read",
    )
    parser.add_argument(
        "--bucket",
        choices=("minute", "hour", "day"),
        default="hour",
        help="time bucket for the counts (default hour)",
    )
    parser.add_argument(
        "--top_classes",
        "--top-classes",
        dest="top_classes",
        type=positive_int,
        default=10,
        help="classes to list (default 10)",
    )
    parser.add_argument(
        "--threshold",
        type=unit_float,
        default=1.0,
        help="count only records whose top confidence is below this",
    )
    parser.add_argument(
        "--max_bytes",
        "--max-bytes",
        dest="max_bytes",
        type=bounded_int(1, MAX_READ_BYTES_LIMIT),
        default=DEFAULT_MAX_READ_BYTES,
        help=f"read at most this many bytes of the log in all (default {DEFAULT_MAX_READ_BYTES})",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: read, summarise, write JSON and HTML."""
    from src.data.quickdraw import ReadReport
    from src.monitoring.attention_log import default_log_path
    from src.monitoring.summary import read_records, summarise_log
    from src.reports.monitor_summary import render_monitor_summary

    log_path = args.log if args.log is not None else default_log_path()
    report = ReadReport()
    records = read_records(log_path, report, args.max_bytes)
    summary = summarise_log(records, args.bucket, args.top_classes, args.threshold)
    summary["skipped_lines"] = report.skipped
    output_dir = prepare_output_dir(args.output)
    write_json_atomic(output_dir / "monitor_summary.json", summary)
    write_text_atomic(output_dir / "monitor_summary.html", render_monitor_summary(summary))
    emit(f"{summary['records']} low-confidence records in {log_path}")
    if report.skipped:
        emit(f"  skipped {report.skipped} malformed lines (listed as warnings)")
    for entry in summary["low_confidence_classes"][:3]:
        emit(
            f"  {entry['class_name']}: {entry['count']} (mean confidence "
            f"{entry['mean_confidence']:.1%})"
        )
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS
