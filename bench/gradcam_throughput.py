"""Grad-CAM engine throughput on every installed Keras backend, against each backend's own
compiled forward pass, plus TensorFlow's naive loop and tf-keras-vis, in one table.

Usage (from the repository root): ``python -m bench.gradcam_throughput [--batch_size 256]``.

Each backend (tensorflow, jax, torch when installed) runs in its own process, since Keras fixes
its backend at import. One row per backend: forward images/s (the backend's compiled forward:
``tf.function``, ``jax.jit`` of ``stateless_call``, torch without autograd) and engine images/s
(``GradCAM.explain``), each at its median over ``--repeats`` interleaved rounds; engine /
forward [target >= 0.9], the median over rounds of that round's ratio; and batch-1 latency
(fastest). Then, on TensorFlow in the same process as its row: a per-image
``tf.GradientTape`` loop [engine / naive >= 15] and ``tf_keras_vis.gradcam.Gradcam`` when
installed [engine / vis >= 5].
Targets are printed, not asserted.

The model is ``--model PATH`` when given (any Keras sketch model, e.g. a 28x28 one), else
``models/best_model.h5`` when present and ``--image_size`` is not given, else a freshly built
``build_cnn`` with 24 classes at ``--image_size`` (default 64: same architecture and cost as the
shipped model, random weights). ``--image_size 28`` measures a Google-bitmap-sized model.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

SHIPPED_MODEL = "models/best_model.h5"


def round_seconds(
    functions: dict[str, Callable[[], Any]], rounds: int, warmups: int = 2
) -> dict[str, list[float]]:
    """Each function's wall time in every one of ``rounds`` interleaved rounds, after untimed
    warm-ups.

    Interleaving means a burst of load from other processes hits every contender alike, so the
    ratios stay meaningful on a shared machine.
    """
    for function in functions.values():
        for _ in range(warmups):
            function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def best_seconds(
    functions: dict[str, Callable[[], Any]], rounds: int, warmups: int = 2
) -> dict[str, float]:
    """Fastest wall time of each function over interleaved rounds (``round_seconds``)."""
    return {name: min(times) for name, times in round_seconds(functions, rounds, warmups).items()}


def load_bench_model(
    num_classes: int, model_path: str | None = None, image_size: int | None = None
) -> tuple[Any, str]:
    """``model_path``, else the shipped model when present (and no ``image_size`` asked), else
    a freshly built build_cnn at ``image_size`` (and a note saying which)."""
    from src.visualization.gradcam import load_model_for_gradcam

    if model_path is not None:
        return load_model_for_gradcam(model_path), model_path
    if image_size is None and os.path.isfile(SHIPPED_MODEL):
        return load_model_for_gradcam(SHIPPED_MODEL), SHIPPED_MODEL
    from src.config import ModelConfig
    from src.models.cnn import build_cnn

    side = image_size or 64
    model = build_cnn(ModelConfig(num_classes=num_classes, image_size=side))
    note = f"freshly built build_cnn({num_classes} classes, {side}x{side}), random weights"
    return model, note


def naive_gradcam(model: Any, layer_name: str, logits_name: str) -> Callable[[np.ndarray], Any]:
    """The textbook loop: one GradientTape per image, numpy formula, upsampled per image."""
    import keras
    import tensorflow as tf

    grad_model = keras.Model(
        model.inputs, [model.get_layer(layer_name).output, model.get_layer(logits_name).output]
    )

    def run(images: np.ndarray) -> list[np.ndarray]:
        heatmaps = []
        for image in images:
            with tf.GradientTape() as tape:
                activations, logits = grad_model([image[np.newaxis]], training=False)
                class_score = logits[0, int(tf.argmax(logits[0]))]
            gradients = tape.gradient(class_score, activations).numpy()[0]
            weights = gradients.mean(axis=(0, 1))
            cam = np.maximum(activations.numpy()[0] @ weights, 0.0)
            cam = tf.image.resize(cam[..., np.newaxis], images.shape[1:3]).numpy()[..., 0]
            heatmaps.append(cam / (cam.max() + 1e-8))
        return heatmaps

    return run


def tf_keras_vis_gradcam(model: Any, layer_name: str) -> tuple[Callable[..., Any] | None, str]:
    """tf-keras-vis Gradcam with ReplaceToLinear (its recommended setup), or None and why not."""
    try:
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.utils.model_modifiers import ReplaceToLinear
        from tf_keras_vis.utils.scores import CategoricalScore
    except ImportError as error:
        return None, f"not installed ({error}); pip install -e '.[bench]'"
    try:
        explainer = Gradcam(model, model_modifier=ReplaceToLinear(), clone=True)
        probe = np.zeros((1, *model.input_shape[1:]), np.float32)
        explainer(CategoricalScore([0]), probe, penultimate_layer=layer_name)
    except Exception as error:  # noqa: BLE001 - a third-party library failing on Keras 3 is reported
        return None, f"cannot run with this Keras ({type(error).__name__}: {str(error)[:160]})"

    def run(images: np.ndarray, classes: list[int]) -> Any:
        return explainer(CategoricalScore(classes), images, penultimate_layer=layer_name)

    return run, "ok"


BACKENDS = ("tensorflow", "jax", "torch")


def measure_backend(args: argparse.Namespace) -> dict[str, Any]:
    """This process's backend: forward and engine rates, batch-1 latency; on TensorFlow also
    the naive loop and tf-keras-vis. Returned as one JSON-ready dict."""
    import keras

    from src.models.forward import compile_forward
    from src.visualization.gradcam import GradCAM

    model, note = load_bench_model(args.num_classes, args.model, args.image_size)
    batch = np.random.default_rng(0).random((args.batch_size, *model.input_shape[1:]), np.float32)
    engine = GradCAM(model)
    forward = compile_forward(model)
    row: dict[str, Any] = {
        "backend": keras.backend.backend(),
        "model": note,
        "layer": engine.layer_name,
        "batch": len(batch),
    }
    # Medians, and the ratio taken within each round: the two run back to back, so a burst of
    # load hits both, while a best-of over each alone pairs two unrelated lucky rounds.
    times = round_seconds(
        {"forward": lambda: forward(batch), "engine": lambda: engine.explain(batch)},
        args.repeats,
    )
    row["forward"] = len(batch) / float(np.median(times["forward"]))
    row["engine"] = len(batch) / float(np.median(times["engine"]))
    row["engine_over_forward"] = float(
        np.median(np.asarray(times["forward"]) / np.asarray(times["engine"]))
    )
    one = batch[:1]
    latency = best_seconds(
        {"engine": lambda: engine.explain(one), "forward": lambda: forward(one)},
        args.repeats * 4,
    )
    row["engine_ms"] = 1000 * latency["engine"]
    row["forward_ms"] = 1000 * latency["forward"]
    if row["backend"] == "tensorflow":
        row.update(tensorflow_baselines(model, engine, batch, args))
    return row


def tensorflow_baselines(
    model: Any, engine: Any, batch: np.ndarray, args: argparse.Namespace
) -> dict[str, Any]:
    """The naive per-image tape loop and tf-keras-vis, each timed against the engine."""
    from src.visualization.target_layers import resolve_score_source

    found: dict[str, Any] = {}
    logits_name = resolve_score_source(model).layer.name
    naive = naive_gradcam(model, engine.layer_name, logits_name)
    subset = batch[: args.naive_images]
    seconds = best_seconds(
        {"naive": lambda: naive(subset), "engine": lambda: engine.explain(subset)}, 1, warmups=1
    )
    found["naive"] = len(subset) / seconds["naive"]
    found["naive_engine"] = len(subset) / seconds["engine"]
    found["naive_images"] = len(subset)
    vis, status = tf_keras_vis_gradcam(model, engine.layer_name)
    found["vis_status"] = status
    if vis is not None:
        classes = engine.explain(batch).class_indices.tolist()
        seconds = best_seconds(
            {"vis": lambda: vis(batch, classes), "engine": lambda: engine.explain(batch)},
            2,
            warmups=1,
        )
        found["vis"] = len(batch) / seconds["vis"]
        found["vis_engine"] = len(batch) / seconds["engine"]
    return found


def run_backend(backend: str, argv: list[str]) -> dict[str, Any] | str:
    """One backend's row from a subprocess, or why it could not run."""
    import importlib.util
    import json
    import subprocess
    import sys

    if importlib.util.find_spec(backend) is None:
        return f"not installed (pip install -e '.[{backend}]')"
    completed = subprocess.run(
        [sys.executable, "-m", "bench.gradcam_throughput", "--row", *argv],
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return f"failed: {completed.stderr.strip().splitlines()[-1:]}"
    return json.loads(lines[-1])  # type: ignore[no-any-return]


def print_table(rows: dict[str, dict[str, Any] | str]) -> None:
    """One row per backend, then the TensorFlow-only baselines."""
    first = next((row for row in rows.values() if isinstance(row, dict)), None)
    if first is not None:
        print(f"model: {first['model']}, layer {first['layer']}, batch {first['batch']}")
    print(
        f"{'backend':<11} {'forward img/s':>14} {'engine img/s':>13} {'engine/forward':>15} "
        f"{'batch-1 engine ms':>18} {'batch-1 forward ms':>19}"
    )
    for backend, row in rows.items():
        if isinstance(row, str):
            print(f"{backend:<11} {row}")
            continue
        print(
            f"{backend:<11} {row['forward']:14.0f} {row['engine']:13.0f} "
            f"{row['engine_over_forward']:15.2f} {row['engine_ms']:18.1f} "
            f"{row['forward_ms']:19.1f}"
        )
    print("(target: engine/forward >= 0.9 on each backend)")
    tensorflow = rows.get("tensorflow")
    if isinstance(tensorflow, dict):
        ratio = tensorflow["naive_engine"] / tensorflow["naive"]
        print(
            f"{'naive loop':<11} {'':14} {tensorflow['naive']:13.0f}   engine / naive "
            f"{ratio:.1f} (target >= 15; TensorFlow, {tensorflow['naive_images']} images)"
        )
        if "vis" in tensorflow:
            ratio = tensorflow["vis_engine"] / tensorflow["vis"]
            print(
                f"{'tf-keras-vis':<11} {'':14} {tensorflow['vis']:13.0f}   engine / vis "
                f"{ratio:.1f} (target >= 5; ReplaceToLinear on a clone)"
            )
        else:
            print(f"{'tf-keras-vis':<11} skipped, {tensorflow['vis_status']}")


def main(argv: list[str] | None = None) -> int:
    """Run every installed backend in its own process and print one table."""
    import json
    import sys

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive_images", "--naive-images", type=int, default=64)
    parser.add_argument("--num_classes", "--num-classes", type=int, default=24)
    parser.add_argument("--model", default=None, help="a Keras model file to measure")
    parser.add_argument(
        "--image_size",
        "--image-size",
        type=int,
        default=None,
        help="build the bench CNN at this side (e.g. 28) instead of using the shipped model",
    )
    parser.add_argument("--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS)
    parser.add_argument("--row", action="store_true", help=argparse.SUPPRESS)
    arguments = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(arguments)
    if args.row:
        print(json.dumps(measure_backend(args)))
        return 0
    passed = [
        argument
        for argument in arguments
        if argument not in args.backends and not argument.startswith("--backends")
    ]
    print_table({backend: run_backend(backend, passed) for backend in args.backends})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
