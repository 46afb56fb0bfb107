"""``create_app(settings)``: the FastAPI application, its lifespan, error boundary and body limit."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from src.errors import InvalidImageError, LayerNotFoundError, SketchError, UnknownClassError
from src.web.batcher import BatcherClosedError
from src.web.deps import Engine, ImageTooLargeError, ServiceUnavailableError
from src.web.explain_routes import router as explain_router
from src.web.routes import STATIC_DIR, router
from src.web.settings import WebSettings

logger = logging.getLogger(__name__)

# Most specific first: the first matching class decides the status.
SKETCH_ERROR_STATUS: tuple[tuple[type[SketchError], int], ...] = (
    (ImageTooLargeError, 413),
    (InvalidImageError, 400),
    (UnknownClassError, 404),
    (LayerNotFoundError, 404),
    (SketchError, 400),
)


def create_app(settings: WebSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app; the model loads in its lifespan (or ``engine`` is used if already loaded).

    Args:
        settings: limits and paths; default ``WebSettings()`` (``SKETCH_*`` environment variables).
        engine: an engine loaded beforehand (``python -m src.web`` loads it to fail fast).

    Returns:
        The FastAPI application; nothing is loaded until it starts.
    """
    settings = settings or WebSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engine = engine or Engine.load(settings)
        try:
            yield
        finally:
            app.state.engine.close()

    app = FastAPI(
        title="SketchCAM",
        summary="Sketch recognition with Grad-CAM explanations",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.add_middleware(BodySizeLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_exception_handler(SketchError, _sketch_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(ServiceUnavailableError, _unavailable)
    app.add_exception_handler(BatcherClosedError, _unavailable)
    app.add_exception_handler(Exception, _internal_error)
    app.include_router(router)
    app.include_router(explain_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def error_response(status: int, message: str) -> JSONResponse:
    """The one error body: ``{"success": false, "error": "..."}``."""
    return JSONResponse({"success": False, "error": message}, status_code=status)


def _sketch_error(request: Request, error: SketchError) -> JSONResponse:
    """User errors (bad image, unknown class or layer) to 4xx."""
    status = next(code for kind, code in SKETCH_ERROR_STATUS if isinstance(error, kind))
    return error_response(status, str(error))


def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
    """Schema errors to 422, one readable line per problem."""
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item.get("loc", ()) if part != "body")
        message = str(item.get("msg", "invalid value")).removeprefix("Value error, ")
        if item.get("type") == "json_invalid":
            message = "request body is not valid JSON"
        elif item.get("type") == "model_attributes_type":
            message = "request body must be a JSON object (send Content-Type: application/json)"
        problems.append(f"{where}: {message}" if where else message)
    return error_response(422, "; ".join(problems) or "invalid request")


# FastAPI's words for a body its JSON decoder gave up on (nesting beyond Python's recursion limit).
UNPARSED_BODY = "There was an error parsing the body"


def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
    """404, 405 and friends in the same JSON shape."""
    if error.status_code == 400 and error.detail == UNPARSED_BODY:
        return error_response(
            400,
            "request body could not be decoded as JSON (nested too deeply or malformed); send "
            'a JSON object such as {"strokes": [[[x...], [y...]]]}',
        )
    return error_response(error.status_code, str(error.detail))


def _unavailable(request: Request, error: Exception) -> JSONResponse:
    """The engine timed out or is shutting down."""
    return error_response(503, str(error))


def _internal_error(request: Request, error: Exception) -> JSONResponse:
    """A bug, not the client's fault: log it, answer without internals."""
    logger.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=error)
    return error_response(500, "internal server error (logged on the server)")


class BodySizeLimitMiddleware:
    """Refuse request bodies over ``max_body_bytes`` with 413, by Content-Length or as they stream.

    The body is read here, counted, then replayed to the app, so a chunked upload without a
    Content-Length cannot get past the limit either.
    """

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await self._reject(scope, send)
            return
        chunks: list[bytes] = []
        size, more = 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                await self._reject(scope, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, _replay(b"".join(chunks), receive), send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        """Send the 413 JSON error."""
        response = error_response(
            413, f"request body is larger than {self.max_body_bytes:,} bytes; send a smaller image"
        )
        await response(scope, _no_body, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive callable that returns the buffered body once, then defers to the real one."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


async def _no_body() -> Message:
    """Receive for a response sent without reading the request."""
    return {"type": "http.disconnect"}
