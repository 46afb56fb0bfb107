"""The "not sure" rule from the model card, reported by every interface.

The expected scores come from the model's own ``logits`` layer, read here through a separate
``keras.Model`` and scored by hand (max logit / T), not from the code under test.
"""

from __future__ import annotations

import base64
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from src.data.preprocess import image_file_to_model_input
from src.inference.open_set import DEFAULT_RULE, OpenSetRule, load_open_set_rule

TEMPERATURE = 2.0


def _max_logit_over_t(model_path: Path, image_path: Path) -> float:
    import keras

    model = keras.models.load_model(model_path, compile=False)
    head = keras.Model(model.inputs, model.get_layer("logits").output)
    logits = head.predict(image_file_to_model_input(image_path)[np.newaxis], verbose=0)[0]
    return float(np.max(logits) / TEMPERATURE)


@pytest.fixture(scope="module")
def square_image(sketch_model_dir: Path) -> Path:
    return sketch_model_dir / "sketches" / "square" / "0.png"


@pytest.fixture(scope="module")
def expected_score(sketch_model_path: Path, square_image: Path) -> float:
    return _max_logit_over_t(sketch_model_path, square_image)


def _carded_copy(root: Path, source_dir: Path, threshold: float) -> Path:
    """model.h5 and label_mapping.json copied next to a card with a max_logit rule."""
    root.mkdir(parents=True, exist_ok=True)
    for name in ("model.h5", "label_mapping.json"):
        shutil.copy(source_dir / name, root / name)
    card = {"open_set": {"score": "max_logit", "temperature": TEMPERATURE, "threshold": threshold}}
    (root / "model_card.json").write_text(json.dumps(card))
    return root


@pytest.fixture(scope="module", params=["recognised", "not_sure"])
def carded(request, tmp_path_factory, sketch_model_dir: Path, expected_score: float):  # type: ignore[no-untyped-def]
    """(model folder, whether the square should be recognised) for a threshold just below or
    just above the square's hand-computed score."""
    recognised = request.param == "recognised"
    threshold = expected_score - 0.05 if recognised else expected_score + 0.05
    root = tmp_path_factory.mktemp(f"carded_{request.param}")
    return _carded_copy(root, sketch_model_dir, threshold), recognised


def test_rule_from_card_and_fallback(tmp_path: Path, sketch_model_dir: Path) -> None:
    folder = _carded_copy(tmp_path / "a", sketch_model_dir, 1.25)
    assert load_open_set_rule(folder / "model.h5") == OpenSetRule(
        "max_logit", TEMPERATURE, 1.25, measured=True
    )
    bare = tmp_path / "bare"
    bare.mkdir()
    assert load_open_set_rule(bare / "model.h5") == DEFAULT_RULE
    assert DEFAULT_RULE == OpenSetRule("max_softmax", 1.0, 0.5, measured=False)
    (bare / "model_card.json").write_text(json.dumps({"classes": ["a"]}))
    assert load_open_set_rule(bare / "model.h5") == DEFAULT_RULE


def test_single_summary_and_output(
    carded, square_image: Path, expected_score: float, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.gradcam_analysis import main

    folder, recognised = carded
    code = main(
        ["--model", str(folder / "model.h5"), "--labels", str(folder / "label_mapping.json"),
         "--output", str(tmp_path), "single", "--image", str(square_image)]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "analysis_summary.json").read_text())
    assert summary["recognised"] is recognised
    assert summary["open_set_score"] == pytest.approx(expected_score, abs=1e-4)
    first = capsys.readouterr().out.splitlines()[0]
    closest = f"{summary['predicted_label']} {summary['confidence']:.0%}"
    if recognised:
        assert first == f"Predicted: {summary['predicted_label']} ({summary['confidence']:.1%})"
    else:
        assert first == f"Predicted: not sure (closest: {closest})"


def test_batch_summary_and_csv(
    carded, square_image: Path, expected_score: float, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.gradcam_analysis import main

    folder, recognised = carded
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    shutil.copy(square_image, inputs / "square.png")
    output = tmp_path / "out"
    code = main(
        ["--model", str(folder / "model.h5"), "--labels", str(folder / "label_mapping.json"),
         "--output", str(output), "batch", "--images_dir", str(inputs)]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((output / "batch_summary.json").read_text())
    (image,) = summary["images"]
    assert image["recognised"] is recognised
    assert image["open_set_score"] == pytest.approx(expected_score, abs=1e-4)
    assert summary["not_sure"] == (0 if recognised else 1)
    assert f"Not sure: {summary['not_sure']} of 1 (open-set rule)" in capsys.readouterr().out
    report = (output / "report.html").read_text()
    assert f"<th>Not sure</th><td><code>{summary['not_sure']}</code>" in report
    with (output / "batch_summary.csv").open() as handle:
        (row,) = list(csv.DictReader(handle))
    assert row["recognised"] == str(recognised)
    assert float(row["open_set_score"]) == pytest.approx(expected_score, abs=1e-4)


def test_class_analysis_summary_and_output(
    carded, square_image: Path, expected_score: float, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.gradcam_analysis import main

    folder, recognised = carded
    code = main(
        ["--model", str(folder / "model.h5"), "--labels", str(folder / "label_mapping.json"),
         "--output", str(tmp_path), "class", "--image", str(square_image), "--class_name", "line"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((tmp_path / "class_analysis_line.json").read_text())
    assert summary["recognised"] is recognised
    assert summary["open_set_score"] == pytest.approx(expected_score, abs=1e-4)
    first = capsys.readouterr().out.splitlines()[0]
    closest = f"{summary['predicted_class']} {summary['predicted_class_confidence']:.0%}"
    assert ("(not sure (closest: " + closest + "))" in first) is not recognised
    assert first.startswith("Class line: ")


def test_predict_script_prints_the_verdict(
    carded, square_image: Path, expected_score: float, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.predict import main

    folder, recognised = carded
    code = main(
        ["--model_path", str(folder / "model.h5"), "--label_mapping",
         str(folder / "label_mapping.json"), "--image_path", str(square_image)]
    )  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    state = "recognised" if recognised else "not sure"
    assert lines[-1] == f"Open-set score: {expected_score:.3f} ({state})"
    assert ("not sure (closest: " in lines[0]) is not recognised


def test_web_routes_report_the_verdict(carded, square_image: Path, expected_score: float) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from src.web.app import create_app
    from src.web.settings import WebSettings

    folder, recognised = carded
    settings = WebSettings(
        model_path=folder / "model.h5", label_mapping=folder / "label_mapping.json"
    )
    body = {"image": base64.b64encode(square_image.read_bytes()).decode()}
    with TestClient(create_app(settings)) as client:
        for route in ("/predict_with_gradcam", "/predict", "/analyze_class"):
            extra = {"class_index": 0} if route == "/analyze_class" else {}
            response = client.post(route, json={**body, **extra})
            assert response.status_code == 200, response.text
            data = response.json()
            assert data["recognised"] is recognised, route
            assert data["open_set_score"] == pytest.approx(expected_score, abs=1e-4), route
        health = client.get("/health").json()["open_set"]
        classes = client.get("/classes").json()
    assert health == {
        "score": "max_logit", "temperature": TEMPERATURE,
        "threshold": pytest.approx(expected_score + (-0.05 if recognised else 0.05)),
        "from_card": True,
    }  # fmt: skip
    assert classes["classes"] == ["circle", "line", "square"]
    assert classes["num_classes"] == 3
