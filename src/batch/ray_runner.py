"""The Ray runner (``batch --ray [ADDRESS]``): the batch explained by a pool of Ray actors,
resumable.

The driver lists the inputs (``discover_sources``, as a local run), names their overlays as a
local run would, and hands Ray Data one small row per input (source, label, kind, path, and a
drawing's strokes or a bitmap's pixels). ``map_batches`` runs the rows through a pool of
``ExplainActor`` replicas, each holding the model once; Ray replaces an actor that dies and
retries its batch (Ray Data's actor defaults: ``max_restarts=-1``, ``max_task_retries=-1``).
Actors write overlays and per-batch part files themselves (``src.batch.ray_worker``); the driver
streams back one status row per input and never holds a map or an image.

At the end the driver reads the part files one at a time into the local runner's
``BatchAccumulator`` (records and mean-map sums) and hands it to the same
``write_batch_outputs``, so batch_summary.json/.csv, mean maps and report.html are a local run's.

Resume: one run holds the folder at a time (``run_folder.claim_output_folder``); a folder whose
results were made with other settings (``run_settings``) is refused, or cleared with --fresh.
Each row is keyed on (source, content SHA-256, label, settings key); a rerun skips the inputs
whose key is in a sound part (``results_store``). A part holding a row that is no longer a
current input's key is deleted and its still-current inputs explained again, so the report
counts each current input once, with this run's settings.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.batch.inputs import Discovery, Failure
from src.batch.options import BatchOptions
from src.batch.outputs import write_batch_outputs
from src.batch.overlays import OVERLAYS_DIR, OverlayNamer
from src.batch.ray_cluster import (
    DEFAULT_PLACEMENT_WAIT_S,
    check_pool_fits,
    check_resources,
    ray_session,
)
from src.batch.ray_worker import ExplainActor, add_sums, record_from_row
from src.batch.records import BatchAccumulator, EmptyInput
from src.batch.results_store import RowKey, delete_stale_parts, done_keys, read_parts, row_key
from src.batch.run_folder import RESULTS_DIR, SUMS_DIR, check_run_settings, claim_output_folder
from src.batch.run_settings import run_settings, settings_key
from src.errors import SketchError, UsageError
from src.utils.atomic_write import write_bytes_atomic

if TYPE_CHECKING:
    from src.service.explainer import Explainer

logger = logging.getLogger(__name__)

RAY_MISSING = "--ray needs Ray: install with pip install -e '.[ray]'"


@dataclass(frozen=True)
class RayOptions:
    """Where the Ray run goes and how big its actor pool is."""

    address: str | None = None  # None: start a local Ray on this machine's cores
    actors: int | None = None  # None: as many as the cluster's CPUs (or GPUs) allow
    cpus_per_actor: int = 1
    gpus_per_actor: float = 0.0
    # The actor class; a subclass may add behaviour (the tests' actor that dies once).
    actor_class: type = ExplainActor
    # Seconds to wait for the cluster to place the pool before giving up with what it has.
    placement_wait_s: float = DEFAULT_PLACEMENT_WAIT_S
    verbose: bool = False  # Ray's own INFO and WARNING lines, and the actors' output

    def __post_init__(self) -> None:
        check_resources(self.cpus_per_actor, self.gpus_per_actor, self.actors)
        if not math.isfinite(self.placement_wait_s) or self.placement_wait_s <= 0:
            raise UsageError(f"--ray_wait must be a positive number, got {self.placement_wait_s}")


def import_ray() -> Any:
    """``import ray`` with the install hint as a SketchError when it is missing."""
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as error:
        raise SketchError(RAY_MISSING) from error
    return ray


def run_ray_batch(
    engine: Explainer,
    discovery: Discovery,
    images_dir: Path,
    output_dir: Path,
    options: BatchOptions,
    ray_options: RayOptions = RayOptions(),
) -> dict[str, Any]:
    """Explain ``discovery``'s inputs on Ray into ``output_dir`` and write the local run's files
    plus results.parquet.

    Returns:
        The summary written to batch_summary.json, with a "ray" entry: address, actors,
        explained_now (inputs explained in this run), resumed (found done) and set_aside
        (damaged part files moved to damaged/).

    Raises:
        UsageError: another run holds the folder, or its results were made with other
            settings and ``options.fresh`` is False.
    """
    with claim_output_folder(output_dir):
        settings = run_settings(engine, options)
        check_run_settings(output_dir, settings, options.fresh, record=True)
        for folder in (RESULTS_DIR, SUMS_DIR, OVERLAYS_DIR):
            _check_writable(output_dir / folder)
        ray = import_ray()
        started, clock = datetime.now(UTC), time.monotonic()
        with ray_session(ray, ray_options.address, ray_options.verbose):
            accumulator, extra = _explain_all(
                ray, engine, discovery, output_dir, options, ray_options, settings_key(settings)
            )
        extra["address"] = ray_options.address or "local"
        return write_batch_outputs(
            engine, accumulator, discovery, images_dir, output_dir, options, started, clock,
            {"ray": extra},
        )  # fmt: skip


def _explain_all(
    ray: Any,
    engine: Explainer,
    discovery: Discovery,
    output_dir: Path,
    options: BatchOptions,
    ray_options: RayOptions,
    settings: str,
) -> tuple[BatchAccumulator, dict[str, Any]]:
    """The passes over the inputs, then the records and sums of the current parts."""
    rows, overlay_names = _dataset_rows(discovery, output_dir)
    # In the object store once for every pass; the driver keeps only the reference.
    names_ref = ray.put(overlay_names)
    del overlay_names
    labels = {item.source: item.true_class or "" for item in discovery.inputs}
    set_aside: list[str] = []
    explained_now, actors = 0, 0
    # A second pass only when parts held inputs that changed or left the folder.
    for _ in range(2):
        done = done_keys(read_parts(output_dir, set_aside))
        outcome, actors = _run_pass(
            ray, engine, rows, names_ref, done, output_dir, options, ray_options, settings
        )
        explained_now += outcome.explained
        current = {
            (source, sha, labels[source], settings) for source, sha in outcome.current.items()
        }
        if not delete_stale_parts(read_parts(output_dir, set_aside), current):
            break
    if set_aside:
        logger.info("set aside damaged parts (inputs explained again): %s", ", ".join(set_aside))
    accumulator = _assemble(engine, discovery, outcome.failed, current, output_dir, set_aside)
    accumulator.empty = [
        EmptyInput(item.source, item.true_class)
        for item in discovery.inputs
        if item.source in outcome.empty
    ]
    extra = {
        "actors": actors,
        "explained_now": explained_now,
        # Found done: the current inputs not explained by this run.
        "resumed": len(current) - explained_now,
        "results": RESULTS_DIR,
        "set_aside": set_aside,
    }
    return accumulator, extra


def _check_writable(folder: Path) -> None:
    """Create ``folder`` and write a file in it, so an unwritable one stops the run at once
    (the actors' writes would fail and be retried by Ray).

    Raises:
        OSError: naming the folder (exit 10).
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(folder / ".write-check", b"")
        (folder / ".write-check").unlink()
    except OSError as error:
        raise OSError(error.errno, error.strerror, str(folder)) from error


def _dataset_rows(discovery: Discovery, output_dir: Path) -> tuple[Any, dict[str, str]]:
    """One small row per input as an Arrow table (columns, not a dict per input), and each
    input's overlay name (a local run's names)."""
    import pyarrow as pa

    namer = OverlayNamer(output_dir / OVERLAYS_DIR)
    columns: dict[str, list[Any]] = {
        name: [] for name in ("source", "true_class", "kind", "path", "payload")
    }
    names = {}
    for item in discovery.inputs:
        origin = item.origin
        if origin is None:
            raise SketchError(f"{item.source}: input without an origin cannot be sent to Ray")
        if origin.kind == "drawing":
            payload = json.dumps(origin.record, separators=(",", ":")).encode()
        elif origin.kind == "bitmap":
            payload = origin.record.tobytes()
        else:
            payload = b""
        names[item.source] = namer.path_for(item.source).name
        for name, value in (
            ("source", item.source),
            ("true_class", item.true_class),
            ("kind", origin.kind),
            ("path", str(origin.path.absolute())),
            ("payload", payload),
        ):
            columns[name].append(value)
    schema = pa.schema(
        [(name, pa.binary() if name == "payload" else pa.string()) for name in columns]
    )
    return pa.table(columns, schema=schema), names


@dataclass
class _PassOutcome:
    """What one pass over the inputs did, from the actors' status rows."""

    current: dict[str, str] = field(default_factory=dict)  # source -> content SHA-256
    failed: dict[str, str] = field(default_factory=dict)  # source -> reason
    empty: set[str] = field(default_factory=set)  # sources with no ink (nothing drawn)
    explained: int = 0
    skipped: int = 0


def _actor_count(ray_options: RayOptions, blocks: int, resources: dict[str, float]) -> int:
    """The pool size: asked for, else what the cluster's CPUs (or GPUs) fit; never more than
    there are batches to share."""
    if ray_options.actors is not None:
        return ray_options.actors
    if ray_options.gpus_per_actor > 0:
        fit = int(resources.get("GPU", 0) // ray_options.gpus_per_actor)
    else:
        fit = int(resources.get("CPU", 1) // ray_options.cpus_per_actor)
    return max(1, min(fit, blocks))


def _run_pass(
    ray: Any,
    engine: Explainer,
    rows: Any,
    overlay_names: Any,
    done: frozenset[RowKey],
    output_dir: Path,
    options: BatchOptions,
    ray_options: RayOptions,
    settings: str,
) -> tuple[_PassOutcome, int]:
    """Run every row through the actor pool; return what the actors' status rows say (a few
    strings per input, no maps) and the pool size."""
    outcome = _PassOutcome()
    if not rows.num_rows:
        return outcome, 0
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = bool(options.progress)
    # One block per Grad-CAM batch: a block is the unit Ray retries, and a part file's content.
    size = options.batch_size
    dataset = ray.data.from_arrow(
        [rows.slice(start, size) for start in range(0, rows.num_rows, size)]
    )
    blocks = math.ceil(rows.num_rows / size)
    actors = _actor_count(ray_options, blocks, ray.cluster_resources())
    check_pool_fits(
        ray,
        actors,
        ray_options.cpus_per_actor,
        ray_options.gpus_per_actor,
        ray_options.placement_wait_s,
    )
    explained = dataset.map_batches(
        ray_options.actor_class,
        fn_constructor_kwargs={
            "model_path": str(engine.model_path),
            "class_names": tuple(engine.class_names),
            "method": engine.gradcam.method,
            "layer": engine.default_layer,
            "options": options,
            "output_dir": str(output_dir),
            "overlay_names": [overlay_names],
            "done": [ray.put(done)],
            "cpus": ray_options.cpus_per_actor,
            "settings": settings,
            "input_spec": engine.input_spec,
        },
        batch_size=options.batch_size,
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=actors),
        num_cpus=ray_options.cpus_per_actor,
        num_gpus=ray_options.gpus_per_actor or None,
    )
    for batch in explained.iter_batches(batch_format="pyarrow", batch_size=None):
        for status in batch.to_pylist():
            if status["status"] == "failed":
                outcome.failed[status["source"]] = status["reason"]
                continue
            if status["status"] == "empty":
                outcome.empty.add(status["source"])
            outcome.current[status["source"]] = status["sha256"]
            outcome.explained += status["status"] == "explained"
            outcome.skipped += status["status"] == "skipped"
    return outcome, actors


def _assemble(
    engine: Explainer,
    discovery: Discovery,
    failed: dict[str, str],
    current: set[RowKey],
    output_dir: Path,
    set_aside: list[str],
) -> BatchAccumulator:
    """Records and mean-map sums of the current parts, in input order, failures listed."""
    accumulator = BatchAccumulator(engine.class_names, engine.gradcam.input_size)
    order = {item.source: position for position, item in enumerate(discovery.inputs)}
    records = []
    for part in read_parts(output_dir, set_aside):
        # Only rows of this run's inputs and settings reach the report, with their sums.
        if all(row_key(row) in current for row in part.rows):
            records.extend(record_from_row(row) for row in part.rows)
            add_sums(accumulator, part.sums)
    records.sort(key=lambda record: order[record.source])
    accumulator.records = records
    accumulator.failures = [
        *discovery.failures,
        *(Failure(source, failed[source]) for source in sorted(failed, key=order.__getitem__)),
    ]
    return accumulator
