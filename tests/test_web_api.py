"""The web API through FastAPI's TestClient on the small 64x64 sketch model."""

from __future__ import annotations

import base64
import io
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.conftest import TINY_CLASSES, draw_circle_strokes, draw_square_strokes

DATA_URL = "data:image/png;base64,"


@pytest.fixture(scope="module")
def client(sketch_model_path: Path, sketch_labels_path: Path):  # type: ignore[no-untyped-def]
    """The app on the small model, started (lifespan run) once for the module."""
    from src.web.app import create_app
    from src.web.settings import WebSettings

    settings = WebSettings(
        model_path=sketch_model_path,
        label_mapping=sketch_labels_path,
        max_body_bytes=200_000,
        max_image_pixels=1_000_000,
        batch_max_wait_ms=20.0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def png_base64(sketches_dir: Path, name: str = "square") -> str:
    """A black-on-white sketch PNG from the fixture model's directory, base64 without prefix."""
    return base64.b64encode((sketches_dir / name / "0.png").read_bytes()).decode()


@pytest.fixture(scope="module")
def square_png(sketch_model_dir: Path) -> str:
    return png_base64(sketch_model_dir / "sketches", "square")


def encode(image: Image.Image, format: str = "PNG") -> str:
    buffer = io.BytesIO()
    image.save(buffer, format=format)
    return base64.b64encode(buffer.getvalue()).decode()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a huge size over a tiny compressed body: a decompression bomb."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    body = zlib.compress(b"\x00" * 1000)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")
    )


def decode_png(data_url: str) -> np.ndarray:
    """The pixels of a ``data:image/png;base64,`` URL."""
    assert data_url.startswith(DATA_URL)
    image = Image.open(io.BytesIO(base64.b64decode(data_url[len(DATA_URL) :])))
    assert image.format == "PNG"
    return np.asarray(image)


def assert_png_data_url(value: str) -> None:
    assert decode_png(value).shape[1] >= 64


def test_predict_with_gradcam_has_the_spec_fields(client: TestClient, square_png: str) -> None:
    response = client.post("/predict_with_gradcam", json={"image": square_png})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True
    assert data["prediction"] in TINY_CLASSES
    assert 0.0 <= data["confidence"] <= 1.0
    assert data["class_index"] == TINY_CLASSES.index(data["prediction"])
    top = data["top_predictions"]
    assert [item["class"] for item in top][0] == data["prediction"]
    assert {"class", "probability", "class_index"} <= set(top[0])
    assert len(top) == 3 and sum(item["probability"] for item in top) == pytest.approx(1, abs=1e-4)
    for key in ("gradcam_heatmap", "gradcam_overlay", "input_image"):
        assert_png_data_url(data[key])
    assert data["method"] == "gradcam" and data["layer"]


def test_data_url_prefix_and_plain_base64_agree(client: TestClient, square_png: str) -> None:
    plain = client.post("/predict_with_gradcam", json={"image": square_png}).json()
    prefixed = client.post("/predict_with_gradcam", json={"image": DATA_URL + square_png}).json()
    assert prefixed["success"] and prefixed["prediction"] == plain["prediction"]
    assert prefixed["confidence"] == pytest.approx(plain["confidence"], abs=1e-6)
    assert prefixed["gradcam_heatmap"] == plain["gradcam_heatmap"]


def test_jpeg_is_accepted(client: TestClient, sketch_model_dir: Path) -> None:
    image = Image.open(sketch_model_dir / "sketches" / "circle" / "0.png").convert("RGB")
    response = client.post(
        "/predict_with_gradcam", json={"image": encode(image, "JPEG"), "top_k": 2}
    )
    assert response.status_code == 200 and len(response.json()["top_predictions"]) == 2


def test_strokes_are_rendered_by_the_project_rasteriser(client: TestClient) -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.inference.predictor import Predictor

    response = client.post("/predict_with_gradcam", json={"strokes": draw_circle_strokes()})
    assert response.status_code == 200, response.text
    engine = client.app.state.engine  # type: ignore[attr-defined]
    expected = engine.predictor.predict(strokes_to_model_input(draw_circle_strokes()))[0]
    assert isinstance(engine.predictor, Predictor)
    assert response.json()["prediction"] == expected.class_name
    assert response.json()["confidence"] == pytest.approx(expected.confidence, abs=1e-5)


@pytest.mark.parametrize("method", ["gradcam++", "eigencam", "scorecam"])
def test_other_methods(client: TestClient, method: str) -> None:
    response = client.post(
        "/predict_with_gradcam", json={"strokes": draw_square_strokes(), "method": method}
    )
    assert response.status_code == 200, response.text
    assert response.json()["method"] == method


def test_layer_can_be_chosen(client: TestClient) -> None:
    layers = client.get("/health").json()["layers"]
    response = client.post(
        "/predict_with_gradcam", json={"strokes": draw_square_strokes(), "layer": layers[0]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["layer"] == layers[0]


@pytest.mark.parametrize(
    "selector", [{"class_index": 1}, {"class_name": "line"}, {"class_name": "LINE"}]
)
def test_analyze_class_by_index_and_name(
    client: TestClient, square_png: str, selector: dict
) -> None:
    response = client.post("/analyze_class", json={"image": square_png, **selector})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True and data["class_name"] == "line" and data["class_index"] == 1
    assert 0.0 <= data["confidence"] <= 1.0 and data["predicted_class"] in TINY_CLASSES
    assert_png_data_url(data["gradcam_heatmap"])
    assert_png_data_url(data["gradcam_overlay"])


def test_analyze_class_maps_differ_by_class(client: TestClient, square_png: str) -> None:
    maps = {
        name: client.post("/analyze_class", json={"image": square_png, "class_name": name}).json()
        for name in TINY_CLASSES
    }
    confidences = [maps[name]["confidence"] for name in TINY_CLASSES]
    assert sum(confidences) == pytest.approx(1.0, abs=1e-4)
    assert len({maps[name]["gradcam_heatmap"] for name in TINY_CLASSES}) > 1


def test_predict_classes_and_health(client: TestClient) -> None:
    predict = client.post("/predict", json={"strokes": draw_square_strokes(), "top_k": 1}).json()
    assert predict["success"] and len(predict["top_predictions"]) == 1
    assert "gradcam_heatmap" not in predict
    classes = client.get("/classes").json()
    assert classes == {"success": True, "classes": list(TINY_CLASSES), "num_classes": 3}
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["num_classes"] == 3
    assert "gradcam" in health["methods"] and health["default_layer"] in health["layers"]


def test_page_docs_and_static_files_are_served(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/predict_with_gradcam", "/analyze_class", "/predict", "/classes", "/health"} <= set(
        paths
    )


BAD_REQUESTS = [
    # (id, endpoint, request kwargs, expected status, words in the error)
    (
        "not json",
        "/predict_with_gradcam",
        {"content": b"{nope", "headers": {"content-type": "application/json"}},
        422,
        "JSON",
    ),
    (
        "form body",
        "/predict_with_gradcam",
        {"content": b"image=abc", "headers": {"content-type": "application/x-www-form-urlencoded"}},
        422,
        "JSON",
    ),
    ("json array", "/predict_with_gradcam", {"json": [1, 2]}, 422, "object"),
    ("no sketch", "/predict_with_gradcam", {"json": {}}, 422, "strokes"),
    ("image not a string", "/predict_with_gradcam", {"json": {"image": 5}}, 422, "image"),
    ("empty image", "/predict_with_gradcam", {"json": {"image": ""}}, 400, "empty"),
    ("bad base64", "/predict_with_gradcam", {"json": {"image": "@@not base64@@"}}, 400, "base64"),
    (
        "not an image",
        "/predict_with_gradcam",
        {"json": {"image": base64.b64encode(b"hello world").decode()}},
        400,
        "not a readable image",
    ),
    (
        "truncated png",
        "/predict_with_gradcam",
        {"json": {"image": base64.b64encode(png_header_only(64, 64)[:40]).decode()}},
        400,
        "image",
    ),
    (
        "decompression bomb",
        "/predict_with_gradcam",
        {"json": {"image": base64.b64encode(png_header_only(100_000, 100_000)).decode()}},
        413,
        "pixels",
    ),
    (
        "too many pixels",
        "/predict_with_gradcam",
        {"json": {"image": base64.b64encode(png_header_only(2000, 2000)).decode()}},
        413,
        "pixels",
    ),
    (
        "unknown method",
        "/predict_with_gradcam",
        {"json": {"strokes": draw_square_strokes(), "method": "magic"}},
        422,
        "unknown method",
    ),
    (
        "unknown layer",
        "/predict_with_gradcam",
        {"json": {"strokes": draw_square_strokes(), "layer": "nope"}},
        404,
        "nope",
    ),
    (
        "top_k zero",
        "/predict_with_gradcam",
        {"json": {"strokes": draw_square_strokes(), "top_k": 0}},
        422,
        "top_k",
    ),
    ("empty strokes", "/predict_with_gradcam", {"json": {"strokes": []}}, 400, "no strokes"),
    (
        "stroke one row",
        "/predict_with_gradcam",
        {"json": {"strokes": [[[1, 2, 3]]]}},
        400,
        "stroke 0",
    ),
    (
        "stroke uneven rows",
        "/predict_with_gradcam",
        {"json": {"strokes": [[[1, 2, 3], [1, 2]]]}},
        400,
        "stroke 0",
    ),
    (
        "stroke not numbers",
        "/predict_with_gradcam",
        {"json": {"strokes": [[["a"], ["b"]]]}},
        422,
        "strokes",
    ),
    (
        "stroke huge coordinate",
        "/predict_with_gradcam",
        {"json": {"strokes": [[[0, 1e300], [0, 1]]]}},
        400,
        "coordinates",
    ),
    (
        "unknown class name",
        "/analyze_class",
        {"json": {"strokes": draw_square_strokes(), "class_name": "giraffe"}},
        404,
        "giraffe",
    ),
    (
        "class index too big",
        "/analyze_class",
        {"json": {"strokes": draw_square_strokes(), "class_index": 3}},
        404,
        "out of range",
    ),
    (
        "negative class index",
        "/analyze_class",
        {"json": {"strokes": draw_square_strokes(), "class_index": -1}},
        422,
        "class_index",
    ),
    (
        "no class",
        "/analyze_class",
        {"json": {"strokes": draw_square_strokes()}},
        422,
        "class_index",
    ),
    (
        "both classes",
        "/analyze_class",
        {"json": {"strokes": draw_square_strokes(), "class_index": 0, "class_name": "line"}},
        422,
        "exactly one",
    ),
    ("predict bad image", "/predict", {"json": {"image": "AAAA"}}, 400, "image"),
    ("unknown route", "/nowhere", {"json": {}}, 404, "Not Found"),
]


@pytest.mark.parametrize(
    ("endpoint", "kwargs", "status", "words"),
    [case[1:] for case in BAD_REQUESTS],
    ids=[case[0] for case in BAD_REQUESTS],
)
def test_bad_input_is_a_4xx_json_error(
    client: TestClient, endpoint: str, kwargs: dict, status: int, words: str
) -> None:
    response = client.post(endpoint, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert words.lower() in body["error"].lower(), body["error"]


def test_wrong_http_method_is_json(client: TestClient) -> None:
    response = client.get("/predict_with_gradcam")
    assert response.status_code == 405 and response.json()["success"] is False


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    response = client.post("/predict_with_gradcam", json={"image": "A" * 300_000})
    assert response.status_code == 413
    assert response.json() == {"success": False, "error": response.json()["error"]}
    assert "larger than" in response.json()["error"]


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"image": "'
        for _ in range(30):
            yield b"A" * 10_000
        yield b'"}'

    response = client.post(
        "/predict_with_gradcam", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["success"] is False


def test_concurrent_requests_are_batched_and_match_single_ones(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    sketches = [draw_square_strokes(), draw_circle_strokes(), [[[0, 255], [0, 255]]]] * 4
    single = [client.post("/predict_with_gradcam", json={"strokes": s}).json() for s in sketches]
    engine = client.app.state.engine  # type: ignore[attr-defined]
    engine.batcher.batch_sizes.clear()
    # The tiny test model computes a batch faster than the event loop decodes the next request,
    # so without a slower engine the requests could reach it one by one, each alone. A real
    # model takes milliseconds per batch, during which the other requests queue up.
    compute = engine.batcher.compute

    def slower_compute(*arguments: object) -> object:
        time.sleep(0.02)
        return compute(*arguments)

    monkeypatch.setattr(engine.batcher, "compute", slower_compute)
    with ThreadPoolExecutor(len(sketches)) as pool:
        together = list(
            pool.map(
                lambda s: client.post("/predict_with_gradcam", json={"strokes": s}).json(), sketches
            )
        )
    assert max(engine.batcher.batch_sizes) > 1, engine.batcher.batch_sizes
    for alone, batched in zip(single, together):
        assert batched["prediction"] == alone["prediction"]
        assert batched["confidence"] == pytest.approx(alone["confidence"], abs=1e-5)
        assert [item["class"] for item in batched["top_predictions"]] == [
            item["class"] for item in alone["top_predictions"]
        ]
        heat_alone, heat_batched = (
            decode_png(result["gradcam_heatmap"]).astype(float) for result in (alone, batched)
        )
        assert np.abs(heat_alone - heat_batched).max() <= 2


def test_mixed_targets_in_one_batch(client: TestClient) -> None:
    requests = [
        ("/analyze_class", {"strokes": draw_square_strokes(), "class_index": index})
        for index in range(3)
    ]
    requests += [
        ("/predict_with_gradcam", {"strokes": draw_square_strokes()}),
        ("/predict", {"strokes": draw_square_strokes()}),
    ]
    with ThreadPoolExecutor(len(requests)) as pool:
        results = list(pool.map(lambda item: client.post(item[0], json=item[1]).json(), requests))
    assert [result["class_index"] for result in results[:3]] == [0, 1, 2]
    assert results[3]["prediction"] == results[4]["prediction"]


def test_missing_model_stops_start_up(tmp_path: Path, sketch_labels_path: Path) -> None:
    from src.errors import ModelLoadError
    from src.web.app import create_app
    from src.web.settings import WebSettings

    app = create_app(
        WebSettings(model_path=tmp_path / "missing.h5", label_mapping=sketch_labels_path)
    )
    with pytest.raises(ModelLoadError, match="not found"):
        with TestClient(app):
            pass


@pytest.mark.parametrize("content", [None, b"not a model at all"])
def test_cli_exits_non_zero_with_one_line(
    tmp_path: Path, sketch_labels_path: Path, capsys, content
) -> None:  # type: ignore[no-untyped-def]
    from src.web.__main__ import main

    model = tmp_path / "model.h5"
    if content is not None:
        model.write_bytes(content)
    status = main(
        ["--model_path", str(model), "--label_mapping", str(sketch_labels_path), "--port", "1"]
    )
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.startswith("error: cannot start the web app:") and "\n" not in error


def test_large_inputs_are_decoded_off_the_event_loop_with_the_same_answer(
    sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path
) -> None:
    """A canvas PNG is decoded on the event loop, a big one in the threadpool: same results."""
    import keras

    from src.data.preprocess import to_model_input
    from src.web.app import create_app
    from src.web.deps import INLINE_IMAGE_CHARACTERS
    from src.web.settings import WebSettings

    sketch = Image.open(sketch_model_dir / "sketches" / "circle" / "0.png").convert("L")
    # The same drawing on a big canvas with faint noise that PNG cannot compress away.
    noise = np.random.default_rng(0).integers(246, 256, size=(700, 700), dtype=np.uint8)
    canvas = Image.fromarray(noise)
    canvas.paste(sketch.resize((350, 350)), (175, 175))
    big = encode(canvas)
    assert len(big) > INLINE_IMAGE_CHARACTERS
    small = encode(sketch)
    assert len(small) <= INLINE_IMAGE_CHARACTERS
    model = keras.models.load_model(sketch_model_path, compile=False)
    settings = WebSettings(model_path=sketch_model_path, label_mapping=sketch_labels_path)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for image, pil_image in ((big, canvas), (small, sketch)):
            response = client.post("/predict", json={"image": image, "top_k": 3})
            assert response.status_code == 200, response.text
            expected = np.asarray(model.predict(to_model_input(pil_image)[np.newaxis], verbose=0))[
                0
            ]
            top = response.json()["top_predictions"]
            assert top[0]["class_index"] == int(expected.argmax())
            for item in top:
                assert item["probability"] == pytest.approx(expected[item["class_index"]], abs=1e-4)


def test_a_batch_that_does_not_answer_in_time_is_503(
    sketch_model_path: Path, sketch_labels_path: Path, square_png: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    import time

    from src.web import deps
    from src.web.app import create_app
    from src.web.deps import PREDICT_ONLY
    from src.web.settings import WebSettings

    # Every batch takes a second, so no answer can be ready within the microsecond timeout
    # however slowly a loaded test machine runs the event loop.
    compute = deps.Engine._compute

    def slow_compute(self, key, images, targets):  # type: ignore[no-untyped-def]
        time.sleep(1.0)
        return compute(self, key, images, targets)

    monkeypatch.setattr(deps.Engine, "_compute", slow_compute)
    settings = WebSettings(
        model_path=sketch_model_path, label_mapping=sketch_labels_path, request_timeout_s=1e-6
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for path in ("/predict_with_gradcam", "/predict"):
            response = client.post(path, json={"image": square_png})
            assert response.status_code == 503, response.text
            assert response.json()["success"] is False and "busy" in response.json()["error"]
        # The requests that gave up cancelled their jobs; the batch worker must still answer.
        engine = client.app.state.engine  # type: ignore[attr-defined]
        sketch = engine.model_input(square_png, None)
        job = engine.batcher.submit((PREDICT_ONLY, None), sketch)
        assert job.result(timeout=10).probabilities.shape == (len(TINY_CLASSES),)


def test_enlarged_maps_are_nearest_neighbour_copies(
    client: TestClient, sketch_model_path: Path, sketch_labels_path: Path, square_png: str
) -> None:
    """``image_scale`` above the inline limit renders in the threadpool; the pixels agree."""
    from src.web.app import create_app
    from src.web.deps import INLINE_RENDER_SCALE
    from src.web.settings import WebSettings

    scale = INLINE_RENDER_SCALE + 2
    settings = WebSettings(
        model_path=sketch_model_path, label_mapping=sketch_labels_path, image_scale=scale
    )
    normal = client.post("/predict_with_gradcam", json={"image": square_png}).json()
    with TestClient(create_app(settings), raise_server_exceptions=False) as enlarged_client:
        enlarged = enlarged_client.post("/predict_with_gradcam", json={"image": square_png}).json()
    for key in ("gradcam_heatmap", "gradcam_overlay", "input_image"):
        small, large = decode_png(normal[key]), decode_png(enlarged[key])
        assert large.shape[:2] == (small.shape[0] * scale, small.shape[1] * scale)
        np.testing.assert_array_equal(large, small.repeat(scale, axis=0).repeat(scale, axis=1))


def test_a_small_body_declaring_a_huge_image_is_decoded_off_the_event_loop(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    import starlette.concurrency

    from src.web import deps

    # 4,000 x 3,000 white pixels compress to a few kilobytes: small body, huge decode.
    huge = encode(Image.new("L", (4000, 3000), 255))
    canvas = encode(Image.new("L", (256, 256), 255))
    assert len(huge) <= deps.INLINE_IMAGE_CHARACTERS
    assert deps._declared_pixels(huge) == 4000 * 3000
    assert deps._declared_pixels("not base64 at all!") == 0

    offloaded = []

    async def record(function, *args):  # type: ignore[no-untyped-def]
        offloaded.append(args[0])
        return function(*args)

    class Decoder:
        def model_input(self, image, strokes):  # type: ignore[no-untyped-def]
            return image

    monkeypatch.setattr(starlette.concurrency, "run_in_threadpool", record)
    for image in (huge, canvas):
        asyncio.run(deps.Engine.model_input_async(Decoder(), image, None))  # type: ignore[arg-type]
    assert offloaded == [huge]
