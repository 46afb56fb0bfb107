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
``write_batch_outputs``, so batch_summary.json/.csv, mean maps and report.html are a local run's. A rerun on the same output folder skips every input
whose (source, content SHA-256) is already in a part. A part holding an input that changed or
left the folder since is deleted and its still-current inputs explained again, so the report
counts each current input once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.batch.inputs import Discovery, Failure
from src.batch.options import BatchOptions
from src.batch.outputs import write_batch_outputs
from src.batch.overlays import OVERLAYS_DIR, OverlayNamer
from src.batch.ray_worker import (
    RESULTS_DIR,
    SUMS_DIR,
    ExplainActor,
    add_sums,
    record_from_row,
)
from src.batch.records import BatchAccumulator, EmptyInput
from src.config import PROJECT_ROOT
from src.errors import SketchError

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
        explained_now (inputs explained in this run) and resumed (found done).
    """
    ray = import_ray()
    started, clock = datetime.now(UTC), time.monotonic()
    started_here = _connect(ray, ray_options)
    try:
        rows, overlay_names = _dataset_rows(discovery, output_dir)
        # In the object store once for every pass; the driver keeps only the reference.
        names_ref = ray.put(overlay_names)
        del overlay_names
        explained_now, resumed, actors = 0, 0, 0
        # A second pass only when parts held inputs that changed or left the folder.
        for _ in range(2):
            done = _done_pairs(output_dir)
            outcome, actors = _run_pass(
                ray, engine, rows, names_ref, done, output_dir, options, ray_options
            )
            explained_now += outcome.explained
            resumed = outcome.skipped
            current = outcome.current
            if not _delete_stale_parts(output_dir, current):
                break
        accumulator = _assemble(engine, discovery, outcome.failed, current, output_dir)
        accumulator.empty = [
            EmptyInput(item.source, item.true_class)
            for item in discovery.inputs
            if item.source in outcome.empty
        ]
    finally:
        if started_here:
            ray.shutdown()
    extra = {
        "ray": {
            "address": ray_options.address or "local",
            "actors": actors,
            "explained_now": explained_now,
            "resumed": resumed,
            "results": RESULTS_DIR,
        }
    }
    return write_batch_outputs(
        engine, accumulator, discovery, images_dir, output_dir, options, started, clock, extra
    )


def _connect(ray: Any, ray_options: RayOptions) -> bool:
    """Join the cluster at the address, or start a local Ray; True when this call started it."""
    if ray.is_initialized():
        return False
    # Ray Data's per-run INFO lines (plan, timing) would mix with the command's own output.
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if ray_options.address:
        # Every node imports the installed project (pip install -e '.[ray]' on each machine).
        ray.init(address=ray_options.address, logging_level=logging.WARNING)
    else:
        ray.init(
            num_cpus=os.cpu_count() or 1,
            include_dashboard=False,
            logging_level=logging.WARNING,
            # The actors' own output (TensorFlow's start-up lines) stays in Ray's log files.
            log_to_driver=False,
            # Local workers import this checkout's code, whatever else is installed.
            runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}},
        )
    return True


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
    done: frozenset[tuple[str, str]],
    output_dir: Path,
    options: BatchOptions,
    ray_options: RayOptions,
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


def _part_files(output_dir: Path) -> list[Path]:
    """The finished results parts (temporary files start with a dot)."""
    return sorted((output_dir / RESULTS_DIR).glob("part-*.parquet"))


def _done_pairs(output_dir: Path) -> frozenset[tuple[str, str]]:
    """(source, content SHA-256) of every input in a finished part."""
    import pyarrow.parquet as pq

    pairs: set[tuple[str, str]] = set()
    for part in _part_files(output_dir):
        table = pq.read_table(part, columns=["path", "sha256"])
        pairs.update(zip(table["path"].to_pylist(), table["sha256"].to_pylist()))
    return frozenset(pairs)


def _delete_stale_parts(output_dir: Path, current: dict[str, str]) -> bool:
    """Delete the parts (and sums) holding an input that changed or is no longer an input;
    True when any was deleted."""
    import pyarrow.parquet as pq

    stale = False
    for part in _part_files(output_dir):
        table = pq.read_table(part, columns=["path", "sha256"])
        pairs = zip(table["path"].to_pylist(), table["sha256"].to_pylist())
        if any(current.get(source) != sha for source, sha in pairs):
            logger.info("%s holds inputs that changed; explaining its inputs again", part.name)
            (output_dir / SUMS_DIR / f"{part.stem}.npz").unlink(missing_ok=True)
            part.unlink()
            stale = True
    return stale


def _assemble(
    engine: Explainer,
    discovery: Discovery,
    failed: dict[str, str],
    current: dict[str, str],
    output_dir: Path,
) -> BatchAccumulator:
    """Records and mean-map sums from the part files, in input order, failures listed."""
    import pyarrow.parquet as pq

    accumulator = BatchAccumulator(engine.class_names, engine.gradcam.input_size)
    order = {item.source: position for position, item in enumerate(discovery.inputs)}
    records = []
    for part in _part_files(output_dir):
        for row in pq.read_table(part).to_pylist():
            if current.get(row["path"]) == row["sha256"]:
                records.append(record_from_row(row))
        add_sums(accumulator, output_dir / SUMS_DIR / f"{part.stem}.npz")
    records.sort(key=lambda record: order[record.source])
    accumulator.records = records
    accumulator.failures = [
        *discovery.failures,
        *(Failure(source, failed[source]) for source in sorted(failed, key=order.__getitem__)),
    ]
    return accumulator
