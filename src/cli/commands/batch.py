"""``batch --images_dir D``: explain every sketch under D and write a browsable report.

Inputs: PNG, JPEG, BMP, GIF (first frame), WebP and TIFF images, Quick, Draw! ``.ndjson``
drawings and ``.npy`` bitmaps, in any sub-folder. Outputs in the output folder:
    overlays/<input>.png     the Grad-CAM overlay of each input (safe file names)
    batch_summary.json/.csv  one entry per input, failures with their reasons
    mean_maps/*.png          the mean map per predicted class and per confused pair
    report.html              gallery (least confident first by default) with each input's
                             runner-up and margin, low-confidence cases, mean maps, the model
                             file's SHA-256 and the run's time; for labelled inputs, accuracy,
                             precision/recall/F1 per class, the confusion matrix and the most
                             confused pairs; a warning when the label check finds the
                             mapping out of order; faithfulness.json and audit.json when the output
                             folder holds them
    confusion_matrix.png     only with --confusion_figure: the matrix as a matplotlib figure
                             (slow to draw for many classes, so it is opt-in)
    audit.json, audit.png    not written here: report.html shows them when an ``audit`` run
                             wrote them into the same output folder
An input is labelled when it sits in a folder named after a class (apple/x.png), is named after
one (apple.png, apple_2.png, smiley_face.png), or is a drawing whose record names its class.
An unreadable file is listed with its reason and the batch goes on; the exit code is then
PARTIAL_FAILURE (9) instead of SUCCESS (0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from src.batch.inputs import DEFAULT_MAX_PER_FILE, discover_sources, require_inputs
from src.batch.local_runner import run_batch
from src.batch.options import DEFAULT_BATCH_SIZE, DEFAULT_ORDER, BatchOptions, default_workers
from src.cli.common import emit, load_engine, load_labels, prepare_output_dir
from src.cli.exit_status import ExitStatus
from src.evaluation.label_check import label_check_line
from src.reports.batch_report import GALLERY_ORDERS
from src.utils.arguments import positive_int, unit_float

# Parsing only: the job itself (inputs, explaining, outputs, report) is the library in src.batch.


def register(subparsers: Any) -> None:
    """Add the ``batch`` subcommand."""
    parser = subparsers.add_parser(
        "batch",
        help="explain every sketch in a folder; summary JSON/CSV and report.html",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--images_dir",
        "--images-dir",
        dest="images_dir",
        required=True,
        type=Path,
        help="folder of sketches; inputs in class-named folders or named after a class "
        "(apple.png, apple_2.png) count as labelled",
    )
    parser.add_argument(
        "--batch_size",
        "--batch-size",
        dest="batch_size",
        type=positive_int,
        default=DEFAULT_BATCH_SIZE,
        help="images per Grad-CAM call (default 64)",
    )
    parser.add_argument(
        "--max_per_file",
        "--max-per-file",
        dest="max_per_file",
        type=int,
        default=DEFAULT_MAX_PER_FILE,
        help="drawings taken from each .ndjson/.npy file (default 100, 0 = all)",
    )
    parser.add_argument(
        "--low_confidence",
        "--low-confidence",
        dest="low_confidence",
        type=unit_float,
        default=0.5,
        help="low-confidence threshold (default 0.5)",
    )
    parser.add_argument(
        "--overlay_scale",
        "--overlay-scale",
        dest="overlay_scale",
        type=positive_int,
        default=1,
        help="enlarge each overlay PNG by this factor (default 1: the model's 64x64)",
    )
    parser.add_argument(
        "--confusion_figure",
        "--confusion-figure",
        dest="confusion_figure",
        action="store_true",
        help="also write confusion_matrix.png (report.html always has the matrix as a table)",
    )
    parser.add_argument(
        "--order",
        choices=GALLERY_ORDERS,
        default=DEFAULT_ORDER,
        help="gallery order in report.html (default least_confident: the doubtful cases first)",
    )
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=default_workers(),
        help="threads for decoding and writing files (default: half the cores, at most 4)",
    )
    add_ray_options(parser)
    parser.set_defaults(handler=run)


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """``--ray [ADDRESS]`` and the actor pool's size (read only when --ray is given)."""
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="explain on Ray (pip install -e '.[ray]'): alone, a local Ray on this machine's "
        "cores; with an address (host:6379 or auto), join that cluster. Output gains "
        "results.parquet, and a rerun on the same --output skips inputs already done",
    )
    parser.add_argument(
        "--ray_actors",
        "--ray-actors",
        dest="ray_actors",
        type=positive_int,
        default=None,
        help="model replicas (default: the cluster's CPUs (or GPUs) divided by one actor's)",
    )
    parser.add_argument(
        "--ray_cpus_per_actor",
        "--ray-cpus-per-actor",
        dest="ray_cpus_per_actor",
        type=positive_int,
        default=1,
        help="CPUs each replica reserves; TensorFlow's threads are sized to it (default 1)",
    )
    parser.add_argument(
        "--ray_gpus_per_actor",
        "--ray-gpus-per-actor",
        dest="ray_gpus_per_actor",
        type=float,
        default=0.0,
        help="GPUs each replica reserves (default 0; 0.5 puts two replicas on one GPU)",
    )


def run(args: argparse.Namespace) -> int:
    """Handler: find the inputs (cheap checks first), load the engine, run, report."""
    labels = load_labels(args)
    discovery = require_inputs(
        discover_sources(args.images_dir, labels, args.max_per_file, args.output), args.images_dir
    )
    engine = load_engine(args, labels)
    output_dir = prepare_output_dir(args.output)
    options = BatchOptions(
        top_k=args.top_k,
        alpha=args.alpha,
        colormap=args.colormap,
        batch_size=args.batch_size,
        workers=args.workers,
        low_confidence=args.low_confidence,
        overlay_scale=args.overlay_scale,
        confusion_figure=args.confusion_figure,
        order=args.order,
    )
    if args.ray is not None:
        # Imported here: ray stays out of every run that does not ask for it.
        from src.batch.ray_runner import RayOptions, run_ray_batch

        ray_options = RayOptions(
            address=args.ray or None,
            actors=args.ray_actors,
            cpus_per_actor=args.ray_cpus_per_actor,
            gpus_per_actor=args.ray_gpus_per_actor,
        )
        summary = run_ray_batch(
            engine, discovery, args.images_dir, output_dir, options, ray_options
        )
        emit(
            f"Ray: explained {summary['ray']['explained_now']} new inputs, "
            f"{summary['ray']['resumed']} already done in {output_dir}"
        )
    else:
        summary = run_batch(engine, discovery, args.images_dir, output_dir, options)
    emit(
        f"Explained {summary['succeeded']} of {summary['total']} inputs; "
        f"{summary['failed']} could not be read"
    )
    emit(f"Not sure: {summary['not_sure']} of {summary['succeeded']} (open-set rule)")
    if summary["empty"]:
        emit(f"Nothing drawn: {summary['empty']} inputs with no ink (no class, not in accuracy)")
    if summary["accuracy"] is not None:
        emit(
            f"Accuracy: {summary['accuracy']:.1%} of {summary['class_metrics']['labelled']} labelled"
        )
    if (warning := label_check_line(summary["label_check"])) is not None:
        sys.stderr.write(warning + "\n")
    for failure in summary["failures"][:10]:
        emit(f"  failed: {failure['source']}: {failure['reason']}")
    emit(f"Report: {output_dir / 'report.html'}")
    return ExitStatus.PARTIAL_FAILURE if summary["failed"] else ExitStatus.SUCCESS
