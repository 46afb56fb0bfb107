"""The models a comparison takes: ``ComparedModel`` and the checks made before running them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from src.data.input_spec import InputSpec
from src.errors import LabelMappingError, ModelLoadError


@dataclass(frozen=True)
class ComparedModel:
    """A model to compare, with its class names and what else describes it.

    Attributes:
        model: a Keras model with one (None, S, S, 1) input and one softmax output.
        class_names: its class names in output order.
        name: how the outputs call it (e.g. the file name).
        layer_name: the Grad-CAM layer; None chooses automatically.
        card: its ``model_card.json``, whose ``open_set`` block is reported when present.
        audit: its ``audit.json``; with both models' audits the deltas per factor are reported.
        input_spec: its input convention (the CLI resolves it from the options and the card);
            None: the sketches are fed as ``to_model_input`` makes them without a spec (light
            ink, 0-1, at the model's side), and a callable sketch gets the side.
    """

    model: Any
    class_names: tuple[str, ...]
    name: str
    layer_name: str | None = None
    card: Mapping[str, Any] | None = None
    audit: Mapping[str, Any] | None = None
    input_spec: InputSpec | None = None


def model_input_size(model: Any, name: str = "model") -> int:
    """The side S of a model taking (None, S, S, 1 or 3) sketches.

    Raises:
        ModelLoadError: for any other input shape.
    """
    shape = model.input_shape
    if (
        not isinstance(shape, tuple)
        or len(shape) != 4
        or shape[1] is None
        or shape[1] != shape[2]
        or shape[3] not in (1, 3)
    ):
        raise ModelLoadError(
            f"{name} takes input {shape}; compare-models needs square sketches (None, S, S, 1 or 3)"
        )
    return int(shape[1])


def shared_class_names(models: Sequence[tuple[str, Sequence[str]]]) -> tuple[str, ...]:
    """Classes every model knows, by name, in the first model's order.

    Args:
        models: (name, class names) of each model; names appear in the error message.

    Raises:
        LabelMappingError: when two models share no class, naming both and their classes.
    """
    (first_name, first_classes), others = models[0], models[1:]
    shared = list(first_classes)
    for name, class_names in others:
        if not set(class_names) & set(first_classes):
            raise LabelMappingError(
                f"{first_name} ({_preview(first_classes)}) and {name} ({_preview(class_names)}) "
                "share no class name; compare models trained on at least one common class "
                "(check --labels and --other_labels)"
            )
        shared = [class_name for class_name in shared if class_name in class_names]
    if not shared:
        raise LabelMappingError(
            "no class is known to every model ("
            + "; ".join(f"{name}: {_preview(class_names)}" for name, class_names in models)
            + "); compare fewer models or models with common classes"
        )
    return tuple(shared)


def _preview(names: Sequence[str], limit: int = 6) -> str:
    """Up to ``limit`` class names for an error message."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} classes)" if len(names) > limit else "")


def as_compared_model(
    model: Any, position: int, class_names: Sequence[str] | None = None
) -> ComparedModel:
    """Wrap a bare Keras model (classes named by index unless ``class_names`` is given)."""
    if isinstance(model, ComparedModel):
        return model
    outputs = int(model.output_shape[-1])
    names = tuple(class_names) if class_names is not None else tuple(map(str, range(outputs)))
    return ComparedModel(model, names, name=getattr(model, "name", None) or f"model{position + 1}")


def check_outputs(spec: ComparedModel) -> None:
    """The model must have one output per class name."""
    outputs = int(spec.model.output_shape[-1])
    if outputs != len(spec.class_names):
        raise LabelMappingError(
            f"{spec.name} has {outputs} outputs but {len(spec.class_names)} class names; pass "
            "the label mapping written with this model"
        )


def unique_names(specs: list[ComparedModel]) -> list[ComparedModel]:
    """Give models with the same name a "#2", "#3" suffix so outputs can tell them apart."""
    seen: dict[str, int] = {}
    unique = []
    for spec in specs:
        seen[spec.name] = seen.get(spec.name, 0) + 1
        if seen[spec.name] > 1:
            spec = ComparedModel(
                spec.model,
                spec.class_names,
                f"{spec.name}#{seen[spec.name]}",
                spec.layer_name,
                spec.card,
                spec.audit,
            )
        unique.append(spec)
    return unique
