"""Web settings: defaults for the shipped model, overridable by ``SKETCH_*`` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from src.config import DEFAULT_LABELS_PATH, DEFAULT_MODEL_PATH
from src.monitoring.attention_log import default_log_path


class WebSettings(BaseSettings):
    """Everything ``create_app`` needs; ``SKETCH_MODEL_PATH=... python -m src.web`` overrides one."""

    # "model_" would clash with pydantic's protected namespace; these names are the flags of
    # docs/usage_guide.md.
    model_config = SettingsConfigDict(env_prefix="SKETCH_", protected_namespaces=(), frozen=True)

    model_path: Path = DEFAULT_MODEL_PATH
    label_mapping: Path = DEFAULT_LABELS_PATH
    # The model's input convention (``--ink``/``--value_range``); None: its card's, else the
    # defaults (dark ink, 0-1).
    ink: Literal["dark", "light"] | None = None
    value_range: Literal["0-1", "0-255", "-1-1"] | None = None
    # Request bodies above this are refused with 413 (a phone photo as base64 fits easily).
    max_body_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    # Images with more pixels are refused before decoding (decompression bombs, huge scans).
    max_image_pixels: int = Field(default=16_777_216, ge=64 * 64)
    # Stroke drawings with more points are refused before rasterising.
    max_stroke_points: int = Field(default=50_000, ge=2)
    # The batcher gathers up to this many concurrent requests into one engine call...
    batch_max_size: int = Field(default=16, ge=1, le=256)
    # ...waiting at most this long for company once other requests are known to be on the way.
    batch_max_wait_ms: float = Field(default=5.0, ge=0.0, le=1000.0)
    # A client that has not sent its complete request headers this long after connecting (or
    # after its previous request) gets 408 and is disconnected (src.web.header_timeout).
    header_timeout_s: float = Field(default=10.0, gt=0.0)
    # Seconds a request waits for its batch, or an explanation route for its computation,
    # before giving up with 503.
    request_timeout_s: float = Field(default=30.0, gt=0.0)
    # On SIGTERM each worker finishes its requests in flight for at most this long; then they
    # are cancelled, and a worker still running a little later is killed (src.web.workers).
    shutdown_grace_s: float = Field(default=20.0, gt=0.0)
    default_method: str = "gradcam"
    # Returned PNGs are enlarged by this nearest-neighbour factor; 1 keeps the 64x64 model size
    # (the page scales it smoothly, and every doubling adds PNG encoding time).
    image_scale: int = Field(default=1, ge=1, le=8)
    # Monitoring: /predict and /predict_with_gradcam answers whose top confidence is below this
    # get their attention appended to ``monitor_log`` (0 turns it off; above 1 logs every request).
    monitor_threshold: float = Field(default=0.0, ge=0.0)
    # Default: $SKETCHCAM_LOG_DIR/attention.jsonl, else logs/attention.jsonl in the working folder.
    monitor_log: Path = Field(default_factory=default_log_path)
    # Build and run the default Grad-CAM once at start-up, so the first request is not slow.
    warm_up: bool = True
