"""Find the layer a class activation map is taken from, and the tensor that scores each class."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from src.errors import LayerNotFoundError, ModelLoadError
from src.models.sketch_model import layer_output_shape

logger = logging.getLogger(__name__)

# Activations that squash logits; gradients are taken before them, never through them.
SQUASHING_ACTIVATIONS = ("softmax", "sigmoid")


@dataclass(frozen=True)
class LayerInfo:
    """A layer that can host a class activation map: 4-D output with more than 1x1 positions."""

    path: str  # "name", or "outer_model/inner_layer" inside nested models
    class_name: str
    output_shape: tuple[int | None, ...]


@dataclass(frozen=True)
class ScoreSource:
    """Where class scores (logits) come from.

    kind is "output" (a layer's output is the logits), "dense_input" (recompute logits from the
    final Dense layer's kernel and bias applied to its input, because the model fused the
    softmax into that layer), or "model_output" (no logits exist; the model output is used).
    """

    kind: str
    layer: Any
    # Layers from the top-level one down to ``layer`` when it sits inside nested models;
    # empty when ``layer`` is a top-level layer.
    chain: tuple[Any, ...] = ()


def _is_model(layer: Any) -> bool:
    """True for nested Functional/Sequential models, which we search inside."""
    import keras

    return isinstance(layer, keras.Model)


def iter_layer_paths(model: Any, prefix: str = "") -> list[tuple[str, list[Any]]]:
    """All layers in graph order as (path, chain), descending into nested models.

    ``chain`` is the list of layers from the top-level one down to the layer itself.
    """
    found: list[tuple[str, list[Any]]] = []
    for layer in model.layers:
        path = f"{prefix}{layer.name}"
        found.append((path, [layer]))
        if _is_model(layer):
            found.extend(
                (inner_path, [layer, *chain])
                for inner_path, chain in iter_layer_paths(layer, path + "/")
            )
    return found


def describe_layers(model: Any) -> list[LayerInfo]:
    """Candidate target layers (spatial output larger than 1x1), in graph order.

    Args:
        model: any built Keras model.

    Returns:
        One LayerInfo per candidate, the last one being the automatic choice.
    """
    candidates = []
    for path, chain in iter_layer_paths(model):
        layer = chain[-1]
        if _is_model(layer) or type(layer).__name__ == "InputLayer":
            continue
        shape = layer_output_shape(layer)
        if shape is not None and len(shape) == 4 and (shape[1] or 0) * (shape[2] or 0) > 1:
            candidates.append(LayerInfo(path, type(layer).__name__, shape))
    return candidates


def list_conv_layers(model: Any) -> list[str]:
    """Names (paths) of the layers Grad-CAM can use, in graph order; the last is the default."""
    return [info.path for info in describe_layers(model)]


def check_built(model: Any) -> None:
    """Raise a clear error for a model whose layers have no symbolic outputs yet.

    Raises:
        ModelLoadError: for an unbuilt Sequential model (no input shape, never called).
    """
    import keras

    if isinstance(model, keras.Sequential) and not _has_symbolic_inputs(model):
        raise ModelLoadError(
            f"Sequential model {model.name!r} has never been built, so its layers have no "
            "outputs; start it with keras.Input((H, W, C)) or call model.build((None, H, W, C))"
        )
    if not getattr(model, "built", True):
        raise ModelLoadError(
            f"model {model.name!r} has never been built; call it once on a batch or build it"
        )


def _has_symbolic_inputs(model: Any) -> bool:
    """True when the model's graph exists (a Sequential has none before it is built)."""
    try:
        return bool(model.inputs)
    except (AttributeError, ValueError):
        return False


def resolve_target_layer(model: Any, layer_name: str | None) -> tuple[str, list[Any]]:
    """Pick the target layer by name or path, else the last layer with spatial output > 1x1.

    Returns:
        (path, chain) as in ``iter_layer_paths``.

    Raises:
        ModelLoadError: the model has never been built.
        LayerNotFoundError: listing the candidate layers (also for a layer without a spatial
            output, such as the logits).
    """
    check_built(model)
    candidates = describe_layers(model)
    if not candidates:
        raise LayerNotFoundError(
            "the model has no layer with a spatial (H, W, C) output larger than 1x1, so no class "
            "activation map can be computed; Grad-CAM needs a convolutional model"
        )
    paths = dict(iter_layer_paths(model))
    if layer_name is None:
        chosen = candidates[-1].path
        logger.info("Grad-CAM target layer: %s (last layer with spatial output)", chosen)
        return chosen, paths[chosen]
    names = ", ".join(info.path for info in candidates)
    matches = [layer_name] if layer_name in paths else []
    matches = matches or [path for path in paths if path.rsplit("/", 1)[-1] == layer_name]
    if len(matches) != 1:
        problem = "is ambiguous" if matches else "is not in the model"
        raise LayerNotFoundError(f"layer {layer_name!r} {problem}; candidate layers: {names}")
    if matches[0] not in {info.path for info in candidates}:
        shape = layer_output_shape(paths[matches[0]][-1])
        raise LayerNotFoundError(
            f"layer {layer_name!r} has output shape {shape}, not a spatial (N, H, W, C) map "
            f"larger than 1x1; candidate layers: {names}"
        )
    return matches[0], paths[matches[0]]


def resolve_score_source(model: Any) -> ScoreSource:
    """Find the logits: a layer named "logits", the input of a final softmax Activation,
    or the pre-activation of a final Dense layer with a softmax/sigmoid activation.

    When the model ends in a nested model (a CNN wrapped in another model), the search
    continues inside it, and the returned ``chain`` leads from the outer model to the layer.
    """
    import keras

    names = {layer.name: layer for layer in model.layers}
    if "logits" in names:
        return ScoreSource("output", names["logits"])
    last = _output_layer(model)
    activation = getattr(getattr(last, "activation", None), "__name__", "")
    if isinstance(last, keras.Model):
        inner = resolve_score_source(last)
        if inner.kind != "model_output":
            return ScoreSource(inner.kind, inner.layer, (last, *(inner.chain or (inner.layer,))))
    if (
        isinstance(last, keras.layers.Activation) and activation in SQUASHING_ACTIVATIONS
    ) or isinstance(last, keras.layers.Softmax):
        inbound = _single_inbound_layer(model, last)
        if inbound is not None:
            return ScoreSource("output", inbound)
    if isinstance(last, keras.layers.Dense) and activation in SQUASHING_ACTIVATIONS:
        logger.info("no logits layer: recomputing logits from %s's kernel and bias", last.name)
        return ScoreSource("dense_input", last)
    logger.warning(
        "no logits layer and no final softmax in %s: using the model output as class score",
        model.name,
    )
    return ScoreSource("model_output", last)


def _output_layer(model: Any) -> Any:
    """The layer that produces the model's (first) output.

    Found by tensor identity with public ``layer.output``; a nested model reports its own
    outputs rather than its call's, so when no plain layer matches, the last nested model is it.
    """
    output = model.outputs[0]
    for layer in reversed(model.layers):
        if not _is_model(layer) and _single(layer.output) is output:
            return layer
    nested = [layer for layer in model.layers if _is_model(layer)]
    return nested[-1] if nested else model.layers[-1]


def _single(tensors: Any) -> Any:
    """The only tensor of a one-element list."""
    return tensors[0] if isinstance(tensors, (list, tuple)) else tensors


def _single_inbound_layer(model: Any, layer: Any) -> Any | None:
    """The plain layer whose output feeds ``layer`` (so that output is the logits), if any."""
    feeding = layer.input
    for candidate in model.layers:
        if not _is_model(candidate) and _single(candidate.output) is feeding:
            return candidate
    return None
