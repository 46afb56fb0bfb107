"""Fuzz the HTTP API: schemathesis from the app's own OpenAPI schema, and hostile bodies.

Properties, whatever the request: no 5xx, no uncaught exception, and every rejection a 4xx JSON
``{"success": false, "error": "<message>"}``. ``SKETCH_FUZZ_EXAMPLES`` sets the examples per
operation (25 here; ``make fuzz`` runs 2000).
"""

from __future__ import annotations

import base64
import io
import json
import os
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

# Subprocesses, training or long fuzzing: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

EXAMPLES = int(os.environ.get("SKETCH_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SKETCH_ENDPOINTS = ("/predict_with_gradcam", "/analyze_class", "/predict")


def _settings(model_path: Path, labels_path: Path):  # type: ignore[no-untyped-def]
    from src.web.settings import WebSettings

    # Small limits, so the fuzzers reach them quickly.
    return WebSettings(
        model_path=model_path,
        label_mapping=labels_path,
        max_body_bytes=300_000,
        max_image_pixels=1_000_000,
        max_stroke_points=5_000,
        batch_max_wait_ms=0.0,
        warm_up=False,
    )


@pytest.fixture(scope="module")
def app(sketch_model_path: Path, sketch_labels_path: Path):  # type: ignore[no-untyped-def]
    from src.web.app import create_app

    return create_app(_settings(sketch_model_path, sketch_labels_path))


@pytest.fixture(scope="module")
def client(app):  # type: ignore[no-untyped-def]
    with TestClient(app, raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def api_schema(app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_asgi("/openapi.json", app)


# The operations docs/usage_guide.md requires; the schema may document more, and all of them are fuzzed.
REQUIRED_OPERATIONS = {
    ("POST", "/predict_with_gradcam"),
    ("POST", "/analyze_class"),
    ("POST", "/predict"),
    ("GET", "/classes"),
    ("GET", "/health"),
}
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
RESPONSE_CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]


def _content_type(response: Any) -> str:
    """The Content-Type of a TestClient or schemathesis response (whose headers hold lists)."""
    value = response.headers.get("content-type", "")
    return value[0] if isinstance(value, list) else value


def assert_handled(response: Any) -> None:
    """Never a 5xx; a rejection is a JSON 4xx with success false and a non-empty message."""
    status = response.status_code
    assert status < 500, f"{status}: {response.text[:300]}"
    if status >= 400:
        assert _content_type(response).startswith("application/json"), response.text
        body = response.json()
        assert body["success"] is False, body
        assert isinstance(body["error"], str) and body["error"].strip(), body


# --- schemathesis: every operation, generated from /openapi.json -------------------------------


def _operations(api_schema) -> list:  # type: ignore[no-untyped-def]
    return [result.ok() for result in api_schema.get_all_operations()]


def test_schema_documents_the_spec_operations(api_schema) -> None:  # type: ignore[no-untyped-def]
    found = {(operation.method.upper(), operation.path) for operation in _operations(api_schema)}
    assert REQUIRED_OPERATIONS <= found


# One test per mode looping over the operations, because schemathesis.pytest.from_fixture
# breaks on pytest 9 (it reads request.node._nodeid) and the schema needs the model fixture.
@pytest.mark.parametrize("mode", MODES, ids=lambda mode: mode.value)
def test_schema_fuzz_never_5xx_and_conforms(api_schema, mode: schemathesis.GenerationMode) -> None:  # type: ignore[no-untyped-def]
    for operation in _operations(api_schema):
        if mode is schemathesis.GenerationMode.NEGATIVE and not len(operation.body.items):
            continue  # nothing to make invalid in a GET without parameters

        @FUZZ
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: schemathesis.Case) -> None:
            response = case.call()
            assert_handled(response)
            # The documented status codes, content types and bodies (ErrorResponse for 4xx).
            case.validate_response(response, checks=RESPONSE_CHECKS)

        check()


# --- hypothesis: hostile bodies posted with TestClient ------------------------------------------


def _png(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


def _png_header_only(width: int, height: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG whose IHDR claims width x height over a few bytes of pixel data."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        body = kind + payload
        return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


def _sketch(seed: int, size: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = np.full((size, size), 255, np.uint8)
    top, left = rng.integers(0, size // 2, 2)
    image[top : top + size // 3, left : left + 3] = 0
    return Image.fromarray(image)


def _animated_gif(seed: int) -> bytes:
    frames = [_sketch(seed), _sketch(seed + 1), _sketch(seed + 2)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=50)
    return buffer.getvalue()


def _exif_rotated_jpeg(seed: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buffer = io.BytesIO()
    _sketch(seed).save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


VALID_IMAGE_BYTES = st.integers(0, 10_000).flatmap(
    lambda seed: st.sampled_from(
        [
            _png(_sketch(seed)),
            _png(_sketch(seed).convert("P")),  # palette
            _png(_sketch(seed).convert("LA")),
            _png(Image.fromarray(np.asarray(_sketch(seed)).astype(np.uint16) * 257)),  # 16-bit
            _png(Image.new("L", (1, 1), seed % 256)),  # 1x1
            _animated_gif(seed),
            _exif_rotated_jpeg(seed),
        ]
    )
)


@st.composite
def hostile_image_bytes(draw: st.DrawFn) -> bytes:
    """Corrupt, truncated, huge-header, or odd-but-valid encoded images."""
    kind = draw(
        st.sampled_from(["random", "truncated", "header", "valid", "bitflip", "prefix_garbage"])
    )
    if kind == "random":
        return draw(st.binary(max_size=512))
    if kind == "header":
        side = draw(st.sampled_from([(1, 1), (20000, 20000), (100000, 1), (1, 100000), (0, 5)]))
        depth, colour = draw(st.sampled_from([(8, 0), (16, 0), (8, 3), (1, 0), (16, 6)]))
        return _png_header_only(*side, bit_depth=depth, colour=colour)
    valid = draw(VALID_IMAGE_BYTES)
    if kind == "truncated":
        return valid[: draw(st.integers(0, len(valid) - 1))]
    if kind == "bitflip":
        data = bytearray(valid)
        for _ in range(draw(st.integers(1, 8))):
            data[draw(st.integers(0, len(data) - 1))] ^= 1 << draw(st.integers(0, 7))
        return bytes(data)
    if kind == "prefix_garbage":
        return draw(st.binary(min_size=1, max_size=16)) + valid
    return valid


def _image_text(data: bytes, style: str) -> str:
    encoded = base64.b64encode(data).decode()
    if style == "data_url":
        return "data:image/png;base64," + encoded
    if style == "wrapped":
        return "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))
    return encoded


ENCODED_IMAGE = st.builds(
    _image_text, hostile_image_bytes(), st.sampled_from(["plain", "data_url", "wrapped"])
)
IMAGE_TEXT = st.one_of(
    ENCODED_IMAGE,
    ENCODED_IMAGE,
    ENCODED_IMAGE,  # weighted: most cases should reach the image decoder
    st.text(max_size=200),  # not base64 at all
    st.sampled_from(["", "data:image/png;base64,", "====", "data:,", "AAAA" * 3]),
)
COORDINATE = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-(10**15), 10**15),
    st.sampled_from([0, 255, -1, 1e308, -1e308]),
)
STROKES = st.one_of(
    st.just([]),
    st.lists(st.lists(st.lists(COORDINATE, max_size=8), max_size=4), max_size=5),
    st.lists(  # well formed, possibly one point, possibly duplicate points
        st.integers(1, 6).flatmap(
            lambda n: st.lists(
                st.lists(st.integers(-300, 600), min_size=n, max_size=n), min_size=2, max_size=3
            )
        ),
        min_size=1,
        max_size=4,
    ),
    st.just([[[0] * 6000, [0] * 6000]]),  # over max_stroke_points
)
JSON_SCALAR = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=20))
EXTRA_FIELDS = st.fixed_dictionaries(
    {},
    optional={
        "method": st.one_of(
            st.sampled_from(["gradcam", "GradCAM++", "eigencam", "nope", ""]), JSON_SCALAR
        ),
        "layer": st.one_of(st.sampled_from(["last_conv", "logits", "nope", "../x"]), JSON_SCALAR),
        "top_k": st.one_of(st.integers(-5, 2000), JSON_SCALAR),
        "class_index": st.one_of(st.integers(-3, 10**20), JSON_SCALAR),
        "class_name": st.one_of(st.sampled_from(["circle", "LINE", "../../evil", ""]), JSON_SCALAR),
    },
)


@st.composite
def hostile_body(draw: st.DrawFn, endpoint: str) -> Any:
    """A JSON body: a hostile image or strokes, sometimes odd options, rarely not an object."""
    if draw(st.integers(0, 19)) == 0:
        return draw(st.one_of(JSON_SCALAR, st.lists(JSON_SCALAR, max_size=3)))
    body: dict[str, Any] = draw(EXTRA_FIELDS) if draw(st.integers(0, 3)) == 0 else {}
    if endpoint == "/analyze_class" and "class_index" not in body and "class_name" not in body:
        body["class_index"] = draw(st.integers(0, 3))  # reach the decoder, not the validator
    source = draw(st.sampled_from(["image", "image", "strokes", "both"]))
    if source != "strokes":
        body["image"] = draw(IMAGE_TEXT)
    if source != "image":
        body["strokes"] = draw(STROKES)
    return body


def post_json(client: TestClient, endpoint: str, body: Any) -> Any:
    """POST ``body`` encoded by Python's json, which writes NaN and Infinity as a hostile client may
    (httpx's ``json=`` refuses them); FastAPI's parser accepts those tokens."""
    return client.post(
        endpoint, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(SKETCH_ENDPOINTS))
def test_hostile_bodies_are_rejected_cleanly(
    client: TestClient, data: st.DataObject, endpoint: str
) -> None:
    body = data.draw(hostile_body(endpoint), label="body")
    response = post_json(client, endpoint, body)
    assert_handled(response)
    if response.status_code == 200:
        data = response.json()
        assert data["success"] is True
        if data.get("empty"):
            # Nothing drawn (a blank picture): no verdict and no number, never a class.
            assert data["recognised"] is False
            assert all(data.get(key) is None for key in ("confidence", "prediction"))
            return
        for key in ("confidence", "predicted_confidence"):
            if key in data:
                assert 0.0 <= data[key] <= 1.0


@FUZZ
@given(
    endpoint=st.sampled_from(SKETCH_ENDPOINTS),
    raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "application/x-www-form-urlencoded", "image/png", ""]
    ),
)
def test_raw_bodies_are_rejected_cleanly(
    client: TestClient, endpoint: str, raw: bytes, content_type: str
) -> None:
    response = client.post(endpoint, content=raw, headers={"content-type": content_type})
    assert_handled(response)


# --- fixed cases the properties above must cover, with their expected status ---------------------


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


FIXED_CASES = [
    # (id, body, expected status, a word the error must contain)
    ("20000x20000 header", {"image": _b64(_png_header_only(20000, 20000))}, 413, "pixels"),
    ("1x1 png", {"image": _b64(_png(Image.new("L", (1, 1), 255)))}, 200, None),
    ("zero-width header", {"image": _b64(_png_header_only(0, 5))}, 400, "image"),
    ("16-bit palette header", {"image": _b64(_png_header_only(64, 64, 16, 3))}, 400, "image"),
    ("truncated png", {"image": _b64(_png(_sketch(1))[:60])}, 400, "image"),
    ("animated gif", {"image": _b64(_animated_gif(3))}, 200, None),
    ("exif jpeg", {"image": _b64(_exif_rotated_jpeg(4))}, 200, None),
    ("nan stroke", {"strokes": [[[1.0, float("nan")], [2.0, 3.0]]]}, 400, "NaN"),
    ("empty strokes", {"strokes": []}, 400, "no strokes"),
    ("empty stroke", {"strokes": [[[], []]]}, 400, None),
    ("huge coordinate", {"strokes": [[[1e300, 0], [0, 1]]]}, 400, "beyond"),
    ("too many points", {"strokes": [[[0] * 6000, [0] * 6000]]}, 413, "points"),
    ("ragged stroke", {"strokes": [[[1, 2, 3], [1]]]}, 400, "equally long"),
    ("huge class_index", {"strokes": [[[0, 9], [0, 9]]], "class_index": 10**30}, 404, None),
]


@pytest.mark.parametrize(
    ("body", "status", "word"),
    [case[1:] for case in FIXED_CASES],
    ids=[case[0] for case in FIXED_CASES],
)
def test_fixed_hostile_cases(client: TestClient, body: dict, status: int, word: str | None) -> None:
    endpoint = "/analyze_class" if "class_index" in body else "/predict_with_gradcam"
    response = post_json(client, endpoint, body)
    assert_handled(response)
    assert response.status_code == status, response.text
    if word is not None:
        assert word.lower() in response.json()["error"].lower()
