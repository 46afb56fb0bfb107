"""Production monitoring for the web app: log the attention of low-confidence requests.

When ``WebSettings.monitor_threshold`` is above 0, every ``/predict`` or ``/predict_with_gradcam``
answer whose top confidence falls below it is appended to ``monitor_log`` (JSON Lines, rotated,
safe with several server processes) through ``analysis_from_cam`` and ``log_attention_pattern``.
The heatmap the request already computed is reused; ``/predict`` computes one only when it logs.
"""

from __future__ import annotations

import logging
import uuid

import numpy as np

from src.web.deps import Engine, SketchResult

logger = logging.getLogger(__name__)


def should_log(engine: Engine, confidence: float) -> bool:
    """True when monitoring is on and ``confidence`` is below its threshold."""
    threshold = engine.settings.monitor_threshold
    return threshold > 0 and confidence < threshold


def monitor_request(
    engine: Engine,
    sketch: np.ndarray,
    result: SketchResult,
    method: str | None = None,
    layer: str | None = None,
) -> str | None:
    """Append the request's attention to the log if its confidence is low.

    Args:
        engine: the serving engine (settings, labels, Grad-CAMs).
        sketch: the model input (H, W, 1) the request was answered for.
        result: the request's probabilities and, when already computed, its heatmap.
        method: the CAM method of ``result.heatmap`` (default the server's).
        layer: its target layer (default the model's last spatial layer).

    Returns:
        The image id written to the log, or None when nothing was logged. A log that cannot be
        written is reported in the server log; the request itself still succeeds.
    """
    from src.monitoring.attention_log import analysis_from_cam, log_attention_pattern

    confidence = float(np.max(result.probabilities))
    if not should_log(engine, confidence):
        return None
    if result.heatmap is None:
        result = engine.explain(sketch, method, layer, class_index=None)
    request_id = f"request-{uuid.uuid4().hex[:12]}"
    analysis = analysis_from_cam(
        engine.explainer.seen(sketch),
        result.heatmap,  # type: ignore[arg-type]
        result.probabilities,
        engine.labels.class_names,
        gradcam=engine.cam(method, layer),
    )
    # The open-set verdict, so a log summary can tell "unsure but known" from "not sure".
    analysis["recognised"] = result.recognised
    analysis["open_set_score"] = round(result.open_set_score, 5)
    try:
        log_attention_pattern(analysis, request_id, engine.settings.monitor_log, save_overlay=False)
    except OSError as error:
        logger.warning("cannot write the attention log %s: %s", engine.settings.monitor_log, error)
        return None
    return request_id
