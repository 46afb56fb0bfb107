"""Keras 2 ``.h5`` files load: their configs are repaired, their weights loaded by layer.

Each file is written here with h5py in the layout Keras 2.1-2.15 wrote (``model_config`` JSON,
``model_weights`` with ``layer_names`` and per-layer ``weight_names``), holding the weights of a
Keras 3 model built directly. The loaded model must predict what that Keras 3 model predicts.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from src.errors import ModelLoadError
from src.models.io import load_model

SIDE = 16
CLASSES = 3


def _initializer(name: str, with_dtype: bool) -> dict[str, Any]:
    """A Keras 2 initializer config; tf.keras of TensorFlow 1.x added a dtype to it."""
    return {"class_name": name, "config": {"dtype": "float32"} if with_dtype else {}}


def _conv(name: str, with_dtype: bool = False, **extra: Any) -> dict[str, Any]:
    """A Keras 2 Conv2D config (2 filters, 3x3, valid, relu)."""
    config = {
        "name": name, "trainable": True, "dtype": "float32", "filters": 2,
        "kernel_size": [3, 3], "strides": [1, 1], "padding": "valid",
        "data_format": "channels_last", "dilation_rate": [1, 1], "activation": "relu",
        "use_bias": True,
        "kernel_initializer": _initializer("GlorotUniform", with_dtype),
        "bias_initializer": _initializer("Zeros", with_dtype),
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None, **extra,
    }  # fmt: skip
    return {"class_name": "Conv2D", "config": config}


def _pool(name: str) -> dict[str, Any]:
    """A Keras 2 GlobalAveragePooling2D config."""
    config = {"name": name, "trainable": True, "data_format": "channels_last"}
    return {"class_name": "GlobalAveragePooling2D", "config": config}


def _dense(name: str, with_dtype: bool = False) -> dict[str, Any]:
    """A Keras 2 Dense config (3 classes, softmax)."""
    config = {
        "name": name, "trainable": True, "units": CLASSES, "activation": "softmax",
        "use_bias": True,
        "kernel_initializer": _initializer("GlorotUniform", with_dtype),
        "bias_initializer": _initializer("Zeros", with_dtype),
        "kernel_regularizer": None, "bias_regularizer": None, "activity_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None,
    }  # fmt: skip
    return {"class_name": "Dense", "config": config}


def _batch_norm(name: str) -> dict[str, Any]:
    """A tf.keras BatchNormalization config with arguments Keras 3 dropped."""
    config = {
        "name": name, "trainable": True, "dtype": "float32", "axis": -1, "momentum": 0.99,
        "epsilon": 0.001, "center": True, "scale": True,
        "beta_initializer": _initializer("Zeros", False),
        "gamma_initializer": _initializer("Ones", False),
        "moving_mean_initializer": _initializer("Zeros", False),
        "moving_variance_initializer": _initializer("Ones", False),
        "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
        "gamma_constraint": None, "renorm": False, "fused": None, "virtual_batch_size": None,
    }  # fmt: skip
    return {"class_name": "BatchNormalization", "config": config}


def _reference_model(with_batch_norm: bool = False):  # type: ignore[no-untyped-def]
    """The same network built directly in Keras 3, with distinct random weights."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input((SIDE, SIDE, 1))
    x = layers.Conv2D(2, 3, activation="relu", name="conv2d_1")(inputs)
    if with_batch_norm:
        x = layers.BatchNormalization(name="batch_normalization_1")(x)
    x = layers.GlobalAveragePooling2D(name="global_average_pooling2d_1")(x)
    outputs = layers.Dense(CLASSES, activation="softmax", name="dense_1")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0.5, 1.0, w.shape).astype(np.float32) for w in model.weights])
    if with_batch_norm:  # moving variance must be positive
        layer = model.get_layer("batch_normalization_1")
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, 2).astype(np.float32))
    return model


_KERAS2_WEIGHT_NAMES = {
    "Conv2D": ("kernel", "bias"),
    "Dense": ("kernel", "bias"),
    "BatchNormalization": ("gamma", "beta", "moving_mean", "moving_variance"),
}


def write_keras2_h5(path: Path, config: dict[str, Any], reference: Any, version: str) -> Path:
    """Write ``config`` and ``reference``'s weights in the Keras 2 ``.h5`` layout."""
    import h5py

    with h5py.File(path, "w") as handle:
        handle.attrs["keras_version"] = version.encode()
        handle.attrs["backend"] = b"tensorflow"
        handle.attrs["model_config"] = json.dumps(config).encode()
        weights = handle.create_group("model_weights")
        weights.attrs["keras_version"] = version.encode()
        weights.attrs["backend"] = b"tensorflow"
        names = [
            layer.name for layer in reference.layers if layer.__class__.__name__ != "InputLayer"
        ]
        weights.attrs["layer_names"] = [name.encode() for name in names]
        for layer in reference.layers[1:]:
            group = weights.create_group(layer.name)
            parts = _KERAS2_WEIGHT_NAMES.get(type(layer).__name__, ())
            weight_names = [f"{layer.name}/{part}:0" for part in parts]
            group.attrs["weight_names"] = [name.encode() for name in weight_names]
            for name, value in zip(weight_names, layer.get_weights(), strict=True):
                group.create_dataset(name, data=value)
    return path


def _sketches() -> np.ndarray:
    return np.random.default_rng(11).random((4, SIDE, SIDE, 1)).astype(np.float32)


def _sequential_layers(with_dtype: bool = False, shape_key: str = "batch_input_shape") -> list:
    """Keras 2 Sequential layers, the input shape on the first (as Keras 2 wrote it)."""
    shape = [None, SIDE, SIDE, 1] if shape_key == "batch_input_shape" else [SIDE, SIDE, 1]
    return [
        _conv("conv2d_1", with_dtype, **{shape_key: shape}),
        _pool("global_average_pooling2d_1"),
        _dense("dense_1", with_dtype),
    ]


# (case, keras_version, config, the repair --verbose must name)
SEQUENTIAL_CASES = [
    (
        "keras_2_1_list_config",
        "2.1.6",
        {"class_name": "Sequential", "config": _sequential_layers()},
        "bare list of layers",
    ),
    (
        "keras_2_2_initializer_dtype",
        "2.2.4-tf",
        {"class_name": "Sequential", "config": {"name": "s", "layers": _sequential_layers(True)}},
        "dropped dtype from kernel_initializer",
    ),
    (
        "batch_input_shape_on_layer",
        "2.2.4",
        {"class_name": "Sequential", "config": {"name": "s", "layers": _sequential_layers()}},
        "moved to an InputLayer",
    ),
    (
        "input_shape_on_layer",
        "2.0.8",
        {
            "class_name": "Sequential",
            "config": {"name": "s", "layers": _sequential_layers(shape_key="input_shape")},
        },
        "dropped input_shape",
    ),
]


@pytest.mark.parametrize(
    ("case", "version", "config", "repair"), SEQUENTIAL_CASES, ids=[c[0] for c in SEQUENTIAL_CASES]
)
def test_keras2_sequential_loads_and_predicts_like_keras3(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: str,
    version: str,
    config: dict[str, Any],
    repair: str,
) -> None:
    reference = _reference_model()
    path = write_keras2_h5(tmp_path / f"{case}.h5", config, reference, version)
    with caplog.at_level(logging.INFO, logger="src.models.io"):
        model = load_model(path)
    assert model.input_shape == (None, SIDE, SIDE, 1)
    np.testing.assert_allclose(
        model.predict(_sketches(), verbose=0), reference.predict(_sketches(), verbose=0), atol=1e-6
    )
    assert any(repair in record.getMessage() for record in caplog.records), caplog.text


def _functional_config() -> dict[str, Any]:
    """A Keras 2 functional config: old-style inbound nodes, BatchNormalization with renorm."""

    def node(name: str) -> list:
        return [[[name, 0, 0, {}]]]

    layers = [
        {
            "name": "input_1",
            "class_name": "InputLayer",
            "config": {
                "batch_input_shape": [None, SIDE, SIDE, 1],
                "dtype": "float32",
                "sparse": False,
                "name": "input_1",
            },
            "inbound_nodes": [],
        },  # fmt: skip
        {**_conv("conv2d_1"), "name": "conv2d_1", "inbound_nodes": node("input_1")},
        {
            **_batch_norm("batch_normalization_1"),
            "name": "batch_normalization_1",
            "inbound_nodes": node("conv2d_1"),
        },
        {
            **_pool("global_average_pooling2d_1"),
            "name": "global_average_pooling2d_1",
            "inbound_nodes": node("batch_normalization_1"),
        },
        {
            **_dense("dense_1"),
            "name": "dense_1",
            "inbound_nodes": node("global_average_pooling2d_1"),
        },
    ]
    return {
        "class_name": "Model",
        "config": {
            "name": "model_1",
            "layers": layers,
            "input_layers": [["input_1", 0, 0]],
            "output_layers": [["dense_1", 0, 0]],
        },
    }


def test_keras2_functional_drops_arguments_keras3_no_longer_takes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    reference = _reference_model(with_batch_norm=True)
    path = write_keras2_h5(tmp_path / "functional.h5", _functional_config(), reference, "2.15.0")
    with caplog.at_level(logging.INFO, logger="src.models.io"):
        model = load_model(path)
    np.testing.assert_allclose(
        model.predict(_sketches(), verbose=0), reference.predict(_sketches(), verbose=0), atol=1e-5
    )
    assert "dropped arguments Keras 3 no longer takes: fused, virtual_batch_size" in caplog.text


def test_repaired_prediction_matches_numpy(tmp_path: Path) -> None:
    """A second, independent check: the loaded model against the forward pass in numpy."""
    reference = _reference_model()
    config = SEQUENTIAL_CASES[0][2]
    model = load_model(write_keras2_h5(tmp_path / "k21.h5", config, reference, "2.1.6"))
    kernel, bias = reference.get_layer("conv2d_1").get_weights()
    dense_kernel, dense_bias = reference.get_layer("dense_1").get_weights()
    images = _sketches()
    windows = np.lib.stride_tricks.sliding_window_view(images[..., 0], (3, 3), axis=(1, 2))
    features = np.maximum(np.einsum("nhwij,ijc->nhwc", windows, kernel[:, :, 0, :]) + bias, 0)
    scores = features.mean(axis=(1, 2)) @ dense_kernel + dense_bias
    expected = np.exp(scores - scores.max(1, keepdims=True))
    expected /= expected.sum(1, keepdims=True)
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, atol=1e-5)


# --- refused legacy files: (name, config change, message) ---------------------------------------


def _with_lambda() -> dict[str, Any]:
    lambda_layer = {
        "class_name": "Lambda",
        "config": {
            "name": "lambda_1", "trainable": True,
            # Marshalled bytecode in Keras 2; never decoded, so any text stands for it.
            "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMIAAAAfABkARQAUwApAk4=", None, None],
            "function_type": "lambda", "output_shape": None, "output_shape_type": "raw",
            "arguments": {},
        },
    }  # fmt: skip
    layers = _sequential_layers()
    return {"class_name": "Sequential", "config": [layers[0], lambda_layer, *layers[1:]]}


def _with_custom_layer() -> dict[str, Any]:
    layers = _sequential_layers()
    custom = {"class_name": "AttentionPool", "config": {"name": "attention_pool_1"}}
    return {"class_name": "Sequential", "config": [layers[0], custom, *layers[1:]]}


@pytest.mark.parametrize(
    ("name", "config", "message"),
    [
        ("lambda.h5", _with_lambda(), "Lambda layer, which can run arbitrary code"),
        ("custom.h5", _with_custom_layer(), "not a loadable Keras model: .*AttentionPool"),
    ],
)
def test_legacy_files_that_need_code_are_refused(
    tmp_path: Path, name: str, config: dict[str, Any], message: str
) -> None:
    path = write_keras2_h5(tmp_path / name, config, _reference_model(), "2.1.6")
    with pytest.raises(ModelLoadError, match=message):
        load_model(path)


# --- files written by tf.keras itself (the tf_keras package, Keras 2.x) --------------------------


def _tf_keras_sequential(tf_keras: Any) -> Any:
    layers = tf_keras.layers
    return tf_keras.Sequential(
        [
            layers.Conv2D(2, 3, activation="relu", input_shape=(SIDE, SIDE, 1)),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(CLASSES, activation="softmax"),
        ]
    )


def _tf_keras_functional(tf_keras: Any) -> Any:
    layers = tf_keras.layers
    inputs = tf_keras.Input((SIDE, SIDE, 3))
    x = layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = layers.BatchNormalization(renorm=True, virtual_batch_size=None)(x)
    x = layers.SeparableConv2D(4, 3, activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return tf_keras.Model(inputs, layers.Dense(CLASSES)(x))


@pytest.mark.parametrize("build", [_tf_keras_sequential, _tf_keras_functional])
def test_tf_keras_h5_predicts_as_tf_keras_does(tmp_path: Path, build: Any) -> None:
    tf_keras = pytest.importorskip(
        "tf_keras", reason="tf-keras (dev extra) writes real Keras 2 files"
    )
    tf_keras.utils.set_random_seed(8)
    original = build(tf_keras)
    rng = np.random.default_rng(9)
    # Positive weights keep batch-norm variances valid, so no NaN can pass as equal.
    original.set_weights(
        [rng.uniform(0.5, 1.5, w.shape).astype(np.float32) for w in original.weights]
    )
    original.save(tmp_path / "tf_keras.h5")
    images = rng.random((3, *original.input_shape[1:])).astype(np.float32)
    model = load_model(tmp_path / "tf_keras.h5")
    expected = original.predict(images, verbose=0)
    assert np.isfinite(expected).all()
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-5, atol=1e-5)


def test_verbose_cli_names_each_repair(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """--verbose shows the project's INFO records; each repair is one of them."""
    from src.cli.gradcam_analysis import main

    config = SEQUENTIAL_CASES[1][2]  # Keras 2.2: initializer dtype, input shape on the layer
    path = write_keras2_h5(tmp_path / "k22.h5", config, _reference_model(), "2.2.4-tf")
    with caplog.at_level(logging.INFO):
        assert main(["--verbose", "--model", str(path), "layers"]) == 0
    assert "conv2d_1" in capsys.readouterr().out
    repairs = [r.getMessage() for r in caplog.records if "repaired legacy config" in r.getMessage()]
    assert all(str(path) in message for message in repairs)
    assert any("dropped dtype from kernel_initializer" in message for message in repairs)
    assert any("moved to an InputLayer" in message for message in repairs)
    levels = {r.levelno for r in caplog.records if "repaired legacy config" in r.getMessage()}
    assert levels == {logging.INFO}


def test_h5_config_past_the_size_bound_is_refused_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import src.models.model_config as model_config

    config = SEQUENTIAL_CASES[2][2]
    path = write_keras2_h5(tmp_path / "k22.h5", config, _reference_model(), "2.2.4")
    size = len(json.dumps(config).encode())
    monkeypatch.setattr(model_config, "MAX_CONFIG_BYTES", size - 1)
    with pytest.raises(ModelLoadError, match=f"its model_config is {size:,} bytes, more than"):
        load_model(path)
    monkeypatch.setattr(model_config, "MAX_CONFIG_BYTES", size)
    load_model(path)  # exactly at the bound is accepted


def test_h5_config_nested_past_the_depth_bound_is_refused(tmp_path: Path) -> None:
    from src.models.model_config import MAX_CONFIG_DEPTH

    config = SEQUENTIAL_CASES[2][2]
    deep = {**config, "extra": json.loads("[" * MAX_CONFIG_DEPTH + "]" * MAX_CONFIG_DEPTH)}
    path = write_keras2_h5(tmp_path / "deep.h5", deep, _reference_model(), "2.2.4")
    with pytest.raises(ModelLoadError, match=f"model_config .*deeper than {MAX_CONFIG_DEPTH}"):
        load_model(path)
