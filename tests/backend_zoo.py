"""The model zoo the cross-backend tests explain: every kind of model a user may bring.

Each builder returns a model with fixed weights (moving statistics included) and no training,
so TensorFlow, JAX and PyTorch load the same numbers from the saved file.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

SIDE = 16
SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "best_model.h5"


def _randomise(model: Any, seed: int) -> Any:
    """Random weights; variances positive so BatchNorm stays finite."""
    rng = np.random.default_rng(seed)
    model.set_weights(
        [rng.normal(0.0, 0.5, weight.shape).astype(np.float32) for weight in model.get_weights()]
    )
    dense = [layer for layer in _all_layers(model) if type(layer).__name__ == "Dense"][-1]
    kernel, *rest = dense.get_weights()
    # Class 1 gets positive evidence everywhere the target layer fires, so its maps are never
    # blank (a blank map would make every comparison trivially true).
    kernel[:, 1] = np.abs(kernel[:, 1])
    dense.set_weights([kernel, *rest])
    for layer in _all_layers(model):
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, beta, mean, np.abs(variance) + 0.5])
    return model


def _all_layers(model: Any) -> list[Any]:
    """Every layer, inside nested models too."""
    found = []
    for layer in model.layers:
        found.extend(_all_layers(layer) if hasattr(layer, "layers") else [layer])
    return found


def _features(inputs: Any, batch_norm: bool = False, dropout: bool = False) -> Any:
    """conv -> (BatchNorm) -> relu -> conv "target" -> pool, the shared trunk."""
    from keras import layers

    x = layers.Conv2D(4, 3, padding="same", name="conv_a")(inputs)
    if batch_norm:
        x = layers.BatchNormalization(name="bn_a")(x)
    x = layers.Activation("relu", name="relu_a")(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="target")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    return layers.Dropout(0.5, name="dropout")(x) if dropout else x


def functional() -> Any:
    """Functional, logits layer, softmax as an Activation."""
    import keras
    from keras import layers

    inputs = keras.Input((SIDE, SIDE, 1))
    logits = layers.Dense(3, name="logits")(_features(inputs))
    return keras.Model(inputs, layers.Activation("softmax", name="probabilities")(logits))


def softmax_activation_unnamed() -> Any:
    """No layer named logits: the softmax Activation's input is the score."""
    import keras
    from keras import layers

    inputs = keras.Input((SIDE, SIDE, 1))
    scores = layers.Dense(3, name="scores")(_features(inputs))
    return keras.Model(inputs, layers.Activation("softmax")(scores))


def dense_softmax() -> Any:
    """Dense(softmax) fused: the logits are redone from its kernel and bias."""
    import keras
    from keras import layers

    inputs = keras.Input((SIDE, SIDE, 1))
    return keras.Model(inputs, layers.Dense(3, activation="softmax")(_features(inputs)))


def batch_norm_dropout() -> Any:
    """BatchNorm (moving statistics) and Dropout (off at inference) in the trunk."""
    import keras
    from keras import layers

    inputs = keras.Input((SIDE, SIDE, 1))
    features = _features(inputs, batch_norm=True, dropout=True)
    logits = layers.Dense(3, name="logits")(features)
    return keras.Model(inputs, layers.Activation("softmax")(logits))


def sequential() -> Any:
    """Sequential with keras.Input (also saved as a legacy Keras-2-style .h5)."""
    import keras
    from keras import layers

    return keras.Sequential(
        [
            keras.Input((SIDE, SIDE, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            layers.Conv2D(6, 3, padding="same", activation="relu", name="target"),
            layers.GlobalAveragePooling2D(),
            layers.Dropout(0.3),
            layers.Dense(3, name="logits"),
            layers.Activation("softmax"),
        ]
    )


def nested() -> Any:
    """A Functional CNN nested in an outer Functional model."""
    import keras

    inner = functional()
    inputs = keras.Input((SIDE, SIDE, 1))
    return keras.Model(inputs, inner(inputs), name="outer")


def skip_connection() -> Any:
    """A branch from the input bypasses the target layer (added back before pooling)."""
    import keras
    from keras import layers

    inputs = keras.Input((SIDE, SIDE, 1))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    target = layers.Conv2D(6, 3, padding="same", activation="relu", name="target")(x)
    skip = layers.Conv2D(6, 1, name="skip")(inputs)
    pooled = layers.GlobalAveragePooling2D()(layers.Add()([target, skip]))
    logits = layers.Dense(3, name="logits")(pooled)
    return keras.Model(inputs, layers.Activation("softmax")(logits))


BUILDERS: dict[str, Callable[[], Any]] = {
    "functional": functional,
    "softmax_activation": softmax_activation_unnamed,
    "dense_softmax": dense_softmax,
    "batch_norm_dropout": batch_norm_dropout,
    "sequential": sequential,
    "nested": nested,
    "skip_connection": skip_connection,
}
# The file each model travels in; the Sequential also as Keras 2's legacy HDF5.
FILES = {name: f"{name}.keras" for name in BUILDERS} | {"legacy_h5": "sequential.h5"}


def save_zoo(directory: Path) -> dict[str, Path]:
    """Build, randomise and save every zoo model; returns name -> file."""
    import keras

    paths = {}
    for seed, (name, builder) in enumerate(BUILDERS.items()):
        keras.utils.set_random_seed(seed)
        model = _randomise(builder(), seed)
        paths[name] = directory / FILES[name]
        model.save(paths[name])
        if name == "sequential":
            paths["legacy_h5"] = directory / FILES["legacy_h5"]
            model.save(paths["legacy_h5"])
    return paths


def zoo_images(count: int = 3, side: int = SIDE, seed: int = 11) -> np.ndarray:
    """Smooth random images (blobs), so maps are not dominated by pixel noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:side, 0:side] / side
    images = np.zeros((count, side, side, 1), np.float32)
    for index in range(count):
        for _ in range(3):
            y, x = rng.random(2)
            images[index, ..., 0] += np.exp(-((rows - y) ** 2 + (cols - x) ** 2) * 30)
    return np.clip(images, 0.0, 1.0)
