"""Compare two or more models on the same sketches: answers, agreement and where each one looks.

Each model reads every sketch in its own input convention (size, ink, value range:
``InputSpec``) through ``to_model_input`` and is explained
at its own (automatically chosen or given) layer, for the same class: the true class when it is
known and shared, else the first model's answer when the others know it. Maps are then brought
to one grid (the smallest input size) and compared by rank correlation, per input and per class.

Example:
    >>> summary = compare_models([model_a, model_b], images, labels)
    >>> summary["pairs"][0]["agreement"]["mcnemar_p_value"]
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.data.input_spec import InputSpec
from src.data.preprocess import to_model_input
from src.explain.compared_model import (
    ComparedModel,
    as_compared_model,
    check_outputs,
    model_input_size,
    shared_class_names,
    unique_names,
)
from src.explain.comparison_summary import summarise
from src.explain.map_agreement import ink_shares, near_ink_masks, resize_maps

logger = logging.getLogger(__name__)

__all__ = ["ComparedModel", "ModelComparison", "ModelRun", "compare_models", "measure_models"]

DEFAULT_BATCH_SIZE = 64
# A sketch is an image (PIL or array, any size) or a function ``InputSpec -> model input`` (the
# side ``-> model input`` for a model compared without an ``InputSpec``).
Sketch = Any


@dataclass
class ModelRun:
    """One model's inputs, answers and maps on every sketch."""

    spec: ComparedModel
    input_spec: InputSpec | None
    input_size: int
    layer_name: str
    method: str
    inputs: np.ndarray  # float32 (N, S, S, C), this model's own preprocessing of each sketch
    probabilities: np.ndarray  # float32 (N, C)
    explained: np.ndarray  # int64 (N,) the class index each map explains
    heatmaps: np.ndarray  # float32 (N, S, S) at the model's input size
    grid_heatmaps: np.ndarray  # float32 (N, G, G) on the grid shared by every model
    ink_share: np.ndarray  # float64 (N,) share of the heat near ink; NaN for a blank map
    ink_area: np.ndarray  # float64 (N,) share of the canvas near ink (a uniform map's ink share)


@dataclass
class ModelComparison:
    """Everything measured: per-model runs, the shared classes, and the JSON-ready summary."""

    runs: list[ModelRun]
    shared_classes: tuple[str, ...]
    true_classes: list[str | None]
    targets: list[str | None]  # the class every model explains per input (None: its own answer)
    sources: list[str]
    grid: int
    summary: dict[str, Any] = field(default_factory=dict)


def prepare_inputs(sketches: Sequence[Sketch], size: int, spec: InputSpec | None) -> np.ndarray:
    """Every sketch as the model input of ``spec`` (None: ``to_model_input`` at ``size``),
    stacked (N, H, W, C)."""
    key: InputSpec | int = spec if spec is not None else size
    prepared = [
        sketch(key) if callable(sketch) else to_model_input(sketch, size=size, spec=spec)
        for sketch in sketches
    ]
    return np.stack(prepared).astype(np.float32)


def _probabilities(model: Any, inputs: np.ndarray, batch_size: int) -> np.ndarray:
    """The model's outputs for every input, in batches (no gradients)."""
    return np.concatenate(
        [
            np.asarray(model(inputs[start : start + batch_size], training=False), np.float32)
            for start in range(0, len(inputs), batch_size)
        ]
    )


def _target_names(
    true_classes: Sequence[str | None],
    reference: ComparedModel,
    reference_probabilities: np.ndarray,
    shared: Sequence[str],
) -> list[str | None]:
    """The class to explain per input: the true class, else the first model's shared answer."""
    answers = [reference.class_names[index] for index in reference_probabilities.argmax(axis=1)]
    return [
        truth if truth in shared else (answer if answer in shared else None)
        for truth, answer in zip(true_classes, answers)
    ]


def _run_model(
    spec: ComparedModel,
    sketches: Sequence[Sketch],
    targets: Sequence[str | None],
    grid: int,
    method: str,
    batch_size: int,
    probabilities: np.ndarray | None = None,
) -> ModelRun:
    """Preprocess, predict and explain every sketch with one model."""
    from src.visualization.gradcam import GradCAM

    size = model_input_size(spec.model, spec.name)
    input_spec = spec.input_spec
    inputs = prepare_inputs(sketches, size, input_spec)
    if probabilities is None:
        probabilities = _probabilities(spec.model, inputs, batch_size)
    own_answer = probabilities.argmax(axis=1)
    explained = np.array(
        [
            spec.class_names.index(target) if target is not None else int(own_answer[number])
            for number, target in enumerate(targets)
        ],
        dtype=np.int64,
    )
    gradcam = GradCAM(spec.model, layer_name=spec.layer_name, method=method, input_spec=input_spec)
    heatmaps = np.concatenate(
        [
            gradcam.explain(
                inputs[start : start + batch_size], explained[start : start + batch_size]
            ).heatmaps
            for start in range(0, len(inputs), batch_size)
        ]
    )
    # "On the drawing" means on ink or touching it (within 1/64 of the side): the faint,
    # anti-aliased edge of a stroke is still the stroke.
    pictures = inputs if input_spec is None else input_spec.decode(inputs)
    masks = near_ink_masks(pictures, radius=size // 64)
    logger.info(
        "explained %d sketches with %s at layer %s", len(inputs), spec.name, gradcam.layer_name
    )
    return ModelRun(
        spec=spec,
        input_spec=input_spec,
        input_size=size,
        layer_name=gradcam.layer_name,
        method=gradcam.method,
        inputs=inputs,
        probabilities=probabilities,
        explained=explained,
        heatmaps=heatmaps,
        grid_heatmaps=resize_maps(heatmaps, grid),
        ink_share=ink_shares(heatmaps, masks),
        ink_area=masks.reshape(len(masks), -1).mean(axis=1),
    )


def measure_models(
    models: Sequence[Any],
    sketches: Sequence[Sketch],
    true_classes: Sequence[str | int | None] | None = None,
    method: str = "gradcam",
    sources: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    class_names: Sequence[str] | None = None,
) -> ModelComparison:
    """Run every model on every sketch and summarise; ``compare_models`` returns the summary.

    Args: as ``compare_models``; ``sources`` names each sketch in the outputs (default "#n").

    Raises:
        ValueError: fewer than two models, no sketches, or lists of different lengths.
        LabelMappingError: models without a common class.
        ModelLoadError: a model whose input is not (None, S, S, 1).
    """
    if len(models) < 2:
        raise ValueError(f"compare at least two models, got {len(models)}")
    if len(sketches) == 0:
        raise ValueError("no sketches to compare the models on")
    truths = _true_names(true_classes, len(sketches))
    if sources is not None and len(sources) != len(sketches):
        raise ValueError(f"{len(sources)} sources for {len(sketches)} sketches")
    specs = unique_names([as_compared_model(m, n, class_names) for n, m in enumerate(models)])
    for spec in specs:
        check_outputs(spec)
    shared = shared_class_names([(spec.name, spec.class_names) for spec in specs])
    # Only a shared class can be answered by every model: other labels count as unknown.
    truths = [
        name if name in shared else None
        for name in (_class_name(truth, specs[0].class_names) for truth in truths)
    ]
    grid = min(model_input_size(spec.model, spec.name) for spec in specs)
    reference = specs[0]
    reference_inputs = prepare_inputs(
        sketches, model_input_size(reference.model, reference.name), reference.input_spec
    )
    reference_probabilities = _probabilities(specs[0].model, reference_inputs, batch_size)
    targets = _target_names(truths, specs[0], reference_probabilities, shared)
    runs = [
        _run_model(
            spec,
            sketches,
            targets,
            grid,
            method,
            batch_size,
            reference_probabilities if position == 0 else None,
        )
        for position, spec in enumerate(specs)
    ]
    names = list(sources) if sources is not None else [f"#{n + 1}" for n in range(len(sketches))]
    comparison = ModelComparison(runs, shared, truths, targets, names, grid)
    comparison.summary = summarise(comparison)
    return comparison


def _true_names(
    true_classes: Sequence[str | int | None] | None, count: int
) -> list[str | int | None]:
    """The true class of each sketch (None: unknown), checked against the sketch count."""
    if true_classes is None:
        return [None] * count
    if len(true_classes) != count:
        raise ValueError(f"{len(true_classes)} labels for {count} sketches")
    return list(true_classes)


def _class_name(truth: str | int | None, class_names: Sequence[str]) -> str | None:
    """A label as a class name: names pass through, integers index the first model's classes."""
    if truth is None or isinstance(truth, str):
        return truth
    return class_names[int(truth)]


def compare_models(
    models: Sequence[Any],
    images: Sequence[Sketch],
    labels: Sequence[str | int | None] | None = None,
    method: str = "gradcam",
    class_names: Sequence[str] | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, Any]:
    """Compare models' answers and attention on the same sketches: ``model_comparison.json``.

    Args:
        models: two or more Keras models or ``ComparedModel`` (with class names, layer, card and
            audit). Bare models use ``class_names`` (default: "0", "1", ... by output index).
        images: sketches: PIL images or arrays of any size (each model applies
            ``to_model_input(image, spec=its InputSpec)``), or functions ``InputSpec ->
            input``.
        labels: the true class of each sketch (a name, an index into the class names as "0",
            "1", ..., or None when unknown), or None when no sketch is labelled.
        method: the CAM method for every model (see ``src.visualization.cam_methods``).
        class_names: class names shared by every bare model.
        batch_size: sketches per forward/Grad-CAM call.

    Returns:
        The JSON-ready comparison: ``models`` (accuracy, open set, ink share), ``pairs``
        (agreement, McNemar, per-class and per-input map correlation, most different inputs,
        audit deltas) and ``inputs`` (each model's answer and the correlations).

    Raises:
        ValueError: fewer than two models, no images, or lists of different lengths.
        LabelMappingError: models that share no class name (both are named).
        ModelLoadError: a model whose input is not (None, S, S, 1).
    """
    return measure_models(
        models, images, labels, method, batch_size=batch_size, class_names=class_names
    ).summary
