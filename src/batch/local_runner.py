"""The local runner: the batch explained in this process, decoding and PNG writing in threads."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from src.batch.explain_step import explain_chunk
from src.batch.inputs import BatchInput, Discovery, Failure, failure_reason
from src.batch.options import BatchOptions
from src.batch.outputs import write_batch_outputs
from src.batch.overlays import OVERLAYS_DIR, OverlayNamer, write_overlays
from src.batch.records import BatchAccumulator
from src.batch.run_folder import check_run_settings, claim_output_folder
from src.batch.run_settings import run_settings
from src.data.input_spec import InputSpec
from src.errors import SketchError

if TYPE_CHECKING:
    from src.service.explainer import Explainer


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

    Raises:
        UsageError: another run holds the folder, or it holds resumable results made with
            other settings and ``options.fresh`` is False.
    """
    with claim_output_folder(output_dir):
        check_run_settings(output_dir, run_settings(engine, options), options.fresh, record=False)
        return _run_claimed(engine, discovery, images_dir, output_dir, options)


def _run_claimed(
    engine: Explainer,
    discovery: Discovery,
    images_dir: Path,
    output_dir: Path,
    options: BatchOptions,
) -> dict[str, Any]:
    """``run_batch`` in a folder this run holds."""
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
        for chunk, decoded in _decoded_chunks(pool, chunks, options.workers, engine.input_spec):
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


def _decode_all(items: list[BatchInput], spec: InputSpec) -> list[np.ndarray | Failure]:
    """Decode inputs in the explainer's convention in a worker thread; an unreadable one
    becomes a Failure."""
    decoded: list[np.ndarray | Failure] = []
    for item in items:
        try:
            decoded.append(item.load(spec))
        except (SketchError, OSError, ValueError) as error:
            decoded.append(Failure(item.source, failure_reason(error)))
    return decoded


def _split(items: list[Any], parts: int) -> list[list[Any]]:
    """``items`` in at most ``parts`` consecutive, nearly equal, non-empty slices."""
    size = -(-len(items) // max(parts, 1))
    return [items[start : start + size] for start in range(0, len(items), max(size, 1))]


def _decoded_chunks(
    pool: ThreadPoolExecutor, chunks: list[list[BatchInput]], workers: int, spec: InputSpec
) -> Iterator[tuple[list[BatchInput], list[np.ndarray | Failure]]]:
    """Yield each chunk with its decoded inputs, decoding the next chunk in the background."""

    def submit(chunk: list[BatchInput]) -> list[Future[list[np.ndarray | Failure]]]:
        return [pool.submit(_decode_all, part, spec) for part in _split(chunk, workers)]

    pending = submit(chunks[0]) if chunks else []
    for position, chunk in enumerate(chunks):
        decoded = [array for future in pending for array in future.result()]
        if position + 1 < len(chunks):
            pending = submit(chunks[position + 1])
        yield chunk, decoded
