"""What SketchCAM needs of a model: one image input, one (batch, classes) output, a spatial layer,
and confidences that are probabilities.

Every entry point calls ``check_sketch_input`` right after loading (CLI, ``predict.py``, the web
app's start-up, ``Predictor.from_files``), so a model SketchCAM cannot explain is refused there
with one line naming what it needs, rather than failing later inside a forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from src.errors import UnsupportedModelError

# Sketch sides SketchCAM can render and explain; smaller maps carry no shape, larger ones only
# cost memory (Quick, Draw! drawings are 256 px).
MIN_SIDE = 16
MAX_SIDE = 512
CHANNELS = (1, 3)  # grey, or the grey sketch repeated in three channels
OutputKind = Literal["probabilities", "logits"]
OUTPUT_KINDS: tuple[OutputKind, ...] = ("probabilities", "logits")
NEEDS = "SketchCAM needs a Keras image classifier"


def check_sketch_input(
    model: Any, image_size: int | None = None, source: str | Path | None = None
) -> None:
    """Check that a model is an image classifier SketchCAM can feed and explain.

    Args:
        model: the loaded ``keras.Model``.
        image_size: when the caller can only feed square (image_size, image_size, 1) sketches,
            that side; None accepts any side from ``MIN_SIDE`` to ``MAX_SIDE`` and 1 or 3 channels.
        source: the model file, named in the message when given.

    Raises:
        UnsupportedModelError: naming what the model has and what SketchCAM needs.
    """
    where = f"{source}: " if source is not None else ""
    problem = sketch_model_problem(model)
    if problem is not None:
        raise UnsupportedModelError(f"{where}{problem}")
    expected = (None, image_size, image_size, 1)
    if image_size is not None and tuple(model.input_shape) != expected:
        raise UnsupportedModelError(
            f"{where}model expects input {model.input_shape}, but SketchCAM feeds grayscale sketches "
            f"shaped {expected}; retrain with `python -m src.training.train`"
        )


def sketch_model_problem(model: Any) -> str | None:
    """Why SketchCAM cannot explain ``model`` (one sentence naming what it needs), or None."""
    inputs, outputs = list(model.inputs), list(model.outputs)
    if len(inputs) != 1:
        return f"the model has {len(inputs)} inputs; {NEEDS} with one image input"
    if len(outputs) != 1:
        return (
            f"the model has {len(outputs)} outputs; {NEEDS} with one output of class scores "
            "shaped (batch, classes)"
        )
    input_shape, output_shape = tuple(inputs[0].shape), tuple(outputs[0].shape)
    if len(input_shape) != 4:
        return (
            f"the model's input is shaped {input_shape}, not an image; {NEEDS} taking "
            "(batch, height, width, channels) sketches"
        )
    height, width, channels = input_shape[1:]
    if not all(side is not None and MIN_SIDE <= side <= MAX_SIDE for side in (height, width)):
        return (
            f"the model's input is shaped {input_shape}; {NEEDS} taking sketches from "
            f"{MIN_SIDE}x{MIN_SIDE} to {MAX_SIDE}x{MAX_SIDE} pixels"
        )
    if channels not in CHANNELS:
        return f"the model's input is shaped {input_shape}; {NEEDS} taking 1 or 3 channels"
    if len(output_shape) != 2 or (output_shape[1] or 0) < 2:
        return (
            f"the model's output is shaped {output_shape}; {NEEDS} whose output is one score "
            "per class, shaped (batch, classes) with at least 2 classes"
        )
    if not spatial_layers(model):
        return (
            f"no layer of the model has a spatial output (batch, height, width, channels) larger "
            f"than 1x1, so no map can be computed; {NEEDS} with convolutional layers"
        )
    return None


def spatial_layers(model: Any) -> list[Any]:
    """The layers (nested models searched) whose output is a 4-D map larger than 1x1."""
    found = []
    for layer in _all_layers(model):
        shape = layer_output_shape(layer)
        if type(layer).__name__ == "InputLayer" or shape is None or len(shape) != 4:
            continue
        if (shape[1] or 0) * (shape[2] or 0) > 1:
            found.append(layer)
    return found


def output_kind(
    model: Any, declared: str | None = None, source: str | Path | None = None
) -> OutputKind:
    """Whether the model's output is probabilities or raw scores (logits).

    A final softmax (an activation or a ``Softmax`` layer) gives probabilities; a final layer
    with a linear activation gives logits. Anything else cannot be told from the model, and the
    model card's ``"output"`` field (or an option) must say which.

    Args:
        model: the loaded ``keras.Model``.
        declared: "probabilities" or "logits" from the card or an option; wins when given.
        source: the model file, named in the message when given.

    Raises:
        UnsupportedModelError: ``declared`` is not a known kind, or the kind cannot be told
            and none is declared.
    """
    where = f"{source}: " if source is not None else ""
    if declared is not None:
        if declared not in OUTPUT_KINDS:
            raise UnsupportedModelError(
                f"{where}model output kind {declared!r} is not one of {', '.join(OUTPUT_KINDS)}"
            )
        return declared  # type: ignore[return-value]
    import keras

    layer = output_layer(model)
    activation = getattr(getattr(layer, "activation", None), "__name__", None)
    if isinstance(layer, keras.layers.Softmax) or activation == "softmax":
        return "probabilities"
    if activation == "linear":
        return "logits"
    raise UnsupportedModelError(
        f"{where}cannot tell whether the model's last layer {layer.name!r} ({type(layer).__name__}"
        f"{', ' + activation if activation else ''}) gives probabilities or raw scores; add "
        '"output": "probabilities" or "output": "logits" to the model_card.json beside the model'
    )


def with_probabilities(model: Any, kind: OutputKind) -> Any:
    """The model itself when it outputs probabilities, else it with a softmax on top.

    Confidences are always probabilities; a final ``Softmax`` layer also lets Grad-CAM find the
    logits as that layer's input, as for a model trained with one.
    """
    if kind == "probabilities":
        return model
    import keras

    probabilities = keras.layers.Softmax(name="sketchcam_softmax")(model.outputs[0])
    return keras.Model(model.inputs, probabilities, name=model.name)


def output_layer(model: Any) -> Any:
    """The layer producing the model's output, descending into a final nested model."""
    import keras

    output = model.outputs[0]
    for layer in reversed(model.layers):
        if isinstance(layer, keras.Model):
            continue
        if _single(getattr(layer, "output", None)) is output:
            return layer
    last = model.layers[-1]
    return output_layer(last) if isinstance(last, keras.Model) else last


def _all_layers(model: Any) -> list[Any]:
    """Every layer, nested models searched."""
    import keras

    found = []
    for layer in model.layers:
        found.append(layer)
        if isinstance(layer, keras.Model):
            found.extend(_all_layers(layer))
    return found


def layer_output_shape(layer: Any) -> tuple[Any, ...] | None:
    """A layer's single symbolic output shape, or None when it has none (several outputs)."""
    try:
        output = layer.output
    except (AttributeError, ValueError):
        return None
    shape = getattr(output, "shape", None)
    return tuple(shape) if shape is not None else None


def _single(tensors: Any) -> Any:
    """The only tensor of a one-element list."""
    return tensors[0] if isinstance(tensors, (list, tuple)) and len(tensors) == 1 else tensors
