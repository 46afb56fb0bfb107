"""Slice a Keras model at its target layer with public functional APIs: a stem and a head.

The stem maps images to the target layer's activations; the head maps those activations to the
class scores and the model's output. In a Functional model (and each Functional nesting level)
they are ``keras.Model`` slices built from the caller's own symbolic tensors (functional
slicing, Keras >= 3.1); in a Sequential level they are its own layers, called in order (a
Sequential rebuilt from a legacy ``.h5`` has called its layers on several graphs, so their
public ``output`` tensors do not form one graph to slice). Everything shares the caller's
layers and weights: nothing is cloned, rebuilt or changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from src.errors import LayerNotFoundError
from src.visualization.target_layers import ScoreSource

# Calls one sub-model on one tensor; each backend passes its own (eager, traced or stateless).
ModelCall = Callable[[Any, Any], Any]


@dataclass(frozen=True)
class HeadStep:
    """One sub-model or layer of the head.

    ``emits_scores``: a functional slice whose outputs are ``[output, scores]``.
    ``scores_are_output``: the step's output is the scores (a functional model cannot list one
    tensor twice among its outputs; in a Sequential, the logits layer).
    ``scores_are_input``: the step's input is the scores' source (a fused-softmax Dense).
    ``needs_images``: a branch from the model's input bypasses the target layer (as in a
    normalisation block), so the step takes [images, activations]; the gradient is still of
    the activations alone, the branch being a second, independent input.
    """

    model: Any
    emits_scores: bool = False
    scores_are_output: bool = False
    scores_are_input: bool = False
    # Takes [images, activations]: a branch from the input bypasses the target layer.
    needs_images: bool = False


@dataclass(frozen=True)
class SlicedModel:
    """A model cut at its target layer into sub-models that share its weights.

    ``affine`` holds the (kernel, bias) variables of a final Dense layer with a fused softmax:
    its head step then emits that layer's input, and the logits are redone from it.
    """

    stem: tuple[Any, ...]
    head: tuple[HeadStep, ...]
    affine: tuple[Any, Any | None] | None

    @property
    def models(self) -> tuple[Any, ...]:
        """Every sub-model, stem first (the order the JAX path passes their weights in)."""
        return self.stem + tuple(step.model for step in self.head)

    @property
    def has_logits(self) -> bool:
        """Whether ``scores_and_outputs`` yields logits; False when the model output stands in
        for them (no logits found on the target layer's path)."""
        return any(
            step.emits_scores or step.scores_are_output or step.scores_are_input
            for step in self.head
        )

    def activations(self, images: Any, call: ModelCall) -> Any:
        """Images -> the target layer's activations."""
        tensor = images
        for model in self.stem:
            tensor = call(model, tensor)
        return tensor

    def scores_and_outputs(self, activations: Any, images: Any, call: ModelCall) -> tuple[Any, Any]:
        """Activations (and the images, for a bypassing branch) -> (class scores before any
        softmax, model output)."""
        tensor, scores = activations, None
        for step in self.head:
            if step.scores_are_input:
                scores = tensor
            produced = call(step.model, [images, tensor] if step.needs_images else tensor)
            tensor = produced[0] if step.emits_scores else _single(produced)
            if step.emits_scores:
                scores = produced[1]
            elif step.scores_are_output:
                scores = tensor
        return scores if scores is not None else tensor, tensor


def _single(tensors: Any) -> Any:
    """The only tensor of a one-element list (models here have one input and one output)."""
    return tensors[0] if isinstance(tensors, (list, tuple)) else tensors


def _model(inputs: Any, outputs: Any, name: str) -> Any:
    """A functional slice of an existing graph; a bypassing branch gets a clear error."""
    import keras

    try:
        return keras.Model(inputs, outputs, name=name)
    except ValueError as error:
        raise LayerNotFoundError(
            f"cannot cut the model at this layer with public Keras APIs: a branch bypasses it "
            f"({str(error).splitlines()[0]}); pick a layer every path to the output goes through"
        ) from error


def _is_model(layer: Any) -> bool:
    """True for nested Functional/Sequential models."""
    import keras

    return isinstance(layer, keras.Model)


def _level_input(level: Any) -> Any:
    """The image tensor entering a Functional level's graph."""
    return level.inputs[0]


def _level_output(level: Any) -> Any:
    """The output tensor of a Functional level's graph."""
    return level.outputs[0]


def _nested_boundaries(level: Any, nested: Any) -> tuple[Any, Any]:
    """The tensors entering and leaving ``nested`` in ``level``'s graph.

    A nested model reports its own inputs and outputs, not those of its call in the enclosing
    graph, so the boundary tensors are found through the plain layers around it: its output is
    the tensor some layer (or the level's output) consumes that no plain layer produces, and
    its input is the tensor only it consumes (or, on a skip connection, the output of the
    layer listed just before it).
    """
    plain = [layer for layer in level.layers if not _is_model(layer)]
    inputs = [_level_input(level)]
    produced = [_single(layer.output) for layer in plain if type(layer).__name__ != "InputLayer"]
    consumed = [
        tensor
        for layer in plain
        if type(layer).__name__ != "InputLayer"
        for tensor in (layer.input if isinstance(layer.input, (list, tuple)) else [layer.input])
    ]
    outputs = [_level_output(level)]
    known = produced + inputs
    leaving = [
        tensor for tensor in consumed + outputs if not any(tensor is other for other in known)
    ]
    if not leaving or any(tensor is not leaving[0] for tensor in leaving):
        raise LayerNotFoundError(
            f"cannot find where nested model {nested.name!r} sits in {level.name!r}; "
            "only one nested model per level on the way to the target layer is supported"
        )
    unused = [
        tensor for tensor in known if not any(tensor is other for other in consumed + outputs)
    ]
    if len(unused) == 1:
        return unused[0], leaving[0]
    position = level.layers.index(nested)
    before = level.layers[position - 1] if position > 0 else None
    if before is None or type(before).__name__ == "InputLayer":
        return inputs[0], leaving[0]
    return _single(before.output), leaving[0]


def slice_model(model: Any, chain: list[Any], score: ScoreSource) -> SlicedModel:
    """Cut ``model`` at ``chain[-1]`` (nested models along ``chain``) into stem and head.

    Args:
        model: a built Functional or Sequential model with one image input.
        chain: layers from the top-level one down to the target layer.
        score: where the class scores are (``resolve_score_source``).

    Raises:
        LayerNotFoundError: when a branch bypasses the target layer or a nested model cannot
            be placed in its enclosing graph.
    """
    import keras

    levels = [model, *chain[:-1]]
    target = chain[-1]
    score_chain = list(score.chain) or [score.layer]
    score_depth = len(score_chain) - 1
    # The score is usable only on the target's path through the nesting levels.
    if score_chain[:-1] != list(chain[: len(score_chain) - 1]):
        score_depth = -1
    stem: list[Any] = []
    heads: list[list[HeadStep]] = []
    for depth, level in enumerate(levels):
        inner = levels[depth + 1] if depth + 1 < len(levels) else target
        scored = depth == score_depth and score.kind != "model_output"
        score_layer = score_chain[-1] if scored else None
        if isinstance(level, keras.Sequential):
            position = level.layers.index(inner)
            stem.extend(level.layers[: position + 1 if inner is target else position])
            heads.append(
                [
                    HeadStep(
                        layer,
                        scores_are_output=layer is score_layer and score.kind == "output",
                        scores_are_input=layer is score_layer and score.kind == "dense_input",
                    )
                    for layer in level.layers[position + 1 :]
                ]
            )
            continue
        if inner is target:
            into, start = _level_input(level), _single(target.output)
            stem.append(_model(into, start, f"{target.name}_stem"))
        else:
            into, start = _nested_boundaries(level, inner)
            if into is not _level_input(level):
                stem.append(_model(_level_input(level), into, f"{level.name}_to_{inner.name}"))
        heads.append(_functional_head(level, start, score, score_layer, depth == 0))
    head = [step for steps in reversed(heads) for step in steps]
    affine = None
    if score.kind == "dense_input" and any(
        step.emits_scores or step.scores_are_input for step in head
    ):
        layer = score.layer
        affine = (layer.kernel, layer.bias if layer.use_bias else None)
    return SlicedModel(tuple(stem), tuple(head), affine)


def _functional_head(
    level: Any, start: Any, score: ScoreSource, layer: Any, top: bool
) -> list[HeadStep]:
    """The head step of a Functional level: ``start`` to its output (and the scores, when
    ``layer`` is the score layer on this level); none when ``start`` is already the output.

    When a branch bypasses ``start``, the top level's step also takes the images.
    """
    output = _level_output(level)
    kinds: dict[str, bool] = {}
    if layer is None:
        if output is start:
            return []
        outputs: Any = output
    else:
        scores = _single(layer.input if score.kind == "dense_input" else layer.output)
        if scores is output:
            if output is start:
                return []
            outputs, kinds = output, {"scores_are_output": True}
        else:
            outputs, kinds = [output, scores], {"emits_scores": True}
    name = f"{level.name}_head"
    try:
        return [HeadStep(_model(start, outputs, name), **kinds)]
    except LayerNotFoundError:
        if not top:
            raise
    return [
        HeadStep(_model([_level_input(level), start], outputs, name), needs_images=True, **kinds)
    ]
