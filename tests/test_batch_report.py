"""The batch report a newcomer reads: labelled-by-name inputs, per-class scores, runner-up and
margin, least confident first, the run's identity, readable matrix cells, faithfulness and audit."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from src.cli.gradcam_analysis import main
from src.data.labels import LabelMap
from src.data.preprocess import image_file_to_model_input
from src.utils.exit_status import ExitStatus
from tests.conftest import TINY_CLASSES


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ("circle", "circle"),
        ("circle_2", "circle"),
        ("Circle-12", "circle"),
        ("square (3)", "square"),
        ("smiley_face", "smiley face"),
        ("smiley-face_2", "smiley face"),
        ("circles", None),
        ("circle2", None),
        ("my_circle", None),
        ("", None),
    ],
)
def test_class_from_filename(stem: str, expected: str | None) -> None:
    from src.batch.inputs import class_from_filename

    labels = LabelMap(("circle", "square", "smiley face"))
    assert class_from_filename(stem, labels) == expected


def test_precision_recall_f1_by_hand() -> None:
    from src.evaluation.metrics import precision_recall_f1

    # Rows true, columns predicted. a: 3 items, 2 found; b: 1 item, found; c: never true but
    # predicted once; d: absent everywhere.
    matrix = np.array([[2, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    scores = precision_recall_f1(matrix, ("a", "b", "c", "d"))
    assert set(scores) == {"a", "b", "c"}
    assert scores["a"] == {
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": 0.8,
        "support": 3,
    }
    assert scores["b"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    assert scores["c"] == {"precision": 0.0, "recall": None, "f1": None, "support": 0}


def _contrast(foreground: tuple[int, ...], background: tuple[int, ...]) -> float:
    """WCAG contrast ratio, written out here as the oracle."""

    def luminance(rgb: tuple[int, ...]) -> float:
        channels = []
        for value in rgb:
            srgb = value / 255
            channels.append(srgb / 12.92 if srgb <= 0.04045 else ((srgb + 0.055) / 1.055) ** 2.4)
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]

    high, low = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (high + 0.05) / (low + 0.05)


@pytest.mark.parametrize("share", [i / 20 for i in range(21)])
def test_confusion_cells_are_readable(share: float) -> None:
    from src.reports.batch_report import cell_style

    style = cell_style(share)
    background = tuple(int(v) for v in re.search(r"rgb\((\d+),(\d+),(\d+)\)", style).groups())
    text = (0, 0, 0) if "color:#000" in style else (255, 255, 255)
    assert _contrast(text, background) >= 4.5


@pytest.fixture(scope="module")
def named_batch(
    sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path, tmp_path_factory
) -> tuple[Path, Path, dict]:  # type: ignore[no-untyped-def,type-arg]
    """A batch over files named after their class, a class folder and an unlabelled file, run
    into a folder that already holds faithfulness and audit results."""
    sketches = sketch_model_dir / "sketches"
    folder = tmp_path_factory.mktemp("named")
    shutil.copy(sketches / "circle" / "0.png", folder / "circle.png")
    shutil.copy(sketches / "circle" / "1.png", folder / "circle_2.png")
    shutil.copy(sketches / "line" / "0.png", folder / "line.png")
    (folder / "square").mkdir()
    shutil.copy(sketches / "square" / "0.png", folder / "square" / "drawn.png")
    shutil.copy(sketches / "square" / "1.png", folder / "mystery.png")
    output = tmp_path_factory.mktemp("named_out")
    faithfulness = {"curves": [{"method": "gradcam", "deletion_auc": 0.125, "insertion_auc": 0.75}]}
    (output / "faithfulness.json").write_text(json.dumps(faithfulness))
    audit = {"verdict": "passes", "images": 12, "spurious_share": 0.03125, "details": [1, 2]}
    (output / "audit.json").write_text(json.dumps(audit))
    shutil.copy(sketches / "line" / "1.png", output / "audit.png")
    status = main(
        [
            "--model", str(sketch_model_path), "--labels", str(sketch_labels_path),
            "--output", str(output), "--top_k", "1", "batch", "--images_dir", str(folder),
        ]
    )  # fmt: skip
    assert status == ExitStatus.SUCCESS
    return folder, output, json.loads((output / "batch_summary.json").read_text())


def test_inputs_named_after_a_class_are_labelled(named_batch) -> None:  # type: ignore[no-untyped-def]
    _, _, summary = named_batch
    truth = {image["source"]: image["true_class"] for image in summary["images"]}
    assert truth == {
        "circle.png": "circle",
        "circle_2.png": "circle",
        "line.png": "line",
        "square/drawn.png": "square",
        "mystery.png": None,
    }
    assert summary["class_metrics"]["labelled"] == 4


def test_runner_up_margin_and_per_class_scores(named_batch, sketch_model_path: Path) -> None:  # type: ignore[no-untyped-def]
    import keras

    folder, _, summary = named_batch
    model = keras.models.load_model(sketch_model_path, compile=False)
    truth, predicted = [], []
    for image in summary["images"]:
        probabilities = model.predict(
            image_file_to_model_input(folder / image["source"])[np.newaxis], verbose=0
        )[0]
        first, second = np.argsort(-probabilities)[:2]
        assert len(image["top_predictions"]) == 1  # --top_k 1, yet the runner-up is known
        assert image["second_class"] == TINY_CLASSES[second]
        assert image["second_confidence"] == pytest.approx(probabilities[second], abs=1e-5)
        assert image["margin"] == pytest.approx(
            probabilities[first] - probabilities[second], abs=1e-5
        )
        if image["true_class"] is not None:
            truth.append(image["true_class"])
            predicted.append(TINY_CLASSES[first])
    per_class = summary["class_metrics"]["per_class"]
    for name in set(truth) | set(predicted):
        hits = sum(t == p == name for t, p in zip(truth, predicted))
        support, guessed = truth.count(name), predicted.count(name)
        assert per_class[name]["support"] == support
        assert per_class[name]["precision"] == (pytest.approx(hits / guessed) if guessed else None)
        assert per_class[name]["recall"] == (pytest.approx(hits / support) if support else None)


def test_report_shows_the_run_least_confident_first_with_faithfulness_and_audit(
    named_batch, sketch_model_path: Path
) -> None:  # type: ignore[no-untyped-def]
    _, output, summary = named_batch
    assert summary["model_sha256"] == hashlib.sha256(sketch_model_path.read_bytes()).hexdigest()
    assert datetime.fromisoformat(summary["started_at"]).tzinfo is not None
    assert summary["duration_s"] >= 0
    html = (output / "report.html").read_text()
    assert summary["model_sha256"] in html and summary["started_at"] in html
    gallery = html[html.index("<h2>Gallery, least confident first</h2>") :]
    shown = re.findall(r"<figcaption[^>]*>([^:<]+):", gallery)
    by_confidence = sorted(summary["images"], key=lambda image: image["confidence"])
    assert shown == [image["source"] for image in by_confidence]
    assert "Overlay colours" in gallery
    # Faithfulness and audit, found in the output folder.
    assert "<td>0.125</td><td>0.750</td>" in html
    assert "<tr><th>verdict</th><td>passes</td></tr>" in html
    assert "<tr><th>spurious_share</th><td>0.03125</td></tr>" in html
    assert "src='audit.png'" in html and "href='audit.json'" in html
    csv_header = (output / "batch_summary.csv").read_text().splitlines()[0]
    assert "second_class" in csv_header and "margin" in csv_header
