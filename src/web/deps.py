"""The serving engine (the explainer service behind a batcher, decoding, rendering) and its
FastAPI dependencies.

Routes only translate HTTP to these calls; everything here composes core calls: the service's
``model_input`` for decoded images and strokes, its ``explain``/``classify`` on batched input,
and ``overlay``'s one colormap helper for the returned PNGs.
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import re
from dataclasses import dataclass
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, Request
from PIL import Image

from src.data.preprocess import load_image
from src.data.raster import count_points
from src.errors import InvalidImageError
from src.service.explainer import Explainer
from src.web.batcher import Batcher
from src.web.settings import WebSettings

logger = logging.getLogger(__name__)

# "data:image/png;base64," and friends, as canvas.toDataURL() and FileReader produce.
DATA_URL_PREFIX = re.compile(r"^\s*data:[^,]{0,200}?;base64,", re.IGNORECASE)
PREDICT_ONLY = "predict"  # batch key kind for plain classification
# Sketches up to this size are decoded on the event loop (see ``Engine.model_input_async``):
# a 256x256 canvas PNG is ~10,000 base64 characters, a long Quick, Draw! drawing ~1,000 points.
INLINE_IMAGE_CHARACTERS = 200_000
# Images declaring more pixels than this are decoded in the threadpool, whatever their body size.
INLINE_IMAGE_PIXELS = 1024 * 1024
INLINE_STROKE_POINTS = 5_000
INLINE_RENDER_SCALE = 2


class ImageTooLargeError(InvalidImageError):
    """An image has more pixels than the server accepts (mapped to 413)."""


class ServiceUnavailableError(RuntimeError):
    """The engine did not answer in time or is shutting down (mapped to 503)."""


@dataclass(frozen=True)
class SketchResult:
    """What the engine returns for one sketch: class probabilities and, if asked, its map."""

    probabilities: np.ndarray  # (C,)
    heatmap: np.ndarray | None  # (H, W) in [0, 1]
    class_index: int  # the class the map explains (the predicted one for plain predictions)
    # The open-set verdict for the top class (src.inference.open_set).
    recognised: bool = True
    open_set_score: float = float("nan")


class Engine:
    """The serving side of one ``Explainer`` (the service does every prediction and map): its
    batcher, request decoding and PNG rendering.

    Args:
        explainer: the loaded model, labels and cached CAMs.
        settings: limits, batching and defaults.
    """

    def __init__(self, explainer: Explainer, settings: WebSettings) -> None:
        self.explainer = explainer
        self.predictor = explainer.predictor
        self.labels = explainer.labels
        self.settings = settings
        self.batcher = Batcher(
            self._compute, settings.batch_max_size, settings.batch_max_wait_ms / 1000.0
        )

    @classmethod
    def load(cls, settings: WebSettings) -> Engine:
        """Load the model and labels, build the default Grad-CAM and warm it up.

        Raises:
            ModelLoadError, LabelMappingError, LayerNotFoundError: the model cannot be served.
        """
        explainer = Explainer.from_files(
            settings.model_path,
            settings.label_mapping,
            default_method=settings.default_method,
            ink=settings.ink,
            value_range=settings.value_range,
        )
        engine = cls(explainer, settings)
        engine.cam(settings.default_method, None)
        if settings.warm_up:
            blank = np.zeros((1, *explainer.model.input_shape[1:]), np.float32)
            explainer.explain(blank)
            explainer.classify(blank)
        logger.info("serving %s with %d classes", settings.model_path, len(engine.labels))
        return engine

    def close(self) -> None:
        """Stop the batch worker."""
        self.batcher.close()

    def cam(self, method: str | None, layer: str | None) -> Any:
        """The Explainer's GradCAM for (method, layer) (built on first use and cached there).

        Raises:
            LayerNotFoundError: if the layer is not in the model.
        """
        return self.explainer.cam(method or self.settings.default_method, layer)

    def model_input(self, image: str | None, strokes: list[Any] | None) -> np.ndarray:
        """The model's input from strokes (preferred) or a base64 image, in the service's
        ``input_spec``.

        Raises:
            InvalidImageError: bad base64, not an image, malformed strokes.
            ImageTooLargeError: more pixels or stroke points than the settings allow.
        """
        if strokes is not None:
            points = count_points(strokes)
            if points > self.settings.max_stroke_points:
                raise ImageTooLargeError(
                    f"drawing has {points:,} points; at most {self.settings.max_stroke_points:,} "
                    "are accepted (simplify the strokes)"
                )
            return self.explainer.model_input(strokes=strokes)
        data = decode_base64_image(image or "")
        check_pixel_count(data, self.settings.max_image_pixels)
        return self.explainer.model_input(load_image(data))

    def explain(
        self, sketch: np.ndarray, method: str | None, layer: str | None, class_index: int | None
    ) -> SketchResult:
        """Probabilities and the Grad-CAM map of ``class_index`` (None: the predicted class)."""
        return self._wait(self._submit_explain(sketch, method, layer, class_index))

    async def explain_async(
        self, sketch: np.ndarray, method: str | None, layer: str | None, class_index: int | None
    ) -> SketchResult:
        """``explain`` for ``async`` routes: awaits the batch instead of blocking a thread."""
        return await self._await(self._submit_explain(sketch, method, layer, class_index))

    def predict(self, sketch: np.ndarray) -> SketchResult:
        """Probabilities only (no map), batched like the rest."""
        return self._wait(self.batcher.submit((PREDICT_ONLY, None), sketch))

    async def predict_async(self, sketch: np.ndarray) -> SketchResult:
        """``predict`` for ``async`` routes."""
        return await self._await(self.batcher.submit((PREDICT_ONLY, None), sketch))

    async def model_input_async(self, image: str | None, strokes: list[Any] | None) -> np.ndarray:
        """``model_input`` for ``async`` routes: a canvas-sized sketch is decoded right on the
        event loop, anything bigger in the threadpool.

        Decoding a canvas-sized PNG costs less than a trip through the threadpool, and many
        request threads fighting over the interpreter lock slow the whole server down. A phone
        photo takes long enough to stall every other request, so it still goes to a thread
        (bench/web_load.py measures both paths).
        """
        from starlette.concurrency import run_in_threadpool

        small = (
            count_points(strokes) <= INLINE_STROKE_POINTS
            if strokes is not None
            else len(image or "") <= INLINE_IMAGE_CHARACTERS
            and _declared_pixels(image or "") <= INLINE_IMAGE_PIXELS
        )
        if small:
            return self.model_input(image, strokes)
        return await run_in_threadpool(self.model_input, image, strokes)

    def render(self, sketch: np.ndarray, heatmap: np.ndarray) -> tuple[str, str, str]:
        """(heatmap, overlay, input) as PNG data URLs, through the project's one colormap helper."""
        from src.visualization.overlay import (
            heatmap_to_rgb,
            overlay_heatmap,
            sketch_for_display,
            to_png_bytes,
        )

        scale = self.settings.image_scale
        # What the model sees at its own size, whatever its ink and value range.
        seen = self.explainer.seen(sketch)
        return (
            png_data_url(to_png_bytes(heatmap_to_rgb(heatmap), scale)),
            png_data_url(to_png_bytes(overlay_heatmap(seen, heatmap), scale)),
            png_data_url(to_png_bytes(sketch_for_display(seen), scale)),
        )

    async def render_async(self, sketch: np.ndarray, heatmap: np.ndarray) -> tuple[str, str, str]:
        """``render`` for ``async`` routes: on the event loop at the usual scales (three small
        PNGs encode faster than a threadpool trip), in the threadpool when ``image_scale`` makes
        them large."""
        from starlette.concurrency import run_in_threadpool

        if self.settings.image_scale <= INLINE_RENDER_SCALE:
            return self.render(sketch, heatmap)
        return await run_in_threadpool(self.render, sketch, heatmap)

    async def within_deadline(self, function: Any, *args: Any) -> Any:
        """``function(*args)`` in the threadpool, or 503 once ``request_timeout_s`` has passed.

        The client gets its answer by the deadline either way. A thread cannot be stopped from
        outside, so a late computation finishes in the background; the routes bound their work
        before starting, which bounds how long that takes.
        """
        import asyncio

        from starlette.concurrency import run_in_threadpool

        limit = self.settings.request_timeout_s
        try:
            return await asyncio.wait_for(run_in_threadpool(function, *args), limit)
        except TimeoutError as error:
            raise ServiceUnavailableError(
                f"the explanation took longer than the server's limit of {limit:g} s; send a "
                "simpler drawing (fewer strokes or points) or raise SKETCH_REQUEST_TIMEOUT_S"
            ) from error

    async def _await(self, future: Any) -> SketchResult:
        """The batch result awaited on the event loop, or 503 like ``_wait``."""
        import asyncio

        try:
            return await asyncio.wait_for(  # type: ignore[no-any-return]
                asyncio.wrap_future(future), self.settings.request_timeout_s
            )
        except TimeoutError as error:
            raise ServiceUnavailableError("the model is busy; retry shortly") from error

    def _submit_explain(
        self, sketch: np.ndarray, method: str | None, layer: str | None, class_index: int | None
    ) -> Any:
        """Queue one Grad-CAM job; unknown classes and layers fail here, before queueing."""
        from src.visualization.targets import ClassTarget

        method = self.cam(method, layer).method  # an unknown layer or method fails here
        if class_index is not None:
            self.labels.name_of(class_index)  # raises UnknownClassError before queueing
        target = None if class_index is None else ClassTarget(int(class_index))
        return self.batcher.submit(("cam", (method, layer)), sketch, target)

    def _wait(self, future: Any) -> SketchResult:
        """The batch result, or 503 when the engine is stuck or shutting down."""
        from concurrent.futures import TimeoutError as FutureTimeout

        try:
            return future.result(timeout=self.settings.request_timeout_s)  # type: ignore[no-any-return]
        except FutureTimeout as error:
            raise ServiceUnavailableError("the model is busy; retry shortly") from error

    def _compute(self, key: Any, images: np.ndarray, targets: list[Any]) -> list[SketchResult]:
        """Batch worker: one forward (and backward) pass for a group of same-key sketches."""
        kind, cam_key = key
        if kind == PREDICT_ONLY:
            probabilities, verdicts = self.explainer.classify(images)
            return [
                SketchResult(row, None, int(np.argmax(row)), verdict.recognised, verdict.score)
                for row, verdict in zip(probabilities, verdicts)
            ]
        method, layer = cam_key
        result = self.explainer.explain(images, targets, method, layer)
        verdicts = self.explainer.open_set(result)
        return [
            SketchResult(
                result.probabilities[row],
                result.heatmaps[row],
                int(result.class_indices[row]),
                verdicts[row].recognised,
                verdicts[row].score,
            )
            for row in range(len(images))
        ]


def _declared_pixels(image: str) -> int:
    """The pixel count an image's header declares (0 when unreadable: decoding reports that).

    A small body can still declare a huge image (a 17 KB PNG of 24,000 x 650 pixels): the
    decoded size, not the body size, decides whether decoding may block the event loop.
    """
    try:
        with Image.open(io.BytesIO(decode_base64_image(image))) as opened:
            width, height = opened.size
    except (InvalidImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return 0
    return int(width) * int(height)


def decode_base64_image(text: str) -> bytes:
    """Bytes of a base64 image, with or without a ``data:`` URL prefix.

    Raises:
        InvalidImageError: if the text is empty or not base64.
    """
    prefix = DATA_URL_PREFIX.match(text)
    if prefix is not None:
        # "data:text/html;base64,..." is not a sketch, whatever its bytes decode to.
        mime = prefix.group(0).strip()[len("data:") :].split(";", 1)[0].strip().lower()
        if mime and not mime.startswith("image/"):
            raise InvalidImageError(
                f"'image' is a data URL of type {mime[:60]!r}; send an image/png or image/jpeg one"
            )
    payload = "".join(DATA_URL_PREFIX.sub("", text, count=1).split())
    if not payload:
        raise InvalidImageError("'image' is empty: send a base64 PNG or JPEG")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as error:
        raise InvalidImageError(f"'image' is not valid base64 ({error})") from error


def check_pixel_count(data: bytes, max_pixels: int) -> None:
    """Refuse an image whose header declares more than ``max_pixels`` before decoding it.

    Unreadable data passes through: ``load_image`` then reports it with the right message.
    """
    try:
        with Image.open(io.BytesIO(data)) as probe:
            width, height = probe.size
    except Image.DecompressionBombError as error:
        raise ImageTooLargeError(f"image refused as a decompression bomb ({error})") from error
    except (OSError, ValueError, SyntaxError, EOFError):
        return
    if width * height > max_pixels:
        raise ImageTooLargeError(
            f"image is {width}x{height} pixels; at most {max_pixels:,} pixels are accepted "
            "(resize it first)"
        )


def png_data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


async def get_engine(request: Request) -> Engine:
    """The engine loaded in the app's lifespan.

    ``async`` although it never awaits: FastAPI runs a plain ``def`` dependency in the
    threadpool, an extra round trip per request that lowers a busy server's requests/s.
    """
    return request.app.state.engine  # type: ignore[no-any-return]


EngineDep = Annotated[Engine, Depends(get_engine)]
