"""Forward throughput of build_cnn vs build_reference_cnn at batch 256, measured in one run.

Usage (from the repository root): ``python -m bench.model_throughput [--batch_size 256]``. Prints images per
second for both models and their ratio (the project requires build_cnn >= 2x the reference).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def measure(model, batch: np.ndarray, repeats: int) -> float:  # type: ignore[no-untyped-def]
    """Images per second of ``model.predict_on_batch`` (after two warm-up calls), best of runs."""
    for _ in range(2):
        model.predict_on_batch(batch)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        model.predict_on_batch(batch)
        best = min(best, time.perf_counter() - start)
    return len(batch) / best


def main(argv: list[str] | None = None) -> int:
    """Build both models, time them alternately, print throughputs and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--num_classes", "--num-classes", type=int, default=24)
    parser.add_argument("--filters", default="", help="e.g. 48,96,192 (default: ModelConfig's)")
    args = parser.parse_args(argv)
    from src.config import ModelConfig
    from src.models.cnn import build_cnn, build_reference_cnn

    batch = np.random.default_rng(0).random((args.batch_size, 64, 64, 1), dtype=np.float32)
    config = ModelConfig(num_classes=args.num_classes)
    if args.filters:
        filters = tuple(int(value) for value in args.filters.split(","))
        config = ModelConfig(num_classes=args.num_classes, filters=filters)
    ours = build_cnn(config)
    reference = build_reference_cnn(args.num_classes)
    ours_rate = measure(ours, batch, args.repeats)
    reference_rate = measure(reference, batch, args.repeats)
    print(f"build_cnn:           {ours_rate:9.0f} images/s ({ours.count_params():,} params)")
    print(
        f"build_reference_cnn: {reference_rate:9.0f} images/s ({reference.count_params():,} params)"
    )
    print(f"ratio: {ours_rate / reference_rate:.2f}x (batch {args.batch_size})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
