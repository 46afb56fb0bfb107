"""Repair the model config of a Keras 2 ``.h5`` file so that Keras 3 can rebuild the model.

Keras 2.0-2.15 (standalone and tf.keras) wrote configs that Keras 3 refuses: a Sequential
config that is a bare list of layers (Keras 2.1), ``batch_input_shape``/``input_shape`` on the
first layer instead of an InputLayer, initializer configs carrying ``dtype`` (tf.keras of
TensorFlow 1.x), and layer arguments Keras 3 dropped (BatchNormalization's ``renorm``,
``fused``...). Each repair rewrites the config only; nothing in it is imported or executed, and
layers Keras does not ship (custom, Lambda) are left for Keras's safe loader to refuse.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

_MODEL_CLASSES = ("Sequential", "Functional", "Model")
_SHAPE_KEYS = ("batch_input_shape", "input_shape", "input_dim", "batch_size")
# Sub-layers of wrappers (TimeDistributed, Bidirectional) that carry their own layer config.
_WRAPPED_LAYER_KEYS = ("layer", "forward_layer", "backward_layer")


def repair_legacy_config(config: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of a Keras 2 model config that Keras 3 accepts, and one sentence per repair.

    Args:
        config: the decoded ``model_config`` of a ``.h5`` file (``{"class_name", "config"}``).

    Returns:
        The repaired copy and the repairs made (empty when the config needed none).
    """
    repaired = copy.deepcopy(config)
    repairs: list[str] = []
    _repair_model(repaired, repairs)
    return repaired, repairs


def _repair_model(model: dict[str, Any], repairs: list[str]) -> None:
    """Repair a Sequential or Functional config and every layer in it, nested models included."""
    if model.get("class_name") == "Sequential" and isinstance(model.get("config"), list):
        model["config"] = {"name": "sequential", "layers": model["config"]}
        repairs.append(
            "Sequential config was a bare list of layers (Keras 2.1): wrapped as 'layers'"
        )
    settings = model.get("config")
    layers = settings.get("layers") if isinstance(settings, dict) else None
    if not isinstance(layers, list):
        return
    if model.get("class_name") == "Sequential":
        _move_input_shape_to_input_layer(layers, repairs)
    for layer in layers:
        if not isinstance(layer, dict):
            continue
        if layer.get("class_name") in _MODEL_CLASSES:
            _repair_model(layer, repairs)
        else:
            _repair_layer(layer, repairs)


def _move_input_shape_to_input_layer(layers: list[Any], repairs: list[str]) -> None:
    """Keras 2 put the input shape on a Sequential's first layer; Keras 3 needs an InputLayer."""
    if not layers or not isinstance(layers[0], dict):
        return
    first = layers[0]
    settings = first.get("config", {})
    if first.get("class_name") == "InputLayer" or not isinstance(settings, dict):
        return
    batch_shape = _batch_shape(settings)
    if batch_shape is None:
        return
    layer_name = settings.get("name", "layer")
    input_layer = {
        "class_name": "InputLayer",
        "config": {
            "batch_shape": batch_shape,
            "dtype": settings.get("dtype", "float32"),
            "name": f"{layer_name}_input",
        },
    }
    layers.insert(0, input_layer)
    repairs.append(
        f"input shape {batch_shape} on layer {layer_name!r} moved to an InputLayer (Keras 2 style)"
    )


def _batch_shape(settings: dict[str, Any]) -> list[Any] | None:
    """The (batch, ...) input shape a Keras 2 layer config declares, if any."""
    if isinstance(settings.get("batch_input_shape"), list):
        return list(settings["batch_input_shape"])
    if isinstance(settings.get("input_shape"), list):
        return [None, *settings["input_shape"]]
    if settings.get("input_dim") is not None:
        return [None, settings["input_dim"]]
    return None


def _repair_layer(layer: dict[str, Any], repairs: list[str]) -> None:
    """Drop what Keras 3 refuses from one layer config: shape arguments, initializer dtypes,
    arguments its class no longer takes."""
    settings = layer.get("config")
    if not isinstance(settings, dict):
        return
    layer_name = settings.get("name", layer.get("class_name", "layer"))
    if layer.get("class_name") != "InputLayer":
        dropped = [key for key in _SHAPE_KEYS if settings.pop(key, None) is not None]
        if dropped:
            repairs.append(f"layer {layer_name!r}: dropped {', '.join(dropped)} (Keras 2 style)")
    for key, value in settings.items():
        if key.endswith("_initializer") and isinstance(value, dict):
            inner = value.get("config")
            if isinstance(inner, dict) and inner.pop("dtype", None) is not None:
                repairs.append(f"layer {layer_name!r}: dropped dtype from {key}")
    for key in _WRAPPED_LAYER_KEYS:
        if isinstance(settings.get(key), dict):
            _repair_layer(settings[key], repairs)
    # InputLayer still takes Keras 2's batch_input_shape through its **kwargs.
    if layer.get("class_name") == "InputLayer":
        return
    accepted = _accepted_arguments(layer.get("class_name"))
    unknown = sorted(set(settings) - accepted) if accepted else []
    if unknown:
        for key in unknown:
            settings.pop(key)
        repairs.append(
            f"layer {layer_name!r} ({layer.get('class_name')}): dropped arguments Keras 3 "
            f"no longer takes: {', '.join(unknown)}"
        )


def _accepted_arguments(class_name: Any) -> set[str]:
    """The config keys a built-in Keras layer's constructor takes; empty when unknown.

    Only layers Keras ships, rebuilt by the generic ``from_config`` (``cls(**config)``), are
    pruned: their constructor is the whole contract. Anything else is left untouched.
    """
    import keras

    layer_class = getattr(keras.layers, str(class_name), None)
    if not (isinstance(layer_class, type) and issubclass(layer_class, keras.layers.Layer)):
        return set()
    if (
        getattr(layer_class.from_config, "__func__", None)
        is not keras.layers.Layer.from_config.__func__
    ):
        return set()
    accepted: set[str] = set()
    for klass in layer_class.__mro__:
        if "__init__" not in vars(klass):
            continue
        for parameter in inspect.signature(klass.__init__).parameters.values():
            if parameter.kind not in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
                accepted.add(parameter.name)
        if klass is keras.layers.Layer:
            break
    accepted.discard("self")
    return accepted
