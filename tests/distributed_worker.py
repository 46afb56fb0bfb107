"""Run in a subprocess with KERAS_BACKEND=jax and two simulated CPU devices (XLA_FLAGS).

``python -m tests.distributed_worker step OUT.npz``: one training step of the same model on the
same batch, on one device and data parallel over two; saves both sets of updated weights.
``python -m tests.distributed_worker train|cli DATA_DIR OUTPUT_DIR [BATCH]``: training with
``--distribute`` on the tiny data, through ``train()`` (history saved) or the command line.
``python -m tests.distributed_worker step_and_train OUT.npz DATA_DIR OUTPUT_DIR``: the step, the
training, then the command line with a batch of 7 (which two devices cannot share), in one process
(one JAX start-up for all three); the last writes its exit code and stderr to OUTPUT_DIR/cli.json.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402


def one_step_both_ways(out: Path) -> None:
    """Weights after one SGD step on one device, and after the same step over two devices."""
    import keras

    from src.config import ModelConfig
    from src.models.cnn import build_cnn
    from src.training.distribute import data_parallel

    assert len(keras.distribution.list_devices()) == 2, keras.distribution.list_devices()
    config = ModelConfig(num_classes=3, filters=(4, 8), dense_units=8, dropout=0.0)
    rng = np.random.default_rng(0)
    images = rng.random((8, 64, 64, 1)).astype(np.float32)
    targets = keras.utils.to_categorical(rng.integers(0, 3, 8), 3)

    def step(model: keras.Model, initial: list[np.ndarray]) -> list[np.ndarray]:
        model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="categorical_crossentropy")
        model.train_on_batch(images, targets)
        return [np.asarray(weight) for weight in model.get_weights()]

    keras.utils.set_random_seed(1)
    single_model = build_cnn(config)
    initial = [np.asarray(weight) for weight in single_model.get_weights()]
    single = step(single_model, initial)
    with data_parallel(batch_size=len(images)) as replicas:
        assert replicas == 2
        parallel_model = build_cnn(config)
        parallel = step(parallel_model, initial)
        sharding = parallel_model.trainable_weights[0].value.sharding
    np.savez(
        out,
        initial=np.concatenate([w.ravel() for w in initial]),
        single=np.concatenate([w.ravel() for w in single]),
        parallel=np.concatenate([w.ravel() for w in parallel]),
        devices=len(sharding.device_set),
    )


def main() -> int:
    """Dispatch on the first argument: ``step``, ``train`` (writes history.json), ``cli`` or
    ``step_and_train``."""
    command, rest = sys.argv[1], sys.argv[2:]
    if command in ("step", "step_and_train"):
        one_step_both_ways(Path(rest[0]))
        if command == "step":
            return 0
        status = run_training("train", rest[1:])
        record_odd_batch_cli(Path(rest[1]), Path(rest[2]) / "cli.json")
        return status
    return run_training(command, rest)


def record_odd_batch_cli(data: Path, record: Path) -> None:
    """``train --distribute --batch_size 7`` through the command line's entry point: its exit
    code and everything it wrote to stderr, saved as JSON."""
    import contextlib
    import io
    import json

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        code = run_training("cli", [str(data), str(record.parent / "odd_batch"), "7"])
    record.write_text(json.dumps({"code": code, "stderr": stderr.getvalue()}))


def run_training(command: str, rest: list[str]) -> int:
    """``train`` (through ``train()``, history saved) or ``cli`` on DATA_DIR OUTPUT_DIR [BATCH]."""
    import json

    from src.training.train import build_parser, config_from_args, train
    from src.training.train import main as train_main

    data, output = Path(rest[0]), Path(rest[1])
    arguments = [
        "--strokes_dir", str(data / "strokes"),
        "--classes", "h,v,plus",
        "--output_dir", str(output),
        "--labels_path", str(output / "labels.json"),
        "--epochs", "4",
        "--batch_size", rest[2] if len(rest) > 2 else "8",
        "--learning_rate", "0.01",
        "--workers", "1",
        "--distribute",
    ]  # fmt: skip
    if command == "cli":
        return train_main(arguments)
    from src.training import train as train_module

    fit = train_module.fit_model
    replicated_on: list[int] = []

    def spying_fit(model, *args, **kwargs):  # type: ignore[no-untyped-def]
        """Records how many devices hold the model's first weight when fit starts."""
        replicated_on.append(len(model.trainable_weights[0].value.sharding.device_set))
        return fit(model, *args, **kwargs)

    train_module.fit_model = spying_fit
    result = train(config_from_args(build_parser().parse_args(arguments)))
    (output / "history.json").write_text(
        json.dumps({"history": result.history, "replicated_on": replicated_on})
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
