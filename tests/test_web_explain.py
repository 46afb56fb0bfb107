"""The sketch-explanation endpoints and request monitoring, through TestClient on the small model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import TINY_CLASSES, draw_square_strokes
from tests.test_web_api import decode_png

MAP_FIELDS = {"centroid", "spread", "ink_share", "grid"}


def three_strokes() -> list[list[list[int]]]:
    """A square drawn as three strokes: two sides, then the other two, then a diagonal."""
    return [
        [[10, 200, 200], [10, 10, 200]],
        [[200, 10, 10], [200, 200, 10]],
        [[10, 200], [10, 200]],
    ]


def start_client(settings: object) -> TestClient:
    from src.web.app import create_app

    return TestClient(create_app(settings), raise_server_exceptions=False)  # type: ignore[arg-type]


def web_settings(model_path: Path, labels_path: Path, **overrides: object) -> object:
    from src.web.settings import WebSettings

    return WebSettings(model_path=model_path, label_mapping=labels_path, **overrides)


@pytest.fixture(scope="module")
def client(sketch_model_path: Path, sketch_labels_path: Path) -> Iterator[TestClient]:
    """The app on the small model with monitoring off, started once for the module."""
    with start_client(web_settings(sketch_model_path, sketch_labels_path)) as test_client:
        yield test_client


def assert_error(response: object, status: int) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["success"] is False and body["error"]


# --- /explain_strokes -------------------------------------------------------------------------


def test_explain_strokes_scores_every_stroke(client: TestClient) -> None:
    response = client.post("/explain_strokes", json={"strokes": three_strokes()})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["success"] is True
    assert data["class_name"] == data["predicted_class"] and data["class_name"] in TINY_CLASSES
    strokes = data["strokes"]
    assert [stroke["stroke_index"] for stroke in strokes] == [0, 1, 2]
    assert sorted(stroke["rank"] for stroke in strokes) == [1, 2, 3]
    shares = [stroke["share"] for stroke in strokes]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    top = min(strokes, key=lambda stroke: stroke["rank"])
    assert top["mass"] == max(stroke["mass"] for stroke in strokes)
    picture = decode_png(data["stroke_image"])
    assert picture.shape == (192, 192, 3)
    assert (picture < 250).any(), "the strokes should be drawn"
    assert decode_png(data["gradcam_overlay"]).shape[:2] == (64, 64)
    assert data["method"] == "gradcam" and data["layer"]


def test_explain_strokes_for_a_named_class(client: TestClient) -> None:
    body = {"strokes": three_strokes(), "class_name": "LINE", "method": "gradcam++"}
    data = client.post("/explain_strokes", json=body).json()
    assert (data["class_name"], data["class_index"], data["method"]) == ("line", 1, "gradcam++")
    by_index = client.post("/explain_strokes", json={"strokes": three_strokes(), "class_index": 1})
    assert by_index.json()["confidence"] == pytest.approx(data["confidence"], abs=1e-4)


# --- /timeline --------------------------------------------------------------------------------


def test_timeline_has_one_step_per_stroke(client: TestClient) -> None:
    strokes = three_strokes()
    response = client.post("/timeline", json={"strokes": strokes, "top_k": 2})
    assert response.status_code == 200, response.text
    data = response.json()
    steps = data["steps"]
    assert [step["strokes"] for step in steps] == [1, 2, 3]
    for step in steps:
        assert step["predicted"] in TINY_CLASSES
        assert len(step["top"]) == 2 and step["top"][0]["class_name"] == step["predicted"]
        assert 0.0 <= step["confidence"] <= 1.0
        assert decode_png(step["gradcam_overlay"]).shape == (64, 64, 3)
    assert data["final_class"] == steps[-1]["predicted"]
    # Settled: the first step from which every later step already predicts the final class.
    predictions = [step["predicted"] for step in steps]
    settled = next(
        index + 1
        for index in range(len(predictions))
        if all(name == data["final_class"] for name in predictions[index:])
    )
    assert data["settled_after_strokes"] == settled
    # The last step is the whole drawing: it agrees with /predict on the same strokes.
    whole = client.post("/predict", json={"strokes": strokes}).json()
    assert whole["prediction"] == data["final_class"]
    assert whole["confidence"] == pytest.approx(steps[-1]["confidence"], abs=1e-3)


# --- /compare ---------------------------------------------------------------------------------


def test_compare_defaults_to_the_top_two(client: TestClient) -> None:
    strokes = draw_square_strokes()
    ranking = client.post("/predict", json={"strokes": strokes}).json()["top_predictions"]
    response = client.post("/compare", json={"strokes": strokes})
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["class_a"]["class_name"] == ranking[0]["class"]
    assert data["class_b"]["class_name"] == ranking[1]["class"]
    assert data["class_a"]["confidence"] == pytest.approx(ranking[0]["probability"], abs=1e-4)
    assert data["class_b"]["confidence"] == pytest.approx(ranking[1]["probability"], abs=1e-4)
    assert data["logit_margin"] >= 0
    for key in ("contrast_heatmap", "contrast_overlay", "against_heatmap", "against_overlay"):
        assert decode_png(data[key]).shape == (64, 64, 3)


def test_compare_chosen_classes_by_name_and_index(client: TestClient) -> None:
    body = {"strokes": draw_square_strokes(), "class_a": "circle", "class_b": 1}
    data = client.post("/compare", json=body).json()
    assert (data["class_a"]["class_index"], data["class_b"]["class_name"]) == (0, "line")
    only_b = client.post("/compare", json={"strokes": draw_square_strokes(), "class_b": 0}).json()
    assert only_b["class_a"]["class_index"] != 0 and only_b["class_b"]["class_index"] == 0


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/explain_strokes", {}, 422),
        ("/explain_strokes", {"strokes": []}, 422),
        ("/explain_strokes", {"strokes": [[[1, 2], [3]]]}, 400),
        (
            "/explain_strokes",
            {"strokes": [[[1, 2], [3, 4]]], "class_index": 0, "class_name": "x"},
            422,
        ),
        ("/explain_strokes", {"strokes": [[[1, 2], [3, 4]]], "class_name": "giraffe"}, 404),
        ("/explain_strokes", {"strokes": [[[1, 2], [3, 4]]], "class_index": 3}, 404),
        ("/explain_strokes", {"strokes": [[[1, 2], [3, 4]]], "method": "magic"}, 422),
        ("/timeline", {"strokes": "square"}, 422),
        ("/timeline", {"strokes": [[[0, 1], [0, 1]]] * 129}, 422),
        ("/timeline", {"strokes": [[[1, 2], [3, 4]]], "layer": "no_such_layer"}, 404),
        ("/compare", {}, 422),
        ("/compare", {"image": "not base64!"}, 400),
        ("/compare", {"strokes": [[[1, 2], [3, 4]]], "class_a": 1, "class_b": "line"}, 400),
        ("/compare", {"strokes": [[[1, 2], [3, 4]]], "class_a": "giraffe"}, 404),
        ("/compare", {"strokes": [[[1, 2], [3, 4]]], "method": "scorecam"}, 400),
    ],
)
def test_bad_input_is_a_json_4xx(client: TestClient, path: str, body: dict, status: int) -> None:
    assert_error(client.post(path, json=body), status)


def test_not_json_is_a_4xx(client: TestClient) -> None:
    for path in ("/explain_strokes", "/timeline", "/compare"):
        response = client.post(path, content=b"{oops", headers={"Content-Type": "application/json"})
        assert_error(response, 422)


# --- monitoring -------------------------------------------------------------------------------


def read_log(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_monitoring_logs_low_confidence_requests(
    sketch_model_path: Path, sketch_labels_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "attention.jsonl"
    settings = web_settings(
        sketch_model_path, sketch_labels_path, monitor_threshold=1.01, monitor_log=log
    )
    with start_client(settings) as monitored:
        gradcam = monitored.post("/predict_with_gradcam", json={"strokes": draw_square_strokes()})
        assert gradcam.status_code == 200, gradcam.text
        records = read_log(log)
        assert len(records) == 1
        record = records[0]
        assert {"timestamp", "image_id", "top", "margin", "map", "method", "layer_name"} <= set(
            record
        )
        assert record["top"][0]["class_name"] == gradcam.json()["prediction"]
        assert record["top"][0]["confidence"] == pytest.approx(gradcam.json()["confidence"], 1e-3)
        assert record["recognised"] is gradcam.json()["recognised"]
        assert record["open_set_score"] == pytest.approx(gradcam.json()["open_set_score"], 1e-3)
        assert set(record["map"]) == MAP_FIELDS
        assert np.asarray(record["map"]["grid"]).shape == (8, 8)
        assert (
            monitored.post("/predict", json={"strokes": draw_square_strokes()}).status_code == 200
        )
        records = read_log(log)
        assert len(records) == 2 and records[0]["image_id"] != records[1]["image_id"]
        assert set(records[1]["map"]) == MAP_FIELDS
        # Explanation endpoints are not monitored.
        monitored.post("/timeline", json={"strokes": draw_square_strokes()})
        assert len(read_log(log)) == 2


def test_monitoring_off_at_threshold_zero(
    sketch_model_path: Path, sketch_labels_path: Path, tmp_path: Path
) -> None:
    log = tmp_path / "attention.jsonl"
    settings = web_settings(
        sketch_model_path, sketch_labels_path, monitor_threshold=0.0, monitor_log=log
    )
    with start_client(settings) as quiet:
        for path in ("/predict_with_gradcam", "/predict"):
            assert quiet.post(path, json={"strokes": draw_square_strokes()}).status_code == 200
    assert not log.exists()


def test_monitor_settings_from_environment_and_flags(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from src.web.__main__ import build_parser
    from src.web.settings import WebSettings

    assert WebSettings().monitor_threshold == 0.0
    monkeypatch.setenv("SKETCH_MONITOR_THRESHOLD", "0.4")
    monkeypatch.setenv("SKETCH_MONITOR_LOG", str(tmp_path / "log.jsonl"))
    settings = WebSettings()
    assert (settings.monitor_threshold, settings.monitor_log) == (0.4, tmp_path / "log.jsonl")
    arguments = build_parser().parse_args(
        ["--monitor_threshold", "0.3", "--monitor-log", "x.jsonl"]
    )
    assert (arguments.monitor_threshold, arguments.monitor_log) == (0.3, "x.jsonl")


def test_timeline_work_is_bounded_by_strokes_times_points(client: TestClient) -> None:

    # 128 strokes of 390 points: inside the body, stroke and point limits, but each of the 128
    # prefixes would redraw up to 49,920 points.
    stroke = [list(range(0, 390)), [100 + (i % 7) for i in range(390)]]
    response = client.post("/timeline", json={"strokes": [stroke] * 128})
    assert_error(response, 413)
    assert "strokes x points" in response.json()["error"]
    # A drawing with the simplified format's few points per stroke is still explained.
    assert client.post("/timeline", json={"strokes": three_strokes()}).status_code == 200


def test_stroke_importance_points_are_bounded(client: TestClient) -> None:
    # 100 strokes of 201 points each: 20,100 points, inside the request's stroke and point limits.
    stroke = [list(range(0, 201)), [100 + (i % 7) for i in range(201)]]
    response = client.post("/explain_strokes", json={"strokes": [stroke] * 100})
    assert_error(response, 413)
    assert "at most 20,000 points (20,100 sent)" in response.json()["error"]
    # 100 strokes of 200 points: exactly the bound, explained.
    stroke = [list(range(0, 200)), [100 + (i % 7) for i in range(200)]]
    assert client.post("/explain_strokes", json={"strokes": [stroke] * 100}).status_code == 200


@pytest.mark.parametrize(
    ("path", "slowed"),
    [
        ("/explain_strokes", "attribute_strokes"),
        ("/timeline", "build_timeline"),
        ("/compare", "pick_pair"),
    ],
)
def test_explanation_past_the_deadline_is_503_and_the_server_keeps_answering(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    path: str,
    slowed: str,
) -> None:
    import threading
    import time

    from src.web import explain_routes

    release = threading.Event()
    original = getattr(explain_routes, slowed)

    def held(*args: object, **kwargs: object) -> object:
        release.wait(30)  # held until the test has seen the 503 and asked /health
        return original(*args, **kwargs)

    monkeypatch.setattr(explain_routes, slowed, held)
    settings = web_settings(sketch_model_path, sketch_labels_path, request_timeout_s=0.3)
    with start_client(settings) as slow_client:
        started = time.monotonic()
        response = slow_client.post(path, json={"strokes": three_strokes()})
        waited = time.monotonic() - started
        assert_error(response, 503)
        assert "longer than the server's limit of 0.3 s" in response.json()["error"]
        assert waited < 10
        assert slow_client.get("/health").status_code == 200
        release.set()
