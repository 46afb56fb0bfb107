"""``python -m src.training.train --distribute``: data parallel over two simulated CPU devices.

JAX reads XLA_FLAGS when it starts, so each check runs in a subprocess
(``tests/distributed_worker.py``) with ``--xla_force_host_platform_device_count=2``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.config import ModelConfig, TrainConfig

pytest.importorskip("jax")
pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parent.parent


def run_worker(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "KERAS_BACKEND": "jax",
        # Two simulated devices; XLA's backend optimisation off, since the checks compare
        # steps compiled alike and compiling a model's steps dominates this module's time.
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2 --xla_backend_optimization_level=0",
        "JAX_PLATFORMS": "cpu",
    }
    return subprocess.run(
        [sys.executable, "-m", "tests.distributed_worker", *map(str, arguments)],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def step_and_training(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One worker (one JAX start-up) for the single step, the training run and the command
    line's refusal of a batch the devices cannot share."""
    folder = tmp_path_factory.mktemp("distributed")
    completed = run_worker("step_and_train", folder / "weights.npz", tiny_data, folder / "out")
    assert completed.returncode == 0, completed.stderr[-3000:]
    return folder


def test_one_step_over_two_devices_equals_the_single_device_step(step_and_training: Path) -> None:
    weights = np.load(step_and_training / "weights.npz")
    assert int(weights["devices"]) == 2  # the variables really were replicated on both
    moved = np.abs(weights["single"] - weights["initial"]).max()
    assert moved > 1e-3, "the step did not change the weights: the comparison would be empty"
    np.testing.assert_allclose(weights["parallel"], weights["single"], atol=1e-5)


def test_distributed_training_run_lowers_the_loss(step_and_training: Path) -> None:
    output = step_and_training / "out"
    card = json.loads((output / "model_card.json").read_text())
    assert card["training"]["devices"] == 2
    record = json.loads((output / "history.json").read_text())
    assert record["replicated_on"] == [2]
    losses = record["history"]["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
    assert (output / "best_model.h5").is_file()


def test_a_batch_the_devices_cannot_share_is_one_clear_error(step_and_training: Path) -> None:
    record = json.loads((step_and_training / "out" / "cli.json").read_text())
    assert record["code"] == 2
    assert record["stderr"].strip().splitlines()[-1] == (
        "train: error: --batch_size 7 does not split across 2 devices; use a multiple of 2 "
        "such as 6 or 8"
    )
    assert "Traceback" not in record["stderr"]


def test_distribute_on_another_backend_names_the_fix(tiny_data: Path, tmp_path: Path) -> None:
    from src.training.train import train

    config = TrainConfig(
        strokes_dir=tiny_data / "strokes",
        classes=("h", "v", "plus"),
        output_dir=tmp_path / "out",
        labels_path=tmp_path / "labels.json",
        distribute=True,
        model=ModelConfig(filters=(4, 8), dense_units=8),
    )
    import keras

    assert keras.backend.backend() != "jax"
    with pytest.raises(ValueError, match="--distribute needs the JAX backend.*KERAS_BACKEND=jax"):
        train(config)
    assert not (tmp_path / "out").exists()
