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
                             confused pairs; faithfulness.json and audit.json when the output
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
import hashlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from src.audit import AUDIT_FIGURE, AUDIT_JSON
from src.cli.batch_html import GALLERY_ORDERS
from src.cli.batch_inputs import (
    DEFAULT_MAX_PER_FILE,
    BatchInput,
    Discovery,
    Failure,
    discover_sources,
    failure_reason,
)
from src.cli.batch_report import (
    BatchAccumulator,
    ImageRecord,
    OverlayNamer,
    build_summary,
    write_summary_files,
)
from src.cli.common import (
    emit,
    load_engine,
    load_labels,
    positive_int,
    prepare_output_dir,
    unit_float,
    write_bytes_atomic,
    write_text_atomic,
)
from src.cli.exit_status import ExitStatus
from src.errors import InvalidImageError, SketchError

if TYPE_CHECKING:
    from src.service.explainer import Explainer

OVERLAYS_DIR = "overlays"
CONFUSION_FIGURE = "confusion_matrix.png"
DEFAULT_BATCH_SIZE = 64


def default_workers() -> int:
    """Threads for decoding and writing: half the cores (1 on 2 cores, at most 4).

    TensorFlow already spreads each Grad-CAM call over every core, so more threads than half
    the cores fight it and each other over the CPU and the interpreter lock (bench/cli_batch.py
    compares worker counts).
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs and renders (argparse fills it from the command line)."""

    top_k: int = 3
    alpha: float = 0.4
    colormap: str = "jet"
    batch_size: int = DEFAULT_BATCH_SIZE  # images per compiled Grad-CAM call
    # Threads decoding inputs and encoding PNGs while the engine runs; the CLI's default too.
    workers: int = field(default_factory=default_workers)
    low_confidence: float = 0.5  # below this, a case is listed as low-confidence
    progress: bool | None = None  # None: a progress bar only on a terminal
    # Overlays are saved at the model's resolution; the report enlarges them with CSS, and
    # encoding 4x the pixels would cost more than the Grad-CAM itself.
    overlay_scale: int = 1
    confusion_figure: bool = False  # also draw confusion_matrix.png (report.html has the table)
    order: str = "least_confident"  # the gallery's order: see GALLERY_ORDERS in batch_html


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
        default="least_confident",
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
    discovery = discover_sources(args.images_dir, labels, args.max_per_file, args.output)
    if not discovery.inputs and not discovery.failures:
        raise InvalidImageError(
            f"no sketches found under {args.images_dir}; supported: images (.png, .jpg, .bmp, "
            ".gif, .webp), .ndjson drawings and .npy bitmaps"
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
        from src.cli.ray_batch import RayOptions, run_ray_batch

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
    if summary["accuracy"] is not None:
        emit(
            f"Accuracy: {summary['accuracy']:.1%} of {summary['class_metrics']['labelled']} labelled"
        )
    for failure in summary["failures"][:10]:
        emit(f"  failed: {failure['source']}: {failure['reason']}")
    emit(f"Report: {output_dir / 'report.html'}")
    return ExitStatus.PARTIAL_FAILURE if summary["failed"] else ExitStatus.SUCCESS


def run_batch(
    engine: Explainer,
    discovery: Discovery,
    images_dir: Path,
    output_dir: Path,
    options: BatchOptions = BatchOptions(),
) -> dict[str, Any]:
    """Explain every discovered input in batches and write every output file atomically.

    Decoding of the next batch and PNG encoding of the last one run in worker threads while
    the engine computes, so the engine is rarely idle.

    Returns:
        The summary written to batch_summary.json.
    """
    from tqdm import tqdm

    started, clock = datetime.now(UTC), time.monotonic()
    accumulator = BatchAccumulator(engine.class_names, engine.gradcam.input_size)
    accumulator.failures.extend(discovery.failures)
    namer = OverlayNamer(output_dir / OVERLAYS_DIR)
    chunks = [
        discovery.inputs[start : start + options.batch_size]
        for start in range(0, len(discovery.inputs), options.batch_size)
    ]
    # tqdm's disable=None shows the bar only on a terminal, keeping logs and pipes clean.
    hide_bar = None if options.progress is None else not options.progress
    with (
        ThreadPoolExecutor(options.workers) as pool,
        tqdm(total=len(discovery.inputs), unit="sketch", disable=hide_bar) as bar,
    ):
        writes: list[Future[list[Failure]]] = []
        for chunk, decoded in _decoded_chunks(pool, chunks, options.workers):
            written = explain_chunk(engine, chunk, decoded, accumulator, namer, options)
            # One task per worker and chunk: a future per image cost more than its PNG.
            writes.extend(
                pool.submit(write_overlays, part, options.overlay_scale)
                for part in _split(written, options.workers)
            )
            bar.update(len(chunk))
        for write in writes:
            for failure in write.result():
                accumulator.output_failed(failure.source, failure.reason)
    return write_batch_outputs(
        engine, accumulator, discovery, images_dir, output_dir, options, started, clock
    )


def write_batch_outputs(
    engine: Explainer,
    accumulator: BatchAccumulator,
    discovery: Discovery,
    images_dir: Path,
    output_dir: Path,
    options: BatchOptions,
    started: datetime,
    clock: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean maps, batch_summary.json/.csv, the confusion figure and report.html of a finished
    batch (local or on Ray); ``extra`` adds fields to the summary.

    Returns:
        The summary written to batch_summary.json.
    """
    from src.cli.batch_html import render_report

    mean_maps = accumulator.write_mean_maps(output_dir, options.alpha, options.colormap)
    header = {
        "images_dir": str(images_dir),
        "model_path": str(engine.model_path),
        "model_sha256": file_sha256(engine.model_path),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - clock, 3),
        "layer": engine.gradcam.layer_name,
        "method": engine.gradcam.method,
        "colormap": options.colormap,
        "ignored": discovery.ignored,
        "truncated_files": discovery.truncated,
        **(extra or {}),
    }
    summary = build_summary(accumulator, mean_maps, header)
    if options.confusion_figure and summary["class_metrics"] is not None:
        _write_confusion_figure(summary["class_metrics"]["confusion_matrix"], output_dir)
    write_summary_files(summary, output_dir)
    audit_files = [name for name in (AUDIT_JSON, AUDIT_FIGURE) if (output_dir / name).is_file()]
    report = render_report(summary, options.low_confidence, audit_files, output_dir, options.order)
    write_text_atomic(output_dir / "report.html", report)
    return summary


def file_sha256(path: Path) -> str | None:
    """The SHA-256 of a file in hex (None when it cannot be read, e.g. an in-memory model)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _write_confusion_figure(confusion: dict[str, Any], output_dir: Path) -> None:
    """confusion_matrix.png beside the report; its name is added to the summary's entry."""
    from src.visualization.figures import save_confusion_matrix

    save_confusion_matrix(confusion["matrix"], confusion["classes"], output_dir / CONFUSION_FIGURE)
    confusion["figure"] = CONFUSION_FIGURE


def _decode_all(items: list[BatchInput]) -> list[np.ndarray | Failure]:
    """Decode inputs in a worker thread; an unreadable one becomes a Failure."""
    decoded: list[np.ndarray | Failure] = []
    for item in items:
        try:
            decoded.append(item.load())
        except (SketchError, OSError, ValueError) as error:
            decoded.append(Failure(item.source, failure_reason(error)))
    return decoded


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` in at most ``parts`` consecutive, nearly equal, non-empty slices."""
    size = -(-len(items) // max(parts, 1))
    return [items[start : start + size] for start in range(0, len(items), max(size, 1))]


def _decoded_chunks(
    pool: ThreadPoolExecutor, chunks: list[list[BatchInput]], workers: int
) -> Iterator[tuple[list[BatchInput], list[np.ndarray | Failure]]]:
    """Yield each chunk with its decoded inputs, decoding the next chunk in the background."""

    def submit(chunk: list[BatchInput]) -> list[Future[list[np.ndarray | Failure]]]:
        return [pool.submit(_decode_all, part) for part in _split(chunk, workers)]

    pending = submit(chunks[0]) if chunks else []
    for position, chunk in enumerate(chunks):
        decoded = [array for future in pending for array in future.result()]
        if position + 1 < len(chunks):
            pending = submit(chunks[position + 1])
        yield chunk, decoded


def explain_chunk(
    engine: Explainer,
    chunk: list[BatchInput],
    decoded: list[np.ndarray | Failure],
    accumulator: BatchAccumulator,
    namer: OverlayNamer,
    options: BatchOptions,
) -> list[tuple[str, Path, np.ndarray]]:
    """One compiled Grad-CAM call for the chunk's readable inputs.

    Returns:
        (source, overlay path, overlay RGB) for each readable input, to be written.
    """
    from src.inference.predictor import rank_classes
    from src.visualization.overlay import overlay_heatmaps

    readable = [
        (item, array) for item, array in zip(chunk, decoded) if not isinstance(array, Failure)
    ]
    accumulator.failures.extend(array for array in decoded if isinstance(array, Failure))
    if not readable:
        return []
    images = np.stack([array for _, array in readable])
    result = engine.gradcam.explain(images)
    records, paths = [], []
    verdicts = engine.open_set(result)
    for (item, _), probabilities, verdict in zip(readable, result.probabilities, verdicts):
        # At least two ranked, for the runner-up and the margin, whatever --top_k asks.
        ranked = rank_classes(probabilities, engine.labels, max(options.top_k, 2))
        second = ranked[1] if len(ranked) > 1 else None
        paths.append(namer.path_for(item.source))
        records.append(
            ImageRecord(
                source=item.source,
                overlay=f"{OVERLAYS_DIR}/{paths[-1].name}",
                true_class=item.true_class,
                predicted_class=ranked[0].class_name,
                predicted_class_index=ranked[0].class_index,
                confidence=ranked[0].confidence,
                top_predictions=[
                    {
                        "rank": entry.rank,
                        "class_name": entry.class_name,
                        "class_index": entry.class_index,
                        "confidence": entry.confidence,
                    }
                    for entry in ranked[: options.top_k]
                ],
                second_class=second.class_name if second else None,
                second_confidence=second.confidence if second else None,
                recognised=verdict.recognised,
                open_set_score=verdict.score,
            )
        )
    accumulator.add(records, images, result.heatmaps)
    # The whole chunk's overlays in one vectorised pass; only the PNG encoding is per image.
    overlays = overlay_heatmaps(images, result.heatmaps, options.alpha, options.colormap)
    return [
        (record.source, path, overlay) for record, path, overlay in zip(records, paths, overlays)
    ]


def write_overlays(items: list[tuple[str, Path, np.ndarray]], scale: int) -> list[Failure]:
    """Encode and write overlays atomically in a worker thread; a write error becomes a Failure."""
    from src.visualization.overlay import to_png_bytes

    failures = []
    for source, path, overlay in items:
        try:
            write_bytes_atomic(path, to_png_bytes(overlay, scale=scale))
        except OSError as error:
            failures.append(
                Failure(source, f"overlay {path} not written: {error.strerror or error}")
            )
    return failures
