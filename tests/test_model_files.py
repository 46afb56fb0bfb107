"""Bad model files: every entry point refuses them with one clear message, never a traceback.

Entry points: the Python API (``load_model_for_gradcam``, ``Predictor.from_files``), the CLI
(``main([...])``), ``predict.py`` and the web app (``python -m src.web`` and ``create_app``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from src.config import PROJECT_ROOT
from src.errors import ModelLoadError
from src.utils.exit_status import ExitStatus

# (file name, what the message must say). Filled by the ``bad_models`` fixture.
UNLOADABLE = [
    ("random_bytes.h5", "not a valid Keras model file"),
    ("text_renamed.h5", "not a valid Keras model file"),
    ("empty.h5", "not a valid Keras model file"),
    ("truncated.h5", "truncated"),
    ("hdf5_without_model.h5", "not a loadable Keras model"),
    ("text_renamed.keras", "a .keras file is a zip archive and this one is not"),
    ("random_bytes.keras", "a .keras file is a zip archive and this one is not"),
    ("lambda.h5", "Lambda layer, which can run arbitrary code"),
    ("lambda.keras", "Lambda layer, which can run arbitrary code"),
]
# Any side from 16 to 512 with 1 or 3 channels is a sketch model SketchCAM feeds; these are not.
WRONG_SHAPE = [
    ("gray_8x8.h5", r"\(None, 8, 8, 1\)"),
    ("two_channel_64x64.h5", r"\(None, 64, 64, 2\)"),
]
ALL_BAD = UNLOADABLE + WRONG_SHAPE


def _small_model(shape: tuple[int, int, int], with_lambda: bool = False):  # type: ignore[no-untyped-def]
    """A 3-class conv model (matching the fixture labels) with the given input shape."""
    import keras
    from keras import layers

    inputs = keras.Input(shape, name="sketch")
    x = layers.Lambda(lambda tensor: tensor * 2.0, name="double")(inputs) if with_lambda else inputs
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    logits = layers.Dense(3, name="logits")(x)
    outputs = layers.Activation("softmax", name="predictions")(logits)
    return keras.Model(inputs, outputs)


@pytest.fixture(scope="module")
def bad_models(tmp_path_factory: pytest.TempPathFactory, sketch_model_path: Path) -> Path:
    """A folder holding every file named in ``ALL_BAD``."""
    import h5py

    folder = tmp_path_factory.mktemp("bad_models")
    rng = np.random.default_rng(7)
    (folder / "random_bytes.h5").write_bytes(rng.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    (folder / "text_renamed.h5").write_text("I am a shopping list, not a model\n")
    (folder / "random_bytes.keras").write_bytes(
        rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    )
    (folder / "text_renamed.keras").write_text("I am a shopping list, not a model\n")
    (folder / "empty.h5").write_bytes(b"")
    good = sketch_model_path.read_bytes()
    (folder / "truncated.h5").write_bytes(good[: len(good) * 2 // 3])
    with h5py.File(folder / "hdf5_without_model.h5", "w") as file:
        file["weights"] = np.arange(10.0)
    lambda_model = _small_model((64, 64, 1), with_lambda=True)
    lambda_model.save(folder / "lambda.h5")
    lambda_model.save(folder / "lambda.keras")
    _small_model((8, 8, 1)).save(folder / "gray_8x8.h5")
    _small_model((64, 64, 2)).save(folder / "two_channel_64x64.h5")
    return folder


@pytest.fixture(scope="module")
def sketch_png(sketch_model_dir: Path) -> Path:
    return sketch_model_dir / "sketches" / "square" / "0.png"


def assert_one_line(stderr: str, *words: str) -> str:
    """stderr holds exactly one non-empty line, and it contains every word."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one stderr line, got {lines!r}"
    assert "Traceback" not in stderr
    for word in words:
        assert word in lines[0], f"{word!r} missing from {lines[0]!r}"
    return lines[0]


# --- Python API --------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), UNLOADABLE)
def test_load_model_for_gradcam_refuses(bad_models: Path, name: str, message: str) -> None:
    from src.visualization.gradcam import load_model_for_gradcam

    with pytest.raises(ModelLoadError, match=message) as caught:
        load_model_for_gradcam(bad_models / name)
    assert name in str(caught.value)  # the message names the file


def test_lambda_loads_only_when_safe_mode_is_off(bad_models: Path) -> None:
    from src.visualization.gradcam import load_model_for_gradcam

    with pytest.raises(ModelLoadError, match="safe_mode=False if you trust the file"):
        load_model_for_gradcam(bad_models / "lambda.keras")
    # .keras files keep the lambda's code; a trusted caller can opt in.
    model = load_model_for_gradcam(bad_models / "lambda.keras", safe_mode=False)
    assert any(layer.name == "double" for layer in model.layers)


@pytest.mark.parametrize(("name", "message"), ALL_BAD)
def test_predictor_from_files_refuses(
    bad_models: Path, sketch_labels_path: Path, name: str, message: str
) -> None:
    from src.inference.predictor import Predictor

    with pytest.raises(ModelLoadError, match=message):
        Predictor.from_files(bad_models / name, sketch_labels_path)


@pytest.mark.parametrize(("name", "shape"), WRONG_SHAPE)
def test_wrong_shape_message_says_what_is_expected(
    bad_models: Path, sketch_labels_path: Path, name: str, shape: str
) -> None:
    from src.inference.predictor import Predictor

    with pytest.raises(
        ModelLoadError, match=shape + r".*(16x16 to 512x512 pixels|1 or 3 channels)"
    ):
        Predictor.from_files(bad_models / name, sketch_labels_path)


# --- CLI and predict.py ------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), ALL_BAD)
def test_cli_single_exits_with_model_error(
    bad_models: Path,
    sketch_labels_path: Path,
    sketch_png: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    message: str,
) -> None:
    from src.cli.gradcam_analysis import main

    output = tmp_path / "out"
    status = main(
        [
            "--model", str(bad_models / name),
            "--labels", str(sketch_labels_path),
            "--output", str(output),
            "single", "--image", str(sketch_png),
        ]
    )  # fmt: skip
    captured = capsys.readouterr()
    assert status == ExitStatus.MODEL_ERROR
    line = assert_one_line(captured.err, "gradcam_analysis: error:")
    assert re.search(message, line)
    if (name, message) in UNLOADABLE:
        assert name in line  # names the file (wrong-shape messages name the shapes instead)
    assert not output.exists() or not any(output.iterdir())  # nothing half-done left behind


def test_cli_batch_refuses_before_writing(
    bad_models: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from src.cli.gradcam_analysis import main

    output = tmp_path / "out"
    status = main(
        [
            "--model", str(bad_models / "lambda.h5"),
            "--labels", str(sketch_labels_path),
            "--output", str(output),
            "batch", "--images_dir", str(sketch_model_dir / "sketches"),
        ]
    )  # fmt: skip
    assert status == ExitStatus.MODEL_ERROR
    assert_one_line(capsys.readouterr().err, "Lambda")
    assert not output.exists()


@pytest.mark.parametrize(("name", "message"), [UNLOADABLE[0], UNLOADABLE[3], *WRONG_SHAPE])
def test_predict_py_exits_with_model_error(
    bad_models: Path,
    sketch_labels_path: Path,
    sketch_png: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    message: str,
) -> None:
    from src.cli.predict import main

    status = main(
        [
            "--image_path", str(sketch_png),
            "--model_path", str(bad_models / name),
            "--label_mapping", str(sketch_labels_path),
        ]
    )  # fmt: skip
    assert status == ExitStatus.MODEL_ERROR
    assert_one_line(capsys.readouterr().err, "predict: error:")


# --- web app -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "message"), ALL_BAD)
def test_web_main_exits_non_zero_with_one_line(
    bad_models: Path,
    sketch_labels_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    message: str,
) -> None:
    from src.web.__main__ import main

    status = main(
        [
            "--model_path", str(bad_models / name),
            "--label_mapping", str(sketch_labels_path),
            "--port", "1",
        ]
    )  # fmt: skip
    assert status != 0
    line = assert_one_line(capsys.readouterr().err, "error: cannot start the web app:")
    assert re.search(message, line)


@pytest.mark.parametrize(("name", "message"), [UNLOADABLE[6], WRONG_SHAPE[0]])
def test_create_app_lifespan_raises(
    bad_models: Path, sketch_labels_path: Path, name: str, message: str
) -> None:
    from fastapi.testclient import TestClient

    from src.web.app import create_app
    from src.web.settings import WebSettings

    app = create_app(WebSettings(model_path=bad_models / name, label_mapping=sketch_labels_path))
    with pytest.raises(ModelLoadError, match=message):
        with TestClient(app):
            pass


@pytest.mark.slow
def test_python_m_src_web_prints_one_line(bad_models: Path, sketch_labels_path: Path) -> None:
    """The real process: exit code 2, one error line last, no traceback.

    TensorFlow's C++ start-up notices (oneDNN, absl) may precede it; they are not errors.
    """
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run(
        [
            sys.executable, "-m", "src.web",
            "--model_path", str(bad_models / "lambda.h5"),
            "--label_mapping", str(sketch_labels_path),
            "--port", "1",
        ],
        cwd=PROJECT_ROOT, env=environment, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 2
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and errors[0] == lines[-1], process.stderr
    assert "Lambda layer" in errors[0]
    assert "Traceback" not in process.stderr
