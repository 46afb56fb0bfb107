"""The same maps on every Keras backend, and against a hand-written oracle.

The zoo (tests/backend_zoo.py: Functional, Sequential, nested, legacy .h5, softmax as an
Activation, Dense(softmax), BatchNorm, Dropout) and the shipped model are explained here on
the test process's backend (TensorFlow by default), and in a subprocess per other installed
backend (KERAS_BACKEND=jax, =torch); every method's maps must agree to 1e-4. JAX is a dev
dependency, so it always runs; PyTorch runs where it is installed (the ``torch`` extra). The
oracle checks this process's maps and JAX's (from the same one JAX subprocess) by hand.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.backend_worker import FIXED_CLASS, explain_everything
from tests.backend_zoo import BUILDERS, save_zoo, zoo_images

ROOT = Path(__file__).resolve().parents[1]
AGREEMENT = 1e-4  # max abs difference between normalised [0, 1] maps, or probabilities


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The saved zoo, its images, and every map computed on this process's backend."""
    from src.data.preprocess import strokes_to_model_input
    from tests.conftest import draw_circle_strokes, draw_line_strokes, draw_square_strokes

    directory = tmp_path_factory.mktemp("zoo")
    paths = save_zoo(directory)
    images = {
        "zoo": zoo_images(),
        "shipped": np.stack(
            [
                strokes_to_model_input(draw())
                for draw in (draw_circle_strokes, draw_line_strokes, draw_square_strokes)
            ]
        ),
    }
    np.savez(directory / "images.npz", **images)
    return {
        "directory": directory,
        "paths": paths,
        "images": images,
        "maps": explain_everything(directory, images),
    }


def bilinear(maps: np.ndarray, size: int) -> np.ndarray:
    """(h, w) -> (size, size), half-pixel centres, edges clamped; written out per pixel."""
    height, width = maps.shape
    result = np.zeros((size, size))
    for row in range(size):
        for col in range(size):
            y = min(max((row + 0.5) * height / size - 0.5, 0.0), height - 1)
            x = min(max((col + 0.5) * width / size - 0.5, 0.0), width - 1)
            y0, x0 = int(np.floor(y)), int(np.floor(x))
            y1, x1 = min(y0 + 1, height - 1), min(x0 + 1, width - 1)
            fy, fx = y - y0, x - x0
            top = maps[y0, x0] * (1 - fx) + maps[y0, x1] * fx
            bottom = maps[y1, x0] * (1 - fx) + maps[y1, x1] * fx
            result[row, col] = top * (1 - fy) + bottom * fy
    return result


def other_backends() -> list[str]:
    """The installed Keras backends other than this process's."""
    import keras

    installed = [
        backend
        for backend, module in (("tensorflow", "tensorflow"), ("jax", "jax"), ("torch", "torch"))
        if importlib.util.find_spec(module) is not None
    ]
    return [backend for backend in installed if backend != keras.backend.backend()]


# This process's backend computes the reference maps; every other one is compared with it.
REFERENCE_BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")


# The oracle runs on this process's backend and on JAX (a dev dependency) in one pytest run;
# JAX's maps come from the subprocess the agreement test below compares, started once.
ORACLE_BACKENDS = [
    pytest.param(backend, marks=[] if backend == REFERENCE_BACKEND else [pytest.mark.slow])
    for backend in dict.fromkeys([REFERENCE_BACKEND, "jax"])
]


@pytest.fixture(scope="module")
def maps_on(
    zoo: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[str], dict[str, np.ndarray]]:
    """backend -> every map of the zoo on it: this process's, or one subprocess's per backend."""
    computed = {REFERENCE_BACKEND: zoo["maps"]}

    def maps(backend: str) -> dict[str, np.ndarray]:
        if backend not in computed:
            computed[backend] = run_backend_worker(zoo, backend, tmp_path_factory.mktemp(backend))
        return computed[backend]

    return maps


def run_backend_worker(zoo: dict[str, Any], backend: str, directory: Path) -> dict[str, np.ndarray]:
    """tests/backend_worker.py with KERAS_BACKEND=backend: the zoo's maps on that backend."""
    if backend not in other_backends():
        pytest.skip(f"{backend} is not installed (pip install -e '.[{backend}]')")
    output = directory / f"{backend}.npz"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.backend_worker",
            str(zoo["directory"]),
            str(zoo["directory"] / "images.npz"),
            str(output),
        ],
        cwd=ROOT,
        env={**os.environ, "KERAS_BACKEND": backend},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.strip().splitlines()[-1] == backend
    return dict(np.load(output))


@pytest.mark.parametrize("backend", ORACLE_BACKENDS)
@pytest.mark.parametrize("name", [*BUILDERS, "legacy_h5"])
def test_gradcam_equals_the_oracle(
    zoo: dict[str, Any], maps_on: Callable[[str], dict[str, np.ndarray]], name: str, backend: str
) -> None:
    """Grad-CAM and HiResCAM of a fixed class equal a hand computation, on each backend.

    Every zoo model ends target -> global average pool -> (Dropout) -> Dense, so the gradient
    of logit c is W[k, c] / (h w) at every position; both maps are then A @ W[:, c], whatever
    the softmax's form. Activations come from Keras' own forward of the target layer.
    """
    import keras

    from src.visualization.gradcam import load_model_for_gradcam

    maps = maps_on(backend)
    model = load_model_for_gradcam(zoo["paths"][name])
    network = model.layers[-1] if name == "nested" else model
    dense = [layer for layer in network.layers if type(layer).__name__ == "Dense"][-1]
    probe = keras.Model(network.inputs, network.get_layer("target").output)
    activations = np.asarray(probe.predict(zoo["images"]["zoo"], verbose=0), np.float64)
    kernel = dense.get_weights()[0].astype(np.float64)
    lit = 0
    for index, activation in enumerate(activations):
        raw = np.maximum(activation @ kernel[:, FIXED_CLASS], 0.0)
        upsampled = bilinear(raw, activation.shape[0])
        expected = upsampled / upsampled.max() if upsampled.max() > 0 else upsampled
        lit += int(expected.max() > 0)
        for method in ("gradcam", "hirescam"):
            heatmap = maps[f"{name}/{method}/class"][index]
            assert np.abs(heatmap - expected).max() <= AGREEMENT, (backend, name, method, index)
    assert lit >= 2, "the zoo's images must light up the class's map (not all-zero maps)"


@pytest.mark.parametrize(
    "backend", [name for name in ("tensorflow", "jax", "torch") if name != REFERENCE_BACKEND]
)
@pytest.mark.slow
def test_every_backend_gives_the_same_maps(
    zoo: dict[str, Any], maps_on: Callable[[str], dict[str, np.ndarray]], backend: str
) -> None:
    """Each other backend, in its own process, reproduces every map and probability."""
    theirs = maps_on(backend)
    assert sorted(theirs) == sorted(zoo["maps"])
    differences = {
        key: float(np.abs(theirs[key] - ours).max()) for key, ours in zoo["maps"].items()
    }
    worst = max(differences, key=differences.__getitem__)
    assert differences[worst] <= AGREEMENT, f"{worst}: {differences[worst]:.2e}"
