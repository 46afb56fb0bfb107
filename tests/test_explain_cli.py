"""The explanation subcommands, run as the user runs them (subprocesses) and in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import PROJECT_ROOT
from tests.conftest import STROKES_BY_CLASS, TINY_CLASSES

# Subprocesses, training or long fuzzing: `make test-fast` leaves these out.
pytestmark = pytest.mark.slow

SCRIPT = PROJECT_ROOT / "scripts" / "gradcam_analysis.py"


def run_cli(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """Run scripts/gradcam_analysis.py in a subprocess with TensorFlow quiet."""
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        cwd=PROJECT_ROOT,
    )


@pytest.fixture(scope="module")
def stroke_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """<class>.ndjson files of two-stroke drawings for the tiny sketch model's classes."""
    folder = tmp_path_factory.mktemp("quickdraw")
    for name in TINY_CLASSES:
        records = []
        for shift in range(3):
            strokes = STROKES_BY_CLASS[name]()
            extra = [[0 + 10 * shift, 60], [250, 250 - 5 * shift]]
            records.append(json.dumps({"word": name, "drawing": [*strokes, extra]}))
        (folder / f"{name}.ndjson").write_text("\n".join(records) + "\n")
    return folder


def test_compare_default_top_two_and_unknown_class(
    sketch_model_path, sketch_labels_path, sketch_model_dir, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    image = sketch_model_dir / "sketches" / "circle" / "0.png"
    common = ["--model", sketch_model_path, "--labels", sketch_labels_path, "--output", tmp_path]
    done = run_cli(*common, "compare", "--image", image)
    assert done.returncode == 0, done.stderr
    (summary_file,) = tmp_path.glob("compare_*_vs_*.json")
    summary = json.loads(summary_file.read_text())
    assert summary["logit_margin"] >= 0 and (tmp_path / summary["figure"]).is_file()
    failed = run_cli(*common, "compare", "--image", image, "--classes", "circle", "dragon")
    assert failed.returncode == 6 and "dragon" in failed.stderr


def test_strokes_and_timeline_write_json_and_png(
    sketch_model_path, sketch_labels_path, stroke_data, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    common = ["--model", sketch_model_path, "--labels", sketch_labels_path, "--output", tmp_path]
    done = run_cli(*common, "strokes", "--drawing", stroke_data / "square.ndjson", "--index", 1)
    assert done.returncode == 0, done.stderr
    strokes = json.loads((tmp_path / "strokes.json").read_text())
    assert len(strokes["strokes"]) == 2 and (tmp_path / "strokes.png").stat().st_size > 0
    assert sum(stroke["share"] for stroke in strokes["strokes"]) == pytest.approx(1.0, abs=1e-3)

    from src.cli.gradcam_analysis import main

    assert main([*map(str, common), "timeline", "--drawing", str(stroke_data / "line.ndjson")]) == 0
    timeline = json.loads((tmp_path / "timeline.json").read_text())
    assert len(timeline["steps"]) == 2 and (tmp_path / "timeline.png").stat().st_size > 0
    assert (
        main([*map(str, common), "strokes", "--verify", str(stroke_data), "--per-class", "2"]) == 0
    )
    check = json.loads((tmp_path / "stroke_deletion.json").read_text())
    assert check["drawings"] == 6


def test_evaluate_explanations_and_monitor(
    sketch_model_path, sketch_labels_path, stroke_data, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    common = ["--model", sketch_model_path, "--labels", sketch_labels_path, "--output", tmp_path]
    done = run_cli(
        *common,
        "evaluate-explanations",
        "--data",
        stroke_data,
        "--methods",
        "gradcam",
        "hirescam",
        "--per-class",
        "2",
        "--steps",
        "5",
        "--randomise",
        "1",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "faithfulness.json").read_text())
    assert [curve["method"] for curve in report["curves"]] == ["gradcam", "hirescam", "random"]
    assert len(report["randomisation"]) == 2 and report["images"] == 6
    assert (tmp_path / "faithfulness.png").stat().st_size > 0

    from src.monitoring.attention_log import log_attention_pattern

    log = tmp_path / "attention.jsonl"
    for name in ("circle", "circle", "line"):
        log_attention_pattern(
            {"top": [{"class_name": name, "confidence": 0.2}], "map": {"grid": [[0.5] * 8] * 8}},
            name,
            log_path=log,
        )
    done = run_cli("--output", tmp_path / "monitor", "monitor", "--log", log, "--bucket", "day")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "monitor" / "monitor_summary.json").read_text())
    assert summary["records"] == 3
    assert summary["low_confidence_classes"][0] == {
        "class_name": "circle",
        "count": 2,
        "mean_confidence": 0.2,
        "mean_grid": [[0.5] * 8] * 8,
    }
    assert (tmp_path / "monitor" / "monitor_summary.html").read_text().startswith("<!doctype")
    missing = run_cli("--output", tmp_path, "monitor", "--log", tmp_path / "none.jsonl")
    assert missing.returncode == 8 and "not found" in missing.stderr
