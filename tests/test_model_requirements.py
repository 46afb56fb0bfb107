"""Models SketchCAM cannot explain are refused with one line naming what it needs, exit 4.

Also: hostile configs are bounded before decoding, SavedModel/TFLite get a conversion hint,
any sketch size from 16 to 512 with 1 or 3 channels passes the check, and a model ending in raw
scores gets confidences that are probabilities.
"""

from __future__ import annotations

import json
import tracemalloc
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from src.errors import ModelLoadError, UnsupportedModelError
from src.models.io import load_model
from src.models.model_config import MAX_CONFIG_BYTES, MAX_CONFIG_DEPTH
from src.models.sketch_model import check_sketch_input
from src.utils.exit_status import ExitStatus


def _conv_trunk(shape: tuple[int, ...]):  # type: ignore[no-untyped-def]
    """An input and a pooled conv feature vector."""
    import keras
    from keras import layers

    inputs = keras.Input(shape)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(inputs)
    return inputs, layers.GlobalAveragePooling2D(name="pool")(x)


def _two_outputs():  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inputs, x = _conv_trunk((64, 64, 1))
    return keras.Model(inputs, [layers.Dense(3, activation="softmax")(x), layers.Dense(2)(x)])


def _spatial_output():  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inputs = keras.Input((64, 64, 1))
    return keras.Model(inputs, layers.Conv2D(3, 3, padding="same", activation="softmax")(inputs))


def _vector_input():  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inputs = keras.Input((20,))
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(inputs))


def _lstm():  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inputs = keras.Input((28, 28))
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(layers.LSTM(4)(inputs)))


def _no_spatial_layer():  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inputs = keras.Input((64, 64, 1))
    x = layers.Flatten(name="flat")(inputs)
    return keras.Model(inputs, layers.Dense(3, activation="softmax", name="classes")(x))


def _with_head(shape: tuple[int, ...], activation: str | None):  # type: ignore[no-untyped-def]
    import keras
    from keras import layers

    inputs, x = _conv_trunk(shape)
    return keras.Model(inputs, layers.Dense(3, activation=activation, name="scores")(x))


# (file, builder, what the one line says)
BAD_MODELS = [
    ("two_outputs.keras", _two_outputs, "has 2 outputs; SketchCAM needs .* one output"),
    ("spatial_output.keras", _spatial_output, r"output is shaped \(None, 64, 64, 3\).*\(batch, classes\)"),
    ("vector_input.keras", _vector_input, r"input is shaped \(None, 20\), not an image"),
    ("lstm.keras", _lstm, r"input is shaped \(None, 28, 28\), not an image"),
    ("no_spatial_layer.keras", _no_spatial_layer, "no layer of the model has a spatial output"),
    ("tiny_8x8.keras", lambda: _with_head((8, 8, 1), "softmax"), "from 16x16 to 512x512"),
    ("two_channels.keras", lambda: _with_head((32, 32, 2), "softmax"), "1 or 3 channels"),
]  # fmt: skip


@pytest.fixture(scope="module")
def bad_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("unsupported_models")
    for name, build, _ in BAD_MODELS:
        build().save(folder / name)
    return folder


@pytest.mark.parametrize(("name", "build", "message"), BAD_MODELS, ids=[m[0] for m in BAD_MODELS])
def test_check_sketch_input_names_what_is_needed(
    bad_model_dir: Path, name: str, build: Any, message: str
) -> None:
    with pytest.raises(UnsupportedModelError, match=message) as caught:
        check_sketch_input(load_model(bad_model_dir / name), source=bad_model_dir / name)
    assert name in str(caught.value)


@pytest.mark.parametrize("shape", [(16, 16, 1), (28, 28, 1), (96, 96, 3), (512, 32, 1)])
def test_any_side_from_16_to_512_and_1_or_3_channels_passes(shape: tuple[int, ...]) -> None:
    check_sketch_input(_with_head(shape, "softmax"))


def test_a_caller_feeding_one_size_still_says_so() -> None:
    with pytest.raises(UnsupportedModelError, match=r"\(None, 28, 28, 1\).*\(None, 64, 64, 1\)"):
        check_sketch_input(_with_head((28, 28, 1), "softmax"), image_size=64)


def _one_stderr_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize(("name", "build", "message"), BAD_MODELS, ids=[m[0] for m in BAD_MODELS])
def test_every_interface_refuses_with_one_line_and_exit_4(
    bad_model_dir: Path,
    sketch_model_dir: Path,
    sketch_labels_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    build: Any,
    message: str,
) -> None:
    import re

    from src.cli.gradcam_analysis import main
    from src.cli.predict import main as predict_main
    from src.web.__main__ import main as web_main

    model = str(bad_model_dir / name)
    image = str(sketch_model_dir / "sketches" / "square" / "0.png")
    common = ["--model", model, "--labels", str(sketch_labels_path), "--output", str(tmp_path)]
    assert main([*common, "single", "--image", image]) == ExitStatus.MODEL_ERROR
    assert re.search(message, _one_stderr_line(capsys.readouterr().err))
    status = predict_main(
        ["--image_path", image, "--model_path", model, "--label_mapping", str(sketch_labels_path)]
    )
    assert status == ExitStatus.MODEL_ERROR
    assert re.search(message, _one_stderr_line(capsys.readouterr().err))
    web_args = ["--model_path", model, "--label_mapping", str(sketch_labels_path), "--port", "1"]
    assert web_main(web_args) != 0
    line = _one_stderr_line(capsys.readouterr().err)
    assert line.startswith("error: cannot start the web app:") and re.search(message, line)


@pytest.mark.parametrize("name", ["lstm.keras", "no_spatial_layer.keras", "two_outputs.keras"])
def test_layers_lists_every_layer_then_says_why(
    bad_model_dir: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    from src.cli.gradcam_analysis import main

    model = load_model(bad_model_dir / name)
    assert main(["--model", str(bad_model_dir / name), "layers"]) == ExitStatus.MODEL_ERROR
    captured = capsys.readouterr()
    listed = [line.split()[0] for line in captured.out.splitlines()[1:]]
    assert listed == [layer.name for layer in model.layers]
    assert "SketchCAM needs" in _one_stderr_line(captured.err)


# --- hostile and foreign files ------------------------------------------------------------------


def _archive(path: Path, config_text: str) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", config_text)
    return path


def test_config_nested_100000_deep_is_refused(tmp_path: Path) -> None:
    path = _archive(tmp_path / "deep.keras", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(ModelLoadError, match="config.json is not a usable model config.*nested"):
        load_model(path)


def test_config_just_past_the_depth_bound_is_refused(tmp_path: Path) -> None:
    depth = MAX_CONFIG_DEPTH + 1
    path = _archive(tmp_path / "deepish.keras", '{"a":' * depth + "1" + "}" * depth)
    with pytest.raises(ModelLoadError, match=f"nested deeper than {MAX_CONFIG_DEPTH} levels"):
        load_model(path)


def test_config_that_unpacks_past_the_bound_is_refused_unread(tmp_path: Path) -> None:
    path = _archive(tmp_path / "bomb.keras", "{" + " " * MAX_CONFIG_BYTES + "}")
    assert path.stat().st_size < MAX_CONFIG_BYTES // 100  # small on disk, large unpacked
    tracemalloc.start()
    with pytest.raises(ModelLoadError, match="config.json is 16,777,218 bytes, more than"):
        load_model(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < MAX_CONFIG_BYTES // 8  # refused from the zip directory, never unpacked


def test_savedmodel_folder_and_tflite_name_the_conversion(tmp_path: Path) -> None:
    saved = tmp_path / "exported"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"\x08\x01")
    with pytest.raises(ModelLoadError, match="SavedModel.*TFSMLayer.*model.keras"):
        load_model(saved)
    (tmp_path / "model.tflite").write_bytes(b"TFL3")
    with pytest.raises(ModelLoadError, match="TensorFlow Lite.*the Keras model it was converted"):
        load_model(tmp_path / "model.tflite")


# --- confidences are probabilities --------------------------------------------------------------


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def test_raw_scores_become_probabilities(tmp_path: Path, sketch_labels_path: Path) -> None:
    from src.inference.predictor import Predictor

    keras_model = _with_head((64, 64, 1), None)
    rng = np.random.default_rng(2)
    keras_model.set_weights(
        [rng.normal(0, 3, w.shape).astype(np.float32) for w in keras_model.weights]
    )
    keras_model.save(tmp_path / "logits.keras")
    images = rng.random((3, 64, 64, 1)).astype(np.float32)
    raw = keras_model.predict(images, verbose=0)
    assert raw.max() > 1.0  # raw scores, not probabilities

    predictor = Predictor.from_files(tmp_path / "logits.keras", sketch_labels_path)
    np.testing.assert_allclose(predictor.probabilities(images), _softmax(raw), atol=1e-5)


def test_cli_confidence_of_raw_scores_is_a_probability(
    tmp_path: Path, sketch_model_dir: Path, sketch_labels_path: Path
) -> None:
    from src.cli.gradcam_analysis import main
    from src.data.preprocess import image_file_to_model_input

    keras_model = _with_head((64, 64, 1), None)
    rng = np.random.default_rng(3)
    keras_model.set_weights(
        [rng.normal(0, 3, w.shape).astype(np.float32) for w in keras_model.weights]
    )
    keras_model.save(tmp_path / "logits.keras")
    image = sketch_model_dir / "sketches" / "circle" / "0.png"
    raw = keras_model.predict(image_file_to_model_input(image)[np.newaxis], verbose=0)
    output = tmp_path / "out"
    common = ["--model", str(tmp_path / "logits.keras"), "--labels", str(sketch_labels_path)]
    # Fed as image_file_to_model_input makes it above: light ink, 0-1.
    common += ["--ink", "light", "--value_range", "0-1"]
    assert main([*common, "--output", str(output), "single", "--image", str(image)]) == 0
    summary = json.loads((output / "analysis_summary.json").read_text())
    assert summary["confidence"] == pytest.approx(_softmax(raw).max(), abs=1e-5)


@pytest.mark.parametrize(
    ("card", "outcome"),
    [
        (None, "cannot tell whether the model's last layer 'scores' \\(Dense, sigmoid\\)"),
        ({"output": "probabilities"}, None),
        ({"output": "logits"}, "softmax"),
        ({"output": "scores"}, "output kind 'scores' is not one of probabilities, logits"),
    ],
)
def test_card_says_what_the_output_is_when_the_model_cannot(
    tmp_path: Path, sketch_labels_path: Path, card: dict | None, outcome: str | None
) -> None:
    from src.inference.predictor import Predictor

    keras_model = _with_head((64, 64, 1), "sigmoid")
    keras_model.save(tmp_path / "sigmoid.keras")
    if card is not None:
        (tmp_path / "model_card.json").write_text(json.dumps(card))
    images = np.random.default_rng(4).random((2, 64, 64, 1)).astype(np.float32)
    raw = keras_model.predict(images, verbose=0)
    if outcome is None or outcome == "softmax":
        predictor = Predictor.from_files(tmp_path / "sigmoid.keras", sketch_labels_path)
        expected = raw if outcome is None else _softmax(raw)
        np.testing.assert_allclose(predictor.probabilities(images), expected, atol=1e-6)
    else:
        with pytest.raises(UnsupportedModelError, match=outcome):
            Predictor.from_files(tmp_path / "sigmoid.keras", sketch_labels_path)
