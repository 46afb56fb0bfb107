"""Run a Keras model's graph once, capturing a target layer's activation and the class scores."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from src.visualization.target_layers import ScoreSource


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


def build_capturing_forward(
    model: Any, chain: list[Any], score: ScoreSource | None
) -> Callable[[Any], tuple[Any, Any, Any]]:
    """A function images -> (activation, class scores, model output).

    It walks the model's own graph with its own layers and weights (nothing is cloned or
    changed), records the output of ``chain[-1]`` (descending into nested models along
    ``chain``), and records the logits described by ``score``.

    Args:
        model: a built Functional or Sequential Keras model.
        chain: layers from the top-level one down to the target layer.
        score: where the logits are; None when scores are not needed (inner models).
    """
    graph = _graph_of(model)
    head = chain[0]
    inner = build_capturing_forward(head, chain[1:], None) if len(chain) > 1 else None

    def forward(images: Any) -> tuple[Any, Any, Any]:
        captured: dict[str, Any] = {}

        def operation_fn(operation: Any) -> Callable[..., Any]:
            base = _inference_call(operation)

            def call(*args: Any, **kwargs: Any) -> Any:
                if operation is head and inner is not None:
                    activation, _, output = inner(args[0])
                    captured["activation"] = activation
                else:
                    if (
                        score is not None
                        and operation is score.layer
                        and score.kind == "dense_input"
                    ):
                        captured["dense_input"] = args[0]
                    output = base(*args, **kwargs)
                    if operation is head:
                        captured["activation"] = output
                if score is not None and operation is score.layer and score.kind != "dense_input":
                    captured["scores"] = output
                return output

            return call

        output = graph._run_through_graph(images, operation_fn=operation_fn)
        output = output[0] if isinstance(output, (list, tuple)) else output
        if score is not None and score.kind == "dense_input":
            layer = score.layer
            scores = captured["dense_input"] @ layer.kernel
            captured["scores"] = scores + layer.bias if layer.use_bias else scores
        return captured["activation"], captured.get("scores"), output

    return forward
