"""Run a Keras model's graph once, capturing a target layer's activation and the class scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from src.visualization.target_layers import ScoreSource

# A capture request: the chain of layers from the top-level one down to the layer, and whether
# to record that layer's "output" or its "input" (the input of a Dense layer with fused softmax).
Request = tuple[list[Any], str]


def _graph_of(model: Any) -> Any:
    """The Functional graph behind a model (Sequential models keep theirs in ``_functional``)."""
    import keras

    if isinstance(model, keras.Sequential):
        if getattr(model, "_functional", None) is None:
            from src.errors import ModelLoadError

            raise ModelLoadError(
                f"Sequential model {model.name!r} has never been built, so its layers have no "
                "outputs; give its first layer an input shape or call model.build((None, H, W, C))"
            )
        return model._functional
    return model


def _inference_call(operation: Any) -> Callable[..., Any]:
    """Call an operation in inference mode (BatchNorm moving stats, no Dropout)."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if "training" in getattr(operation, "_call_context_args", ()) or getattr(
            operation, "_call_has_training_arg", False
        ):
            kwargs["training"] = False
        return operation(*args, **kwargs)

    return call


def _single(output: Any) -> Any:
    """A single-output graph's output tensor."""
    return output[0] if isinstance(output, (list, tuple)) else output


def _build_walker(
    model: Any, requests: dict[str, Request]
) -> Callable[[Any], tuple[dict[str, Any], Any]]:
    """A function images -> (captured tensors by request key, model output).

    Nested models on a request's chain are walked recursively by their own walker, so a layer
    deep inside them is captured in the same single pass.
    """
    graph = _graph_of(model)
    by_operation: dict[int, list[tuple[str, list[Any], str]]] = {}
    operations: dict[int, Any] = {}
    for key, (chain, capture) in requests.items():
        by_operation.setdefault(id(chain[0]), []).append((key, chain[1:], capture))
        operations[id(chain[0])] = chain[0]
    inner_walkers = {}
    for operation_id, entries in by_operation.items():
        deeper = {key: (tail, capture) for key, tail, capture in entries if tail}
        if deeper:
            inner_walkers[operation_id] = _build_walker(operations[operation_id], deeper)

    def walk(images: Any) -> tuple[dict[str, Any], Any]:
        captured: dict[str, Any] = {}

        def operation_fn(operation: Any) -> Callable[..., Any]:
            base = _inference_call(operation)
            entries = by_operation.get(id(operation))
            if entries is None:
                return base
            inner = inner_walkers.get(id(operation))

            def call(*args: Any, **kwargs: Any) -> Any:
                if inner is not None:
                    inner_captured, output = inner(args[0])
                    captured.update(inner_captured)
                else:
                    output = base(*args, **kwargs)
                for key, tail, capture in entries:
                    if not tail:
                        captured[key] = args[0] if capture == "input" else output
                return output

            return call

        output = _single(graph._run_through_graph(images, operation_fn=operation_fn))
        return captured, output

    return walk


def build_capturing_forward(
    model: Any, chain: list[Any], score: ScoreSource | None
) -> Callable[[Any], tuple[Any, Any, Any]]:
    """A function images -> (activation, class scores, model output).

    It walks the model's own graph with its own layers and weights (nothing is cloned or
    changed), records the output of ``chain[-1]`` (descending into nested models along
    ``chain``), and records the logits described by ``score`` (which may also sit inside a
    nested model).

    Args:
        model: a built Functional or Sequential Keras model.
        chain: layers from the top-level one down to the target layer.
        score: where the logits are; None when scores are not needed.
    """
    requests: dict[str, Request] = {"activation": (chain, "output")}
    if score is not None:
        capture = "input" if score.kind == "dense_input" else "output"
        requests["scores"] = (list(score.chain) or [score.layer], capture)
    walker = _build_walker(model, requests)

    def forward(images: Any) -> tuple[Any, Any, Any]:
        captured, output = walker(images)
        scores = captured.get("scores")
        if score is not None and score.kind == "dense_input":
            # The Dense layer fused its softmax; redo its affine part to get the logits.
            layer = score.layer
            scores = scores @ layer.kernel
            scores = scores + layer.bias if layer.use_bias else scores
        return captured["activation"], scores, output

    return forward
