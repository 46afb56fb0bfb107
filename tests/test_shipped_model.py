"""The shipped default model and samples: docs/usage_guide.md's snippet on them, and what they recognise."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from src.config import DEFAULT_LABELS_PATH, DEFAULT_MODEL_PATH, SAMPLES_DIR
from src.data.labels import LabelMap
from tests.test_spec_python_api import PYTHON_API_SNIPPET

# The "Python API Usage" snippet of docs/usage_guide.md, verbatim (kept in one place).
GUIDE_SNIPPET = PYTHON_API_SNIPPET


@pytest.fixture(scope="module")
def labels() -> LabelMap:
    """The shipped label mapping."""
    return LabelMap.load(DEFAULT_LABELS_PATH)


def test_shipped_files_agree(labels: LabelMap) -> None:
    card = json.loads((DEFAULT_MODEL_PATH.parent / "model_card.json").read_text())
    assert list(card["classes"]) == list(labels.class_names)
    assert len(labels) == 24
    # Every sample is named after one of the shipped classes.
    for sample in SAMPLES_DIR.glob("*.png"):
        labels.index_of(sample.stem.replace("_", " "))


def test_guide_snippet_runs_on_the_shipped_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    labels: LabelMap,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The guide's Python API snippet, verbatim, from a folder laid out like the repository."""
    (tmp_path / "models").mkdir()
    os.symlink(DEFAULT_MODEL_PATH, tmp_path / "models" / "best_model.h5")
    # A black-on-white PNG fed through the guide's own plain preprocessing (no to_model_input).
    shutil.copy(SAMPLES_DIR / "smiley_face.png", tmp_path / "sketch.png")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(GUIDE_SNIPPET, "guide_snippet", "exec"), namespace)
    result = namespace["result"]
    assert isinstance(result, dict)
    # Placeholder names (3 for 24 outputs) are not used: the class is reported by index.
    assert result["predicted_class"] == labels.index_of("smiley face")
    assert result["confidence"] > 0.5
    assert (tmp_path / "gradcam_output.png").stat().st_size > 10_000
    assert "Predicted: " in capsys.readouterr().out


def test_shipped_model_recognises_the_shipped_stroke_samples(labels: LabelMap) -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.inference.predictor import Predictor

    predictor = Predictor.from_files(DEFAULT_MODEL_PATH, DEFAULT_LABELS_PATH)
    files = sorted(SAMPLES_DIR.glob("*.ndjson"))
    drawings = [json.loads(path.read_text().splitlines()[0]) for path in files]
    images = np.stack([strokes_to_model_input(drawing["drawing"]) for drawing in drawings])
    predicted = [prediction.class_name for prediction in predictor.predict(images)]
    truth = [drawing["word"] for drawing in drawings]
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    assert len(files) >= 12
    assert correct >= len(files) - 1, list(zip(truth, predicted, strict=True))


def test_shipped_model_recognises_the_shipped_png_samples_both_ways(labels: LabelMap) -> None:
    """Through to_model_input, and through the guide's plain convert('L').resize((64, 64)) / 255."""
    from PIL import Image

    from src.data.preprocess import image_file_to_model_input
    from src.inference.predictor import Predictor

    predictor = Predictor.from_files(DEFAULT_MODEL_PATH, DEFAULT_LABELS_PATH)
    files = sorted(SAMPLES_DIR.glob("*.png"))
    truth = [path.stem.replace("_", " ") for path in files]
    prepared = np.stack([image_file_to_model_input(path) for path in files])
    plain = np.stack(
        [np.array(Image.open(path).convert("L").resize((64, 64))) / 255.0 for path in files]
    ).reshape(-1, 64, 64, 1)
    for images in (prepared, plain):
        predicted = [prediction.class_name for prediction in predictor.predict(images)]
        correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
        assert correct >= len(files) - 1, list(zip(truth, predicted, strict=True))
