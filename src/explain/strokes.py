"""Stroke attribution: how much of a class activation map falls on each stroke of a drawing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from src.data.input_spec import InputSpec
from src.data.preprocess import INK_THRESHOLD, strokes_to_model_input, to_model_input
from src.data.raster import (
    DEFAULT_LINE_WIDTH,
    render_stroke_masks,
    render_strokes,
    validate_strokes,
)
from src.errors import InvalidImageError

# The constant ink level given to the whole drawing when masks are carried into the model's frame.
_CARRIER_LEVEL = 0.2
# Stroke masks ride on the carrier at this scale, so every value stays below 1 (no clipping).
_MASK_SCALE = 0.5


@dataclass(frozen=True)
class StrokeAttribution:
    """Per-stroke share of one class's map for one drawing."""

    class_index: int
    probabilities: np.ndarray  # (C,) the model's output for the whole drawing
    image: np.ndarray  # (H, W, 1) the model input of the whole drawing
    heatmap: np.ndarray  # (H, W) in [0, 1]
    masks: np.ndarray  # (S, H, W) in [0, 1], stroke k's ink in the model input's frame
    masses: np.ndarray  # (S,) heat summed over each stroke's ink (ink-weighted)
    mean_heat: np.ndarray  # (S,) heat averaged over each stroke's ink

    @property
    def shares(self) -> np.ndarray:
        """Each stroke's mass as a fraction of the total (zeros when the map is empty)."""
        total = float(self.masses.sum())
        return self.masses / total if total > 0 else np.zeros_like(self.masses)

    @property
    def ranking(self) -> np.ndarray:
        """Stroke indices, most important first (ties keep drawing order)."""
        return np.argsort(-self.masses, kind="stable")


def stroke_masks(
    strokes: object, spec: InputSpec | int, line_width: float = DEFAULT_LINE_WIDTH
) -> np.ndarray:
    """Each stroke's ink, float32 (S, H, W) in [0, 1], in the frame of the model input.

    ``strokes_to_model_input`` renders the drawing and then lets ``to_model_input`` crop and fit
    it again. That fit is linear once its crop box is fixed, and the box depends only on which
    pixels are ink. So each stroke mask rides on a constant "carrier" drawn on the whole
    drawing's ink (same box), and subtracting the carrier alone leaves the mask, transformed
    exactly as the drawing was.

    Args:
        strokes: ``[[xs, ys], ...]``.
        spec: the model's ``InputSpec`` (its frame), or a side for a square frame.
        line_width: pen width at a 64-pixel output, as ``strokes_to_model_input``.
    """
    frame = spec if isinstance(spec, InputSpec) else InputSpec(spec, spec)
    # Ink intensities in the model's frame: light ink, 0-1, one channel encodes as the identity.
    ink_frame = replace(frame, channels=1, ink="light", value_range="0-1")
    side = min(frame.height, frame.width)
    width = line_width * side / 64
    whole = render_strokes(strokes, size=side, line_width=width).astype(np.float32) / 255.0
    masks = render_stroke_masks(strokes, size=side, line_width=width).astype(np.float32) / 255.0
    carrier = np.where(whole > INK_THRESHOLD, _CARRIER_LEVEL, 0.0).astype(np.float32)
    base = to_model_input(carrier, spec=ink_frame)[..., 0]
    carried = [
        (to_model_input(carrier + _MASK_SCALE * mask, spec=ink_frame)[..., 0] - base) / _MASK_SCALE
        for mask in masks
    ]
    return np.clip(np.stack(carried), 0.0, 1.0).astype(np.float32)


def attribute_strokes(
    strokes: object, gradcam: Any, class_index: int | None = None
) -> StrokeAttribution:
    """Score each stroke by the map's mass on its own pixels.

    Args:
        strokes: ``[[xs, ys], ...]`` (Quick, Draw! format, any coordinate range).
        gradcam: a ``GradCAM``; the drawing is fed in its ``input_spec``.
        class_index: class to explain; default the predicted class.

    Returns:
        StrokeAttribution with masses, mean heat and shares per stroke.

    Raises:
        InvalidImageError: malformed strokes.
        UnknownClassError: class index out of range.
    """
    spec = gradcam.input_spec
    image = strokes_to_model_input(strokes, spec=spec)
    result = gradcam.explain(image[np.newaxis], class_index)
    heatmap = result.heatmaps[0]
    masks = stroke_masks(strokes, spec)
    masses = (masks * heatmap).sum(axis=(1, 2))
    ink = masks.sum(axis=(1, 2))
    mean_heat = np.divide(masses, ink, out=np.zeros_like(masses), where=ink > 0)
    return StrokeAttribution(
        class_index=int(result.class_indices[0]),
        probabilities=result.probabilities[0],
        image=image,
        heatmap=heatmap,
        masks=masks,
        masses=masses.astype(np.float32),
        mean_heat=mean_heat.astype(np.float32),
    )


def attribution_to_dict(attribution: StrokeAttribution, class_names: Any = None) -> dict[str, Any]:
    """JSON-ready summary for the CLI and the web page (strokes in drawing order, with rank)."""
    rank_of = {int(index): rank for rank, index in enumerate(attribution.ranking, start=1)}
    index = attribution.class_index
    return {
        "class_index": index,
        "class_name": str(class_names[index]) if class_names is not None else str(index),
        "confidence": float(attribution.probabilities[index]),
        "strokes": [
            {
                "stroke_index": stroke,
                "rank": rank_of[stroke],
                "mass": round(float(attribution.masses[stroke]), 4),
                "share": round(float(attribution.shares[stroke]), 4),
                "mean_heat": round(float(attribution.mean_heat[stroke]), 4),
            }
            for stroke in range(len(attribution.masses))
        ],
    }


@dataclass(frozen=True)
class DeletionCheck:
    """Mean drop of the explained class's probability when one stroke is deleted."""

    drawings: int
    mean_drop_top: float  # deleting the top-ranked stroke
    mean_drop_random: float  # deleting a uniformly random stroke (the top one included)
    top_beats_random: float  # fraction of drawings where the top deletion drops more

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON."""
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


def stroke_deletion_check(drawings: Any, gradcam: Any, seed: int = 0) -> DeletionCheck:
    """Over drawings of two or more strokes: does deleting the top stroke hurt most?

    Each drawing is explained for its predicted class; the drawing without its top-ranked
    stroke and without a random stroke are re-rendered (so they are fitted as the model would
    see them) and scored in one batch.

    Args:
        drawings: iterable of stroke lists.
        gradcam: a ``GradCAM``.
        seed: seed of the random stroke choice.

    Raises:
        InvalidImageError: if no drawing has two or more strokes.
    """
    rng = np.random.default_rng(seed)
    spec = gradcam.input_spec
    reduced, classes, full_scores = [], [], []
    for strokes in drawings:
        arrays = validate_strokes(strokes)
        if len(arrays) < 2:
            continue
        attribution = attribute_strokes(strokes, gradcam)
        top = int(attribution.ranking[0])
        chosen = int(rng.integers(len(arrays)))
        for removed in (top, chosen):
            kept = [stroke for index, stroke in enumerate(strokes) if index != removed]
            reduced.append(strokes_to_model_input(kept, spec=spec))
        classes.append(attribution.class_index)
        full_scores.append(float(attribution.probabilities[attribution.class_index]))
    if not classes:
        raise InvalidImageError("stroke deletion needs drawings with at least two strokes")
    probabilities = gradcam.predict(np.stack(reduced)).reshape(len(classes), 2, -1)
    picked = probabilities[np.arange(len(classes)), :, np.asarray(classes)]
    drops = np.asarray(full_scores)[:, np.newaxis] - picked
    return DeletionCheck(
        drawings=len(classes),
        mean_drop_top=float(drops[:, 0].mean()),
        mean_drop_random=float(drops[:, 1].mean()),
        top_beats_random=float((drops[:, 0] > drops[:, 1]).mean()),
    )
