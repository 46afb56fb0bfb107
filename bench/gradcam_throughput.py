"""Grad-CAM engine throughput against a forward pass, a naive loop and tf-keras-vis, in one run.

Usage (from the repository root): ``python -m bench.gradcam_throughput [--batch_size 256]``.

Prints images per second and these ratios (targets in brackets; printed, not asserted):
    engine / forward          the compiled engine vs a ``tf.function`` forward pass   [>= 0.9]
    engine / naive loop       vs a per-image ``tf.GradientTape`` loop                 [>= 15]
    engine / tf-keras-vis     vs ``tf_keras_vis.gradcam.Gradcam`` when installed      [>= 5]
and the batch-1 latency of the engine vs ``model.predict``.

The model is ``models/best_model.h5`` when present, else a freshly built ``build_cnn`` with 24
classes (same architecture and cost, random weights).
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


def best_seconds(
    functions: dict[str, Callable[[], Any]], rounds: int, warmups: int = 2
) -> dict[str, float]:
    """Fastest wall time of each function, timed in interleaved rounds after untimed warm-ups.

    Interleaving means a burst of load from other processes hits every contender alike, so the
    ratios stay meaningful on a shared machine.
    """
    for function in functions.values():
        for _ in range(warmups):
            function()
    best = dict.fromkeys(functions, float("inf"))
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def load_bench_model(num_classes: int) -> tuple[Any, str]:
    """The shipped model when present, else a freshly built build_cnn (and a note saying so)."""
    if os.path.isfile(SHIPPED_MODEL):
        from src.visualization.gradcam import load_model_for_gradcam

        return load_model_for_gradcam(SHIPPED_MODEL), SHIPPED_MODEL
    from src.config import ModelConfig
    from src.models.cnn import build_cnn

    model = build_cnn(ModelConfig(num_classes=num_classes))
    note = (
        f"{SHIPPED_MODEL} not found: freshly built build_cnn({num_classes} classes), random weights"
    )
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


def main(argv: list[str] | None = None) -> int:
    """Time every contender on one batch in one process and print the ratios."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch_size", "--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--naive_images", "--naive-images", type=int, default=64)
    parser.add_argument("--num_classes", "--num-classes", type=int, default=24)
    args = parser.parse_args(argv)
    import tensorflow as tf

    from src.visualization.gradcam import GradCAM
    from src.visualization.target_layers import resolve_score_source

    model, note = load_bench_model(args.num_classes)
    print(f"model: {note} ({model.count_params():,} params)")
    batch = np.random.default_rng(0).random((args.batch_size, *model.input_shape[1:]), np.float32)
    engine = GradCAM(model)
    print(f"target layer: {engine.layer_name}, device: {tf.config.list_logical_devices()[-1].name}")
    forward = tf.function(lambda images: model(images, training=False))
    seconds = best_seconds(
        {"forward": lambda: forward(batch).numpy(), "engine": lambda: engine.explain(batch)},
        args.repeats,
    )
    forward_rate, engine_rate = (len(batch) / seconds[name] for name in ("forward", "engine"))
    print(f"forward (tf.function): {forward_rate:9.0f} images/s")
    print(f"engine explain():      {engine_rate:9.0f} images/s")
    print(f"engine / forward:      {engine_rate / forward_rate:6.2f}  (target >= 0.9)")

    logits_name = resolve_score_source(model).layer.name
    naive = naive_gradcam(model, engine.layer_name, logits_name)
    subset = batch[: args.naive_images]
    seconds = best_seconds(
        {"naive": lambda: naive(subset), "engine": lambda: engine.explain(subset)}, 1, warmups=1
    )
    naive_rate = len(subset) / seconds["naive"]
    print(f"naive tape loop:       {naive_rate:9.0f} images/s ({len(subset)} images)")
    ratio = (len(subset) / seconds["engine"]) / naive_rate
    print(f"engine / naive loop:   {ratio:6.2f}  (target >= 15; both on {len(subset)} images)")

    vis, status = tf_keras_vis_gradcam(model, engine.layer_name)
    if vis is None:
        print(f"tf-keras-vis Gradcam:  skipped, {status}")
    else:
        classes = engine.explain(batch).class_indices.tolist()
        seconds = best_seconds(
            {"vis": lambda: vis(batch, classes), "engine": lambda: engine.explain(batch)},
            2,
            warmups=1,
        )
        vis_rate = len(batch) / seconds["vis"]
        print(f"tf-keras-vis Gradcam:  {vis_rate:9.0f} images/s (ReplaceToLinear on a clone)")
        ratio = seconds["vis"] / seconds["engine"]
        print(f"engine / tf-keras-vis: {ratio:6.2f}  (target >= 5)")

    one = batch[:1]
    milliseconds = {
        name: 1000 * value
        for name, value in best_seconds(
            {
                "engine": lambda: engine.explain(one),
                "predict": lambda: model.predict(one, verbose=0),
                "forward": lambda: forward(one).numpy(),
            },
            args.repeats * 4,
        ).items()
    }
    print(
        f"batch-1 latency: engine {milliseconds['engine']:.1f} ms, model.predict "
        f"{milliseconds['predict']:.1f} ms, tf.function forward {milliseconds['forward']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
