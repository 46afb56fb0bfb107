"""Sketch-explanation routes: stroke importance, the per-stroke timeline, and "why A not B".

Each route runs its work in the threadpool under the server's per-request deadline
(``Engine.within_deadline``) over the core in ``src.explain``; they call the Explainer's cached
Grad-CAMs directly, since each request is one batched call of its own. The work of each is bounded
before it starts: strokes and points by the request schema and settings, and the routes whose
work grows faster than the points (the timeline, stroke importance) by their own limits below.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter

from src.data.raster import count_points
from src.errors import SketchError
from src.explain.contrast import pick_pair
from src.explain.strokes import StrokeAttribution, attribute_strokes, attribution_to_dict
from src.explain.timeline import build_timeline, timeline_to_dict
from src.web.deps import Engine, EngineDep, ImageTooLargeError, png_data_url
from src.web.explain_schemas import (
    ClassChoice,
    ComparedClass,
    CompareRequest,
    CompareResponse,
    ExplainStrokesRequest,
    ExplainStrokesResponse,
    TimelineRequest,
    TimelineResponse,
)
from src.web.routes import ERRORS, nothing_drawn

# Side of the stroke-importance PNG: the drawing's own frame, sharper than the 64x64 model input.
STROKE_IMAGE_SIZE = 192
STROKE_IMAGE_LINE_WIDTH = 6.0

router = APIRouter(responses=ERRORS)


def _overlay_url(engine: Engine, image: np.ndarray, heatmap: np.ndarray) -> str:
    """The map over the model input as a PNG data URL (the project's one colormap helper)."""
    from src.visualization.overlay import overlay_heatmap, to_png_bytes

    seen = engine.explainer.seen(image)
    return png_data_url(to_png_bytes(overlay_heatmap(seen, heatmap), engine.settings.image_scale))


def stroke_importance_rgb(strokes: Any, values: np.ndarray) -> np.ndarray:
    """The drawing on white paper, each stroke coloured by its value (jet, red = highest).

    The page passes each stroke's mean map value along its ink (``mean_heat``): a short stroke
    under the hot spot is red even when a long, cooler stroke holds more of the map in total.
    Values are scaled by the highest; strokes are painted from lowest to highest, so the hot
    ones stay on top.

    Returns:
        uint8 RGB (STROKE_IMAGE_SIZE, STROKE_IMAGE_SIZE, 3).
    """
    from src.data.raster import render_stroke_masks
    from src.visualization.overlay import heatmap_to_rgb

    masks = render_stroke_masks(
        strokes, size=STROKE_IMAGE_SIZE, line_width=STROKE_IMAGE_LINE_WIDTH
    ).astype(np.float32)
    masks /= 255.0
    peak = float(values.max()) if values.size and values.max() > 0 else 1.0
    colours = heatmap_to_rgb(values / peak).astype(np.float32)  # (S, 3)
    canvas = np.full((STROKE_IMAGE_SIZE, STROKE_IMAGE_SIZE, 3), 255.0, np.float32)
    for stroke in np.argsort(values, kind="stable"):
        alpha = masks[stroke][..., np.newaxis]
        canvas = canvas * (1.0 - alpha) + colours[stroke] * alpha
    return canvas.round().astype(np.uint8)


def stroke_importance_image(strokes: Any, attribution: StrokeAttribution) -> np.ndarray:
    """The strokes coloured by the mean map value along each (the page's colours too)."""
    return stroke_importance_rgb(strokes, attribution.mean_heat)


def _class_index(engine: Engine, choice: ClassChoice) -> int | None:
    """A class given by index or name as an index (None stays None).

    Raises:
        UnknownClassError: unknown name or index out of range (404).
    """
    if choice is None:
        return None
    if isinstance(choice, str):
        return engine.labels.index_of(choice)
    engine.labels.name_of(choice)
    return int(choice)


# Stroke importance draws the sketch several times (once per stroke mask, once for the model, once
# coloured at a larger size), so it allows fewer points than a plain prediction.
MAX_EXPLAINED_POINTS = 20_000


def _check_explained_points(strokes: list) -> None:
    """Refuse (413) stroke importance for more points than the bound allows."""
    points = count_points(strokes)
    if points > MAX_EXPLAINED_POINTS:
        raise ImageTooLargeError(
            f"stroke importance explains at most {MAX_EXPLAINED_POINTS:,} points "
            f"({points:,} sent); simplify the strokes (Quick, Draw!'s simplified format has a few "
            "dozen points a stroke)"
        )


@router.post("/explain_strokes", response_model=ExplainStrokesResponse)
async def explain_strokes(body: ExplainStrokesRequest, engine: EngineDep) -> ExplainStrokesResponse:
    """How much of a class's Grad-CAM map falls on each stroke (default the predicted class)."""
    return await engine.within_deadline(_explain_strokes, body, engine)  # type: ignore[no-any-return]


def _explain_strokes(body: ExplainStrokesRequest, engine: Engine) -> ExplainStrokesResponse:
    """``/explain_strokes``'s work (in the threadpool)."""
    from src.visualization.overlay import to_png_bytes

    sketch = engine.model_input(None, body.strokes)  # validates the strokes and point limit
    _check_explained_points(body.strokes)
    wanted = _class_index(
        engine, body.class_name if body.class_name is not None else body.class_index
    )
    if nothing_drawn(engine, sketch):
        return ExplainStrokesResponse(empty=True)
    cam = engine.cam(body.method, body.layer)
    attribution = attribute_strokes(body.strokes, cam, wanted)
    summary = attribution_to_dict(attribution, engine.labels.class_names)
    predicted = int(np.argmax(attribution.probabilities))
    image = stroke_importance_image(body.strokes, attribution)
    return ExplainStrokesResponse(
        class_name=summary["class_name"],
        class_index=summary["class_index"],
        confidence=summary["confidence"],
        predicted_class=engine.labels.name_of(predicted),
        predicted_confidence=float(attribution.probabilities[predicted]),
        strokes=summary["strokes"],
        stroke_image=png_data_url(to_png_bytes(image)),
        gradcam_overlay=_overlay_url(engine, attribution.image, attribution.heatmap),
        method=cam.method,
        layer=cam.layer_name,
    )


# Each timeline step re-renders every point drawn so far, so its work grows with strokes x
# points; beyond this bound one request would hold a worker for many seconds.
MAX_TIMELINE_STROKE_POINTS = 200_000


def _check_timeline_work(strokes: list) -> None:
    """Refuse (413) a timeline whose prefixes would render more than the bound allows."""
    points = count_points(strokes)
    work = len(strokes) * points
    if work > MAX_TIMELINE_STROKE_POINTS:
        raise ImageTooLargeError(
            f"a timeline of {len(strokes)} strokes and {points:,} points is too much work "
            f"(strokes x points {work:,} > {MAX_TIMELINE_STROKE_POINTS:,}); send fewer strokes "
            "or simplify them (Quick, Draw!'s simplified format has a few dozen points a stroke)"
        )


@router.post("/timeline", response_model=TimelineResponse)
async def timeline(body: TimelineRequest, engine: EngineDep) -> TimelineResponse:
    """The prediction, its confidence, the top classes and the map after each stroke."""
    return await engine.within_deadline(_timeline, body, engine)  # type: ignore[no-any-return]


def _timeline(body: TimelineRequest, engine: Engine) -> TimelineResponse:
    """``/timeline``'s work (in the threadpool)."""
    sketch = engine.model_input(None, body.strokes)  # validates the strokes and point limit
    _check_timeline_work(body.strokes)
    if nothing_drawn(engine, sketch):
        return TimelineResponse(empty=True)
    cam = engine.cam(body.method, body.layer)
    result = build_timeline(body.strokes, cam)
    summary = timeline_to_dict(result, engine.labels.class_names, top_k=body.top_k)
    for step, (image, heatmap) in zip(summary["steps"], zip(result.images, result.heatmaps)):
        step["gradcam_overlay"] = _overlay_url(engine, image, heatmap)
    return TimelineResponse(**summary, method=cam.method, layer=cam.layer_name)


@router.post("/compare", response_model=CompareResponse)
async def compare(body: CompareRequest, engine: EngineDep) -> CompareResponse:
    """Why class A and not class B: the contrastive map of logit(A) - logit(B), both ways."""
    return await engine.within_deadline(_compare, body, engine)  # type: ignore[no-any-return]


def _compare(body: CompareRequest, engine: Engine) -> CompareResponse:
    """``/compare``'s work (in the threadpool)."""
    if len(engine.labels) < 2:
        raise SketchError("comparing needs a model with at least two classes")
    sketch = engine.model_input(body.image, body.strokes)
    first, second = _class_index(engine, body.class_a), _class_index(engine, body.class_b)
    if first is not None and first == second:
        raise SketchError("'class_a' and 'class_b' must be two different classes")
    if nothing_drawn(engine, sketch):
        return CompareResponse(empty=True)
    cam = engine.cam(body.method, body.layer)
    probabilities = engine.predict(sketch).probabilities
    first, second = pick_pair(probabilities, first, second)
    result = engine.explainer.contrast(sketch, first, second, cam.method, body.layer)
    heatmap_for, overlay_for, shown = engine.render(sketch, result.heatmaps[0])
    heatmap_against, overlay_against, _ = engine.render(sketch, result.against[0])

    def side(index: int) -> ComparedClass:
        return ComparedClass(
            class_name=engine.labels.name_of(index),
            class_index=index,
            confidence=float(result.probabilities[0][index]),
        )

    return CompareResponse(
        class_a=side(first),
        class_b=side(second),
        logit_margin=float(result.logit_margin[0]),
        contrast_heatmap=heatmap_for,
        contrast_overlay=overlay_for,
        against_heatmap=heatmap_against,
        against_overlay=overlay_against,
        input_image=shown,
        method=cam.method,
        layer=cam.layer_name,
    )
