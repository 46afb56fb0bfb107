"""Measure a model under every factor level, through both input paths, and flag likely shortcuts.

For each level every drawing is rendered (``src.audit.factors``), turned into a model input by
the plain snippet of docs/usage_guide.md and by ``to_model_input``, and explained for its true class in batched
Grad-CAM calls. Per level, per path and per class: top-1, top-3, the mean probability of the
true class, and the mean Spearman rank correlation of the map with the reference rendering's map
in the drawing's frame (``src.audit.alignment``). A factor whose top-1 moves by more than
``SPREAD_LIMIT_POINTS`` across its levels is flagged, with the classes that absorb the errors.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from src.audit.alignment import (
    drawing_grid,
    fitted_coordinates,
    rank_correlation,
    sample_maps,
    snippet_coordinates,
)
from src.audit.factors import FACTORS, REFERENCE, Factor, RenderSpec, drawing_points, render
from src.data.input_spec import InputSpec
from src.data.preprocess import fit_geometry, to_model_input
from src.errors import DataFormatError
from src.evaluation.label_check import check_labels
from src.evaluation.metrics import confusion_matrix

logger = logging.getLogger(__name__)

# docs/usage_guide.md's snippet and the project's preprocessing, in the order reports list them.
PATHS = ("snippet", "to_model_input")
# A factor is flagged when top-1 moves by more than this many points across its levels.
SPREAD_LIMIT_POINTS = 5.0
# Classes named as absorbing a flagged factor's errors.
ABSORBING_COUNT = 5


@dataclass(frozen=True)
class AuditData:
    """Drawings to audit and what was left out of the data folder."""

    labels: np.ndarray  # int64 (N,) true class index of each drawing
    strokes: list[list[np.ndarray]]  # each drawing's strokes as (2, n) arrays
    counts: dict[str, int]  # drawings read per class
    skipped_files: list[str] = field(default_factory=list)  # files of classes the model lacks
    unreadable_files: list[str] = field(default_factory=list)  # "file: reason"


def _index_by_file_stem(class_names: Sequence[str]) -> dict[str, int]:
    """Class index by file stem: the class name itself, or its safe file name when no other
    class shares it (``scripts/make_audit_data.py`` writes ``alarm clock`` as ``alarm_clock``)."""
    from src.utils.filenames import safe_filename

    safe_names = Counter(safe_filename(name) for name in class_names)
    index = {
        safe_filename(name): position
        for position, name in enumerate(class_names)
        if safe_names[safe_filename(name)] == 1
    }
    index.update({name: position for position, name in enumerate(class_names)})
    return index


def load_audit_data(data_dir: str | Path, class_names: Sequence[str], per_class: int) -> AuditData:
    """The first ``per_class`` valid drawings of every ``<data_dir>/<class>.ndjson``.

    Files whose stem is not one of ``class_names`` are skipped and listed; a file that is not
    ndjson at all is listed as unreadable and the others are still read.

    Raises:
        DataFormatError: if ``data_dir`` is not a folder or none of its files gave a drawing of
            one of the model's classes.
    """
    from src.data.quickdraw import read_ndjson

    folder = Path(data_dir)
    if not folder.is_dir():
        raise DataFormatError(
            f"--data {folder} is not a folder; pass a folder of Quick, Draw! <class>.ndjson files"
        )
    index = _index_by_file_stem(class_names)
    labels: list[int] = []
    strokes: list[list[np.ndarray]] = []
    data = AuditData(np.zeros(0, np.int64), [], {})
    for file in sorted(folder.glob("*.ndjson")):
        if file.stem not in index:
            data.skipped_files.append(file.name)
            continue
        try:
            drawings = list(islice(read_ndjson(file), per_class))
        except DataFormatError as error:
            data.unreadable_files.append(f"{file.name}: {error}")
            continue
        data.counts[class_names[index[file.stem]]] = len(drawings)
        labels.extend([index[file.stem]] * len(drawings))
        strokes.extend(drawing_points(drawing.strokes) for drawing in drawings)
    if not strokes:
        raise DataFormatError(
            f"{folder} has no readable <class>.ndjson file of the model's classes "
            f"({', '.join(list(class_names)[:4])}, ...); name each file after its class"
        )
    return AuditData(
        np.asarray(labels, np.int64),
        strokes,
        data.counts,
        data.skipped_files,
        data.unreadable_files,
    )


@dataclass(frozen=True)
class PathOutcome:
    """What one input path gave for every drawing at one level."""

    predicted: np.ndarray  # int64 (N,) top-1 class
    in_top3: np.ndarray  # bool (N,) true class among the three most probable
    true_confidence: np.ndarray  # float32 (N,) probability of the true class
    map_samples: np.ndarray  # float32 (N, P) the true class's map on the drawing grid
    map_correlation: np.ndarray | None = None  # float64 (N,) vs the reference; NaN if undefined


def _model_input_size(gradcam: Any) -> tuple[int, int]:
    """The model's input height and width (64 x 64 for the shipped model)."""
    height, width = gradcam.model.input_shape[1:3]
    if height is None or width is None:
        return 64, 64
    return int(height), int(width)


def _render_level(
    data: AuditData,
    grids: list[np.ndarray],
    spec: RenderSpec,
    input_spec: InputSpec,
    seed: int,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Both paths' model inputs (N, H, W, C) and grid points in their frames (N, P, 2)."""
    size = min(input_spec.height, input_spec.width)
    # to_model_input centres its fitted square on the longer side of a non-square frame.
    frame_offset = np.array(
        [(input_spec.width - size) // 2, (input_spec.height - size) // 2], np.float64
    )
    generator = np.random.default_rng(seed)
    inputs: dict[str, list[np.ndarray]] = {path: [] for path in PATHS}
    points: dict[str, list[np.ndarray]] = {path: [] for path in PATHS}
    for strokes, grid in zip(data.strokes, grids):
        rendering = render(strokes, spec, generator)
        canvas_xy = grid @ rendering.matrix.T + rendering.offset
        # docs/usage_guide.md's snippet, verbatim (with the model's input size).
        snippet = np.array(Image.fromarray(rendering.canvas).convert("L").resize((size, size)))
        inputs["snippet"].append(snippet.reshape(size, size, 1) / 255.0)
        points["snippet"].append(snippet_coordinates(canvas_xy, spec.canvas, size))
        inputs["to_model_input"].append(to_model_input(rendering.canvas, spec=input_spec))
        geometry = fit_geometry(rendering.canvas)
        points["to_model_input"].append(
            fitted_coordinates(canvas_xy, geometry, size) + frame_offset
        )
    return (
        {path: np.stack(images).astype(np.float32) for path, images in inputs.items()},
        {path: np.stack(values) for path, values in points.items()},
    )


def _explain_path(
    gradcam: Any, images: np.ndarray, points: np.ndarray, labels: np.ndarray, batch_size: int
) -> PathOutcome:
    """Batched Grad-CAM of the true class; top-1/top-3/confidence and maps on the grid."""
    predicted, in_top3, confidence, samples = [], [], [], []
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        result = gradcam.explain(images[start:stop], labels[start:stop])
        probabilities = result.probabilities
        truth = labels[start:stop]
        true_probability = probabilities[np.arange(len(truth)), truth]
        # Rank of the true class = how many classes are strictly more probable.
        rank = (probabilities > true_probability[:, None]).sum(axis=1)
        predicted.append(probabilities.argmax(axis=1))
        in_top3.append(rank < 3)
        confidence.append(true_probability)
        samples.append(sample_maps(result.heatmaps, points[start:stop]))
    return PathOutcome(
        np.concatenate(predicted).astype(np.int64),
        np.concatenate(in_top3),
        np.concatenate(confidence).astype(np.float32),
        np.concatenate(samples),
    )


def measure(
    gradcam: Any,
    data: AuditData,
    factors: Sequence[Factor] = FACTORS,
    batch_size: int = 256,
    seed: int = 0,
) -> tuple[dict[RenderSpec, dict[str, PathOutcome]], dict[str, float]]:
    """Render and explain every distinct level once (the reference first); return outcomes.

    Returns:
        Outcomes per spec and path (with map correlations against the reference), and the
        seconds spent explaining and waiting for renderings.
    """
    input_spec = gradcam.input_spec
    grids = [drawing_grid(strokes) for strokes in data.strokes]
    specs = list(dict.fromkeys([REFERENCE] + [lvl.spec for f in factors for lvl in f.levels]))
    outcomes: dict[RenderSpec, dict[str, PathOutcome]] = {}
    seconds = {"rendering_waited": 0.0, "explaining": 0.0}

    def render_level(number: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return _render_level(data, grids, specs[number], input_spec, seed + number)

    # The next level renders in a thread while this one is explained: Pillow, numpy and
    # TensorFlow release the GIL, so the two overlap where cores allow.
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(render_level, 0)
        for number, spec in enumerate(specs):
            start = time.perf_counter()
            inputs, points = pending.result()
            seconds["rendering_waited"] += time.perf_counter() - start
            if number + 1 < len(specs):
                pending = pool.submit(render_level, number + 1)
            start = time.perf_counter()
            outcomes[spec] = {}
            for path in PATHS:
                outcome = _explain_path(
                    gradcam, inputs[path], points[path], data.labels, batch_size
                )
                reference = outcomes[REFERENCE][path] if spec != REFERENCE else outcome
                outcomes[spec][path] = replace(
                    outcome,
                    map_correlation=rank_correlation(outcome.map_samples, reference.map_samples),
                )
            seconds["explaining"] += time.perf_counter() - start
            logger.info("audited %s (%d of %d levels)", spec, number + 1, len(specs))
    return outcomes, seconds


def _scores(outcome: PathOutcome, labels: np.ndarray, rows: np.ndarray) -> dict[str, Any]:
    """Top-1, top-3, mean true-class probability and mean map correlation over ``rows``."""
    correlations = outcome.map_correlation[rows] if outcome.map_correlation is not None else []
    defined = np.asarray(correlations)[np.isfinite(correlations)]
    return {
        "count": int(rows.sum()),
        "top1": round(float(np.mean(outcome.predicted[rows] == labels[rows])), 4),
        "top3": round(float(np.mean(outcome.in_top3[rows])), 4),
        "true_confidence": round(float(np.mean(outcome.true_confidence[rows])), 4),
        "map_rank_correlation": round(float(defined.mean()), 4) if defined.size else None,
    }


def _absorbing_classes(
    worst: PathOutcome, reference: PathOutcome, labels: np.ndarray, class_names: Sequence[str]
) -> list[dict[str, Any]]:
    """Predicted classes that gain the most wrong predictions at the worst level."""
    classes = len(class_names)
    wrong_worst = np.bincount(worst.predicted[worst.predicted != labels], minlength=classes)
    wrong_reference = np.bincount(
        reference.predicted[reference.predicted != labels], minlength=classes
    )
    gained = wrong_worst - wrong_reference
    order = np.argsort(-gained, kind="stable")[:ABSORBING_COUNT]
    return [
        {"class": class_names[index], "gained_wrong_predictions": int(gained[index])}
        for index in order
        if gained[index] > 0
    ]


def summarise(
    outcomes: dict[RenderSpec, dict[str, PathOutcome]],
    data: AuditData,
    class_names: Sequence[str],
    factors: Sequence[Factor] = FACTORS,
) -> dict[str, Any]:
    """The audit as JSON-ready data: per factor, level, path and class; spreads and flags."""
    labels = data.labels
    present = sorted(set(labels.tolist()))
    everything = np.ones(len(labels), bool)
    report: dict[str, Any] = {"factors": {}, "flags": []}
    for factor in factors:
        levels = []
        for level in factor.levels:
            paths = {}
            for path in PATHS:
                outcome = outcomes[level.spec][path]
                scores = _scores(outcome, labels, everything)
                scores["per_class"] = {
                    class_names[index]: _scores(outcome, labels, labels == index)
                    for index in present
                }
                paths[path] = scores
            levels.append(
                {
                    "level": level.label,
                    "value": level.value,
                    "reference": level.spec == REFERENCE,
                    "paths": paths,
                }
            )
        spreads, flags = {}, []
        for path in PATHS:
            top1 = np.array([entry["paths"][path]["top1"] for entry in levels])
            spread = round(float(top1.max() - top1.min()) * 100, 2)
            spreads[path] = spread
            if spread <= SPREAD_LIMIT_POINTS:
                continue
            worst, best = int(top1.argmin()), int(top1.argmax())
            absorbing = _absorbing_classes(
                outcomes[factor.levels[worst].spec][path],
                outcomes[REFERENCE][path],
                labels,
                class_names,
            )
            gone_to = ", ".join(
                f"{entry['class']} (+{entry['gained_wrong_predictions']})" for entry in absorbing
            )
            flags.append(
                {
                    "factor": factor.name,
                    "path": path,
                    "spread_points": spread,
                    "best_level": factor.levels[best].label,
                    "worst_level": factor.levels[worst].label,
                    "absorbing_classes": absorbing,
                    "message": (
                        f"{factor.name} via {path}: top-1 {top1[best]:.0%} at "
                        f"{factor.levels[best].label} but {top1[worst]:.0%} at "
                        f"{factor.levels[worst].label} ({spread:.0f} points), likely a shortcut"
                        + (f"; errors go to {gone_to}" if gone_to else "")
                    ),
                }
            )
        report["factors"][factor.name] = {
            "description": factor.description,
            "reference": factor.reference_label,
            "levels": levels,
            "top1_spread_points": spreads,
            "flagged": bool(flags),
        }
        report["flags"].extend(flags)
    return report


def run_audit(
    gradcam: Any,
    data: AuditData,
    class_names: Sequence[str],
    factors: Sequence[Factor] = FACTORS,
    batch_size: int = 256,
    seed: int = 0,
) -> dict[str, Any]:
    """Measure and summarise: the whole ``audit.json`` content but the caller's own fields."""
    start = time.perf_counter()
    outcomes, seconds = measure(gradcam, data, factors, batch_size, seed)
    report = summarise(outcomes, data, class_names, factors)
    size, _ = _model_input_size(gradcam)
    # The label check reads the reference rendering through the one preprocessing path.
    answered = outcomes[REFERENCE]["to_model_input"].predicted
    matrix = confusion_matrix(data.labels, answered, len(class_names))
    return {
        "paths": {
            "snippet": f"np.array(Image.fromarray(canvas).convert('L').resize(({size}, {size})))"
            " / 255.0",
            "to_model_input": "src.data.preprocess.to_model_input(canvas)",
        },
        "layer": gradcam.layer_name,
        "method": gradcam.method,
        "drawings": len(data.labels),
        "drawings_per_class": data.counts,
        "skipped_files": data.skipped_files,
        "unreadable_files": data.unreadable_files,
        "spread_limit_points": SPREAD_LIMIT_POINTS,
        "reference": asdict(REFERENCE),
        "label_check": check_labels(matrix, list(class_names)),
        **report,
        "seconds": {
            **{name: round(value, 2) for name, value in seconds.items()},
            "total": round(time.perf_counter() - start, 2),
        },
    }
