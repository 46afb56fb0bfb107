"""Nothing drawn: an input with no ink gets no class and no map, in every interface.

A blank canvas, a 1x1 PNG or an all-white photo preprocesses to all zeros, and a model still
ranks classes for that. Each interface must answer "nothing drawn" instead: the web API with
``"empty": true``, the CLI with one line and exit 0, a batch by counting such inputs apart.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from src.data.input_spec import InputSpec
from src.data.preprocess import INK_THRESHOLD, is_empty, strokes_to_model_input, to_model_input
from src.utils.exit_status import ExitStatus
from tests.conftest import TINY_CLASSES, draw_square_strokes

BLANKS = {
    "white_1x1": Image.new("L", (1, 1), 255),
    "black_1x1": Image.new("L", (1, 1), 0),
    "white_256": Image.new("RGB", (256, 256), (255, 255, 255)),
}


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def base64_png(image: Image.Image) -> str:
    return base64.b64encode(png_bytes(image)).decode()


# The rule ---------------------------------------------------------------------------------


def test_ink_at_the_threshold_is_paper_and_just_above_it_is_ink() -> None:
    picture = np.zeros((8, 8), np.float32)
    assert is_empty(picture)
    picture[3, 4] = INK_THRESHOLD
    assert is_empty(picture)
    picture[3, 4] = INK_THRESHOLD + 0.01
    assert not is_empty(picture)


@pytest.mark.parametrize("name", sorted(BLANKS))
def test_blank_images_preprocess_to_an_empty_input(name: str) -> None:
    assert is_empty(to_model_input(BLANKS[name]))


def test_a_drawing_is_not_empty() -> None:
    assert not is_empty(strokes_to_model_input(draw_square_strokes()))


def test_the_service_reads_each_input_in_its_models_convention(tiny_model) -> None:  # type: ignore[no-untyped-def]
    from src.service.explainer import Explainer

    explainer = Explainer(tiny_model)
    batch = np.zeros((3, 8, 8, 1), np.float32)
    batch[1, 2, 2, 0] = 1.0  # one pixel of ink
    batch[2] = 0.1  # a faint grey wash below the ink threshold
    assert explainer.empty_inputs(batch).tolist() == [True, False, True]

    # A dark-ink 0-255 model sees blank paper as 255 everywhere: still nothing drawn.
    spec = InputSpec(16, 16, 1, ink="dark", value_range="0-255")
    ink = np.zeros((2, 16, 16), np.float32)
    ink[1, 8, 8] = 1.0
    explainer = Explainer(tiny_model, input_spec=spec)
    assert explainer.empty_inputs(spec.encode(ink)).tolist() == [True, False]


# Web API ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(sketch_model_path: Path, sketch_labels_path: Path):  # type: ignore[no-untyped-def]
    from src.web.app import create_app
    from src.web.settings import WebSettings

    settings = WebSettings(
        model_path=sketch_model_path, label_mapping=sketch_labels_path, batch_max_wait_ms=5.0
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


def check_nothing_drawn(answer: dict, *absent: str) -> None:  # type: ignore[type-arg]
    assert answer["success"] is True
    assert answer["empty"] is True
    for field in absent:
        assert answer[field] in (None, []), field


@pytest.mark.parametrize("name", sorted(BLANKS))
def test_predict_with_gradcam_answers_nothing_drawn_for_a_blank_image(client, name: str) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/predict_with_gradcam", json={"image": base64_png(BLANKS[name])})
    assert response.status_code == 200, response.text
    answer = response.json()
    check_nothing_drawn(
        answer, "prediction", "class_index", "confidence", "top_predictions", "gradcam_overlay",
        "gradcam_heatmap", "input_image", "open_set_score",
    )  # fmt: skip
    assert answer["recognised"] is False


def test_predict_answers_nothing_drawn_and_a_drawing_still_gets_a_class(client) -> None:  # type: ignore[no-untyped-def]
    blank = client.post("/predict", json={"image": base64_png(BLANKS["white_256"])}).json()
    check_nothing_drawn(blank, "prediction", "class_index", "confidence", "top_predictions")
    assert blank["recognised"] is False
    drawn = client.post("/predict", json={"strokes": draw_square_strokes()}).json()
    assert drawn["empty"] is False
    assert drawn["prediction"] in TINY_CLASSES


def test_analyze_class_answers_nothing_drawn_naming_the_class_asked(client) -> None:  # type: ignore[no-untyped-def]
    body = {"image": base64_png(BLANKS["white_1x1"]), "class_name": TINY_CLASSES[1]}
    answer = client.post("/analyze_class", json=body).json()
    check_nothing_drawn(answer, "confidence", "predicted_class", "gradcam_overlay")
    assert (answer["class_name"], answer["class_index"]) == (TINY_CLASSES[1], 1)
    assert answer["recognised"] is False
    unknown = {"image": base64_png(BLANKS["white_1x1"]), "class_name": "no such class"}
    assert client.post("/analyze_class", json=unknown).status_code == 404


def test_compare_answers_nothing_drawn(client) -> None:  # type: ignore[no-untyped-def]
    answer = client.post("/compare", json={"image": base64_png(BLANKS["black_1x1"])}).json()
    check_nothing_drawn(answer, "class_a", "class_b", "contrast_overlay", "logit_margin")


@pytest.mark.parametrize("route", ["/explain_strokes", "/timeline"])
def test_stroke_routes_answer_nothing_drawn_when_the_input_holds_no_ink(
    client, monkeypatch: pytest.MonkeyPatch, route: str
) -> None:  # type: ignore[no-untyped-def]
    # Strokes always leave ink (a single point draws a dot), so the model input is replaced by
    # a blank one to reach the check these routes share with the others.
    from src.web.deps import Engine

    monkeypatch.setattr(
        Engine, "model_input", lambda self, image, strokes: np.zeros((64, 64, 1), np.float32)
    )
    answer = client.post(route, json={"strokes": draw_square_strokes()}).json()
    check_nothing_drawn(answer, "method", "layer")


# CLI --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blank_png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("blank") / "blank.png"
    path.write_bytes(png_bytes(BLANKS["white_256"]))
    return path


def engine_args(model: Path, labels: Path, output: Path) -> list[str]:
    return ["--model", str(model), "--labels", str(labels), "--output", str(output)]


def test_single_prints_one_line_and_writes_an_empty_summary(
    sketch_model_path: Path, sketch_labels_path: Path, blank_png: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.gradcam_analysis import main

    output = tmp_path / "out"
    arguments = [*engine_args(sketch_model_path, sketch_labels_path, output), "single"]
    assert main([*arguments, "--image", str(blank_png)]) == ExitStatus.SUCCESS
    assert capsys.readouterr().out == f"nothing drawn in {blank_png}\n"
    summary = json.loads((output / "analysis_summary.json").read_text())
    assert summary["empty"] is True and summary["recognised"] is False
    assert summary["predicted_label"] is None and summary["top_predictions"] == []
    assert not (output / "gradcam_prediction.png").exists()
    assert not (output / "top_predictions").exists()


def test_class_prints_one_line_and_draws_no_map(
    sketch_model_path: Path, sketch_labels_path: Path, blank_png: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.gradcam_analysis import main

    output = tmp_path / "out"
    arguments = [*engine_args(sketch_model_path, sketch_labels_path, output), "class"]
    code = main([*arguments, "--image", str(blank_png), "--class_name", TINY_CLASSES[0]])
    assert code == ExitStatus.SUCCESS
    assert capsys.readouterr().out == f"nothing drawn in {blank_png}\n"
    assert not list(output.glob("*.png"))


@pytest.mark.parametrize("gradcam", [False, True])
def test_predict_py_prints_one_line(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    blank_png: Path,
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
    gradcam: bool,
) -> None:
    from src.cli.predict import main

    arguments = [
        "--model_path", str(sketch_model_path), "--label_mapping", str(sketch_labels_path),
        "--image_path", str(blank_png), "--output_dir", str(tmp_path / "out"),
    ]  # fmt: skip
    assert main(arguments + (["--gradcam"] if gradcam else [])) == ExitStatus.SUCCESS
    assert capsys.readouterr().out == f"nothing drawn in {blank_png}\n"


# Batch ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_folder(sketch_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_mixed_folder(sketch_model_dir, tmp_path_factory.mktemp("mixed"))


def make_mixed_folder(sketch_model_dir: Path, root: Path) -> Path:
    """Two drawn sketches in class folders and one blank image labelled "square"."""
    for name in ("square", "circle"):
        (root / name).mkdir(parents=True)
        shutil.copy(sketch_model_dir / "sketches" / name / "0.png", root / name / "0.png")
    (root / "square" / "blank.png").write_bytes(png_bytes(BLANKS["white_256"]))
    return root


def run_batch_cli(model_dir: Path, images: Path, output: Path, *extra: str) -> int:
    from src.cli.gradcam_analysis import main

    arguments = engine_args(model_dir / "model.h5", model_dir / "label_mapping.json", output)
    return main([*arguments, "batch", "--images_dir", str(images), *extra])


def check_batch_counts_the_blank_apart(output: Path, cli_output: str) -> None:
    summary = json.loads((output / "batch_summary.json").read_text())
    assert (summary["total"], summary["succeeded"], summary["failed"]) == (3, 2, 0)
    assert summary["empty"] == 1
    assert summary["empty_inputs"] == [{"source": "square/blank.png", "true_class": "square"}]
    assert [image["source"] for image in summary["images"]] == ["circle/0.png", "square/0.png"]
    assert summary["class_metrics"]["labelled"] == 2
    assert sum(entry["count"] for entry in summary["mean_maps"].values()) == 2
    rows = list(csv.DictReader(io.StringIO((output / "batch_summary.csv").read_text())))
    statuses = {row["source"]: row["status"] for row in rows}
    assert statuses == {"circle/0.png": "ok", "square/0.png": "ok", "square/blank.png": "empty"}
    assert not list((output / "overlays").glob("*blank*"))
    report = (output / "report.html").read_text()
    assert "<h2>Nothing drawn (1)</h2>" in report and "square/blank.png" in report
    assert "Nothing drawn: 1 inputs" in cli_output


def test_batch_counts_a_blank_input_apart(
    sketch_model_dir: Path, mixed_folder: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "out"
    assert run_batch_cli(sketch_model_dir, mixed_folder, output) == ExitStatus.SUCCESS
    check_batch_counts_the_blank_apart(output, capsys.readouterr().out)
