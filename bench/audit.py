"""Time the invariance audit (rendering + both input paths + Grad-CAM) on 24 classes x 40 drawings.

Usage (from the repository root): ``python -m bench.audit [--per_class 40] [--strokes_dir DIR]``.

Prints the audit's seconds (target: under 120 s on 2 cores), and its ratio against a baseline
measured in the same run: the engine's plain ``explain`` on as many images as the audit feeds it
(the rate measured on random inputs, times the audit's image count). A ratio near 1 means
rendering and preprocessing hide behind the engine; above 1 is the price of rendering.

Drawings: the first ``--per_class`` of each class of ``data/label_mapping.json`` in
``--strokes_dir`` (repeated when a class has fewer), else random polylines of 3-8 strokes.
"""

from __future__ import annotations

import argparse
import os
import time
from itertools import islice
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from bench.gradcam_throughput import best_seconds, load_bench_model  # noqa: E402

DEFAULT_STROKES_DIR = Path("../shared/data/quickdraw")


def bench_drawings(strokes_dir: Path, class_names: tuple[str, ...], per_class: int) -> tuple:
    """(labels, strokes, where from): real drawings when the folder has them, else random ones."""
    from src.audit.factors import drawing_points
    from src.data.quickdraw import read_ndjson

    labels, strokes = [], []
    rng = np.random.default_rng(0)
    real = 0
    for index, name in enumerate(class_names):
        file = strokes_dir / f"{name}.ndjson"
        found = [d.strokes for d in islice(read_ndjson(file), per_class)] if file.is_file() else []
        real += bool(found)
        for number in range(per_class):
            if found:
                drawing = found[number % len(found)]
            else:
                drawing = [
                    rng.integers(0, 256, (2, int(rng.integers(2, 12)))).tolist()
                    for _ in range(int(rng.integers(3, 9)))
                ]
            labels.append(index)
            strokes.append(drawing_points(drawing))
    source = f"{real} of {len(class_names)} classes from {strokes_dir}"
    if real < len(class_names):
        source += ", the others random polylines"
    return np.asarray(labels, np.int64), strokes, source


def main(argv: list[str] | None = None) -> int:
    """Run the audit once, time it, and compare with the engine's explain rate."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--per_class", "--per-class", dest="per_class", type=int, default=40)
    parser.add_argument("--strokes_dir", "--strokes-dir", type=Path, default=DEFAULT_STROKES_DIR)
    parser.add_argument("--labels", type=Path, default=Path("data/label_mapping.json"))
    args = parser.parse_args(argv)

    from src.audit.factors import FACTORS, REFERENCE
    from src.audit.run import PATHS, AuditData, run_audit
    from src.data.labels import LabelMap
    from src.visualization.gradcam import GradCAM

    class_names = LabelMap.load(args.labels).class_names
    labels, strokes, source = bench_drawings(args.strokes_dir, class_names, args.per_class)
    data = AuditData(labels, strokes, {})
    model, note = load_bench_model(len(class_names))
    engine = GradCAM(model)
    print(f"model: {note}; drawings: {len(labels)} ({source})")
    levels = len({REFERENCE, *(level.spec for factor in FACTORS for level in factor.levels)})
    images = len(labels) * levels * len(PATHS)

    batch = np.random.default_rng(0).random((256, *model.input_shape[1:]), np.float32)
    engine.explain(batch[:8], np.zeros(8, np.int64))  # compile outside the timings
    start = time.perf_counter()
    report = run_audit(engine, data, class_names)
    audit_seconds = time.perf_counter() - start
    classes = np.zeros(len(batch), np.int64)
    explain_seconds = best_seconds({"explain": lambda: engine.explain(batch, classes)}, 3)
    baseline = explain_seconds["explain"] / len(batch) * images
    print(f"levels: {levels} distinct renderings x {len(PATHS)} paths = {images} images")
    print(
        f"audit: {audit_seconds:.1f} s (target < 120 s on 2 cores); "
        f"explaining {report['seconds']['explaining']:.1f} s, "
        f"waiting for renderings {report['seconds']['rendering_waited']:.1f} s"
    )
    print(f"plain explain() of {images} images: {baseline:.1f} s (rate measured in this run)")
    print(f"audit / plain explain: {audit_seconds / baseline:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
