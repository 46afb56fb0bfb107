"""HTTP routes: schemas in and out, core calls only.

The three batched routes are ``async``: a canvas-sized sketch is decoded, queued for the batch
and rendered on the event loop (large inputs go to the threadpool, see ``Engine.*_async``), so
one server process has one thread doing Python work instead of many fighting over the
interpreter lock (``python -m bench.web_load --workers 1`` measures the throughput).
The other routes are plain ``def`` and run in the threadpool.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from fastapi import APIRouter
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from src.inference.predictor import rank_classes
from src.visualization.cam_methods import METHODS
from src.visualization.target_layers import list_conv_layers
from src.web.deps import Engine, EngineDep, SketchResult
from src.web.monitoring import monitor_request, should_log
from src.web.schemas import (
    AnalyzeRequest,
    AnalyzeResponse,
    CamOptions,
    ClassesResponse,
    ErrorResponse,
    GradcamRequest,
    GradcamResponse,
    HealthResponse,
    PredictRequest,
    PredictResponse,
    TopPrediction,
    input_convention,
)

STATIC_DIR = Path(__file__).resolve().parent / "static"
ERRORS = {status: {"model": ErrorResponse} for status in (400, 404, 413, 415, 422, 500, 503)}

router = APIRouter(responses=ERRORS)


def _ranking(engine: EngineDep, result: SketchResult, top_k: int) -> dict[str, object]:
    """The prediction fields shared by /predict and /predict_with_gradcam."""
    top = rank_classes(result.probabilities, engine.labels, top_k)
    return {
        "prediction": top[0].class_name,
        "class_index": top[0].class_index,
        "confidence": top[0].confidence,
        "recognised": result.recognised,
        "open_set_score": result.open_set_score,
        "top_predictions": [
            TopPrediction(
                class_name=item.class_name,
                probability=item.confidence,
                class_index=item.class_index,
            )
            for item in top
        ],
    }


def nothing_drawn(engine: Engine, sketch: np.ndarray) -> bool:
    """Whether the sketch holds no ink (the service's one rule): answered "nothing drawn"."""
    return bool(engine.explainer.empty_inputs(sketch)[0])


@router.get("/", include_in_schema=False)
def index() -> FileResponse:
    """The drawing page."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def _cam_images(
    engine: EngineDep, sketch: np.ndarray, result: SketchResult, body: CamOptions
) -> dict[str, str]:
    """The rendered maps plus the method and resolved layer that produced them."""
    heatmap, overlay, shown = await engine.render_async(sketch, result.heatmap)  # type: ignore[arg-type]
    cam = engine.cam(body.method, body.layer)
    return {
        "gradcam_heatmap": heatmap,
        "gradcam_overlay": overlay,
        "input_image": shown,
        "method": cam.method,
        "layer": cam.layer_name,
    }


async def _monitor(
    engine: EngineDep,
    sketch: np.ndarray,
    result: SketchResult,
    method: str | None = None,
    layer: str | None = None,
) -> None:
    """Log a low-confidence answer's attention, in the threadpool: it writes a file and may run
    a Grad-CAM of its own."""
    if should_log(engine, float(np.max(result.probabilities))):
        await run_in_threadpool(monitor_request, engine, sketch, result, method, layer)


@router.post("/predict_with_gradcam", response_model=GradcamResponse)
async def predict_with_gradcam(body: GradcamRequest, engine: EngineDep) -> GradcamResponse:
    """Classify a sketch and explain the predicted class with a Grad-CAM heatmap and overlay."""
    sketch = await engine.model_input_async(body.image, body.strokes)
    if nothing_drawn(engine, sketch):
        return GradcamResponse(empty=True, recognised=False)
    result = await engine.explain_async(sketch, body.method, body.layer, class_index=None)
    await _monitor(engine, sketch, result, body.method, body.layer)
    return GradcamResponse(
        **_ranking(engine, result, body.top_k),  # type: ignore[arg-type]
        **await _cam_images(engine, sketch, result, body),  # type: ignore[arg-type]
    )


@router.post("/analyze_class", response_model=AnalyzeResponse)
async def analyze_class(body: AnalyzeRequest, engine: EngineDep) -> AnalyzeResponse:
    """Explain one class (by index or name), whatever the model predicts."""
    wanted = (
        body.class_index if body.class_name is None else engine.labels.index_of(body.class_name)
    )
    sketch = await engine.model_input_async(body.image, body.strokes)
    if nothing_drawn(engine, sketch):
        name = engine.labels.name_of(wanted)  # an unknown class is still a 404
        return AnalyzeResponse(empty=True, recognised=False, class_name=name, class_index=wanted)
    result = await engine.explain_async(sketch, body.method, body.layer, class_index=wanted)
    probabilities, predicted = result.probabilities, int(result.probabilities.argmax())
    return AnalyzeResponse(
        class_name=engine.labels.name_of(result.class_index),
        class_index=result.class_index,
        confidence=float(probabilities[result.class_index]),
        predicted_class=engine.labels.name_of(predicted),
        predicted_confidence=float(probabilities[predicted]),
        recognised=result.recognised,
        open_set_score=result.open_set_score,
        **await _cam_images(engine, sketch, result, body),  # type: ignore[arg-type]
    )


@router.post("/predict", response_model=PredictResponse)
async def predict(body: PredictRequest, engine: EngineDep) -> PredictResponse:
    """Classify a sketch: the top class and the top-k ranking, no map."""
    sketch = await engine.model_input_async(body.image, body.strokes)
    if nothing_drawn(engine, sketch):
        return PredictResponse(empty=True, recognised=False)
    result = await engine.predict_async(sketch)
    await _monitor(engine, sketch, result)
    return PredictResponse(**_ranking(engine, result, body.top_k))  # type: ignore[arg-type]


@router.get("/classes", response_model=ClassesResponse)
def classes(engine: EngineDep) -> ClassesResponse:
    """The class names in the model's output order."""
    names = list(engine.labels.class_names)
    return ClassesResponse(classes=names, num_classes=len(names))


@router.get("/health", response_model=HealthResponse)
def health(engine: EngineDep) -> HealthResponse:
    """Liveness plus what the drawing page offers: methods and layers."""
    model, settings = engine.predictor.model, engine.settings
    return HealthResponse(
        model=str(model.name),
        num_classes=len(engine.labels),
        methods=list(METHODS),
        default_method=settings.default_method,
        layers=list_conv_layers(model),
        default_layer=engine.cam(None, None).layer_name,
        batch_max_size=settings.batch_max_size,
        open_set=engine.explainer.open_set_rule.describe(),
        input=input_convention(engine.explainer.input_spec),
    )
