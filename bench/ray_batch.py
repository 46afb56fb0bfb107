"""``batch --ray`` on a local Ray against the in-process ``batch``, and the driver's memory.

Usage (from the repository root): ``python -m bench.ray_batch [--count 20000] [--small 2000]``.
Generates ``--count`` PNG sketches (bench.cli_batch's random strokes; the first ``--small`` of
them again as a second folder) and an untrained project CNN (24 classes; it costs what a
trained one costs), then:
  1. times the local batch in-process (``run_batch``, the engine already loaded) on both folders;
  2. times ``run_ray_batch`` on both folders on a local Ray with this machine's cores, one actor
     per core, each in a fresh driver process (Ray already started; the actors' start and model
     loading are inside the time), and reads each driver's peak RSS.
Prints the end-to-end rates and their ratio; the steady-state rates (the large run's extra
sketches per extra second, so fixed costs cancel), their ratio (aim: >= 0.7 on 2 cores) and the
per-actor rate; each run's fixed cost; and the driver's peak RSS at both sizes (flat: ratio
close to 1).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def ray_driver(model: Path, labels: Path, sketches: Path, output: Path, batch_size: int) -> dict:
    """One Ray run in this process: seconds, actors and this process's peak RSS in MiB."""
    import argparse as namespace_parser
    import logging

    import ray

    from src.batch.inputs import discover_sources
    from src.batch.options import BatchOptions
    from src.batch.ray_runner import RayOptions, run_ray_batch
    from src.cli.common import load_engine, prepare_output_dir
    from src.config import PROJECT_ROOT

    cores = os.cpu_count() or 1
    ray.init(
        num_cpus=cores,
        include_dashboard=False,
        logging_level=logging.ERROR,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}},
    )
    engine = load_engine(
        namespace_parser.Namespace(model=model, labels=labels, layer=None, method=None)
    )
    start = time.perf_counter()
    discovery = discover_sources(sketches, engine.labels)
    summary = run_ray_batch(
        engine,
        discovery,
        sketches,
        prepare_output_dir(output),
        BatchOptions(batch_size=batch_size, progress=False),
        RayOptions(actors=cores),
    )
    seconds = time.perf_counter() - start
    ray.shutdown()
    assert summary["succeeded"] == len(discovery.inputs), summary["failures"][:3]
    # ru_maxrss is in KiB on Linux.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "seconds": seconds,
        "inputs": summary["succeeded"],
        "actors": summary["ray"]["actors"],
        "peak_rss_mib": peak,
    }


def run_driver_process(model: Path, labels: Path, sketches: Path, output: Path, batch: int) -> dict:
    """``ray_driver`` in a fresh interpreter, so its peak RSS is the Ray driver's alone."""
    completed = subprocess.run(
        [sys.executable, "-m", "bench.ray_batch", "--driver", str(model), str(labels),
         str(sketches), str(output), str(batch)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Generate sketches, time local and Ray batches, print ratios and the driver's memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--small", type=int, default=2000)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=64)
    parser.add_argument("--driver", nargs=5, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver:
        model, labels, sketches, output, batch = args.driver
        result = ray_driver(Path(model), Path(labels), Path(sketches), Path(output), int(batch))
        print(json.dumps(result))
        return 0

    from bench.cli_batch import build_model, write_sketches
    from src.batch.inputs import discover_sources
    from src.batch.local_runner import run_batch
    from src.batch.options import BatchOptions
    from src.cli.common import load_engine
    from src.data.labels import LabelMap

    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model, labels = root / "model.h5", root / "labels.json"
        LabelMap(tuple(f"class_{index:02d}" for index in range(24))).save(labels)
        build_model(model, 24)
        sketches, small = root / "sketches", root / "small"
        write_sketches(sketches, [f"class_{index:02d}" for index in range(24)], args.count)
        write_sketches(small, [f"class_{index:02d}" for index in range(24)], args.small)

        engine = load_engine(
            argparse.Namespace(model=model, labels=labels, layer=None, method=None)
        )
        options = BatchOptions(batch_size=args.batch_size, progress=False)
        local_seconds = {}
        for name, folder in (("small", small), ("large", sketches)):
            start = time.perf_counter()
            discovery = discover_sources(folder, engine.labels)
            summary = run_batch(engine, discovery, folder, root / f"local_{name}", options)
            local_seconds[name] = time.perf_counter() - start
            assert summary["succeeded"] == len(discovery.inputs), summary["failures"][:3]

        large = run_driver_process(model, labels, sketches, root / "ray", args.batch_size)
        tenth = run_driver_process(model, labels, small, root / "ray_small", args.batch_size)

    local_rate = args.count / local_seconds["large"]
    ray_rate = large["inputs"] / large["seconds"]
    # The extra sketches of the large run over the small one, per extra second: the rate once
    # the fixed costs (Ray actors starting, each loading the model; the first graph trace) are paid.
    extra = args.count - args.small
    local_marginal = extra / (local_seconds["large"] - local_seconds["small"])
    ray_marginal = extra / (large["seconds"] - tenth["seconds"])
    print(
        f"local batch (in-process): {local_rate:8.1f} sketches/s end to end ({args.count} sketches)"
    )
    print(
        f"Ray batch ({large['actors']} actors, 1 CPU each): {ray_rate:8.1f} sketches/s end to end "
        f"(actor start and model load included)"
    )
    print(f"end-to-end ratio ray / local: {ray_rate / local_rate:.2f}")
    print(
        f"steady state ({extra} extra sketches over {args.small}): local {local_marginal:.1f}/s, "
        f"Ray {ray_marginal:.1f}/s = {ray_marginal / large['actors']:.1f} per actor; "
        f"ratio ray / local {ray_marginal / local_marginal:.2f} (aim >= 0.7)"
    )
    print(
        f"fixed cost of a Ray run: {tenth['seconds'] - args.small / ray_marginal:.1f} s; "
        f"of a local run: {local_seconds['small'] - args.small / local_marginal:.1f} s"
    )
    print(
        f"driver peak RSS: {tenth['peak_rss_mib']:.0f} MiB for {tenth['inputs']} sketches, "
        f"{large['peak_rss_mib']:.0f} MiB for {large['inputs']} "
        f"(ratio {large['peak_rss_mib'] / tenth['peak_rss_mib']:.2f}; flat is 1)"
    )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
