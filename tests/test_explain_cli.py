"""The explanation subcommands, run in-process through ``main([...])`` with their exit codes.

The scripts' real start-up (quiet stderr, exit codes of the process) is checked once in
tests/test_cli.py and tests/test_cli_quiet.py; here a subprocess would only add a TensorFlow start.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.cli.gradcam_analysis import main
from tests.conftest import STROKES_BY_CLASS, TINY_CLASSES


def run_cli(capsys: pytest.CaptureFixture[str], *arguments: str | Path) -> tuple[int, str]:
    """Run the CLI's ``main`` as scripts/gradcam_analysis.py does: its exit code and stderr."""
    capsys.readouterr()
    status = main([str(argument) for argument in arguments])
    return status, capsys.readouterr().err


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
    sketch_model_path, sketch_labels_path, sketch_model_dir, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    image = sketch_model_dir / "sketches" / "circle" / "0.png"
    common = ["--model", sketch_model_path, "--labels", sketch_labels_path, "--output", tmp_path]
    status, error = run_cli(capsys, *common, "compare", "--image", image)
    assert status == 0, error
    (summary_file,) = tmp_path.glob("compare_*_vs_*.json")
    summary = json.loads(summary_file.read_text())
    assert summary["logit_margin"] >= 0 and (tmp_path / summary["figure"]).is_file()
    status, error = run_cli(
        capsys, *common, "compare", "--image", image, "--classes", "circle", "dragon"
    )
    assert status == 6 and "dragon" in error


def test_strokes_and_timeline_write_json_and_png(
    sketch_model_path, sketch_labels_path, stroke_data, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    common = ["--model", sketch_model_path, "--labels", sketch_labels_path, "--output", tmp_path]
    status, error = run_cli(
        capsys, *common, "strokes", "--drawing", stroke_data / "square.ndjson", "--index", 1
    )
    assert status == 0, error
    strokes = json.loads((tmp_path / "strokes.json").read_text())
    assert len(strokes["strokes"]) == 2 and (tmp_path / "strokes.png").stat().st_size > 0
    assert sum(stroke["share"] for stroke in strokes["strokes"]) == pytest.approx(1.0, abs=1e-3)

    assert main([*map(str, common), "timeline", "--drawing", str(stroke_data / "line.ndjson")]) == 0
    timeline = json.loads((tmp_path / "timeline.json").read_text())
    assert len(timeline["steps"]) == 2 and (tmp_path / "timeline.png").stat().st_size > 0
    assert (
        main([*map(str, common), "strokes", "--verify", str(stroke_data), "--per-class", "2"]) == 0
    )
    check = json.loads((tmp_path / "stroke_deletion.json").read_text())
    assert check["drawings"] == 6


def test_evaluate_explanations_and_monitor(
    sketch_model_path, sketch_labels_path, stroke_data, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    common = ["--model", sketch_model_path, "--labels", sketch_labels_path, "--output", tmp_path]
    status, error = run_cli(
        capsys,
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
    assert status == 0, error
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
    status, error = run_cli(
        capsys, "--output", tmp_path / "monitor", "monitor", "--log", log, "--bucket", "day"
    )
    assert status == 0, error
    summary = json.loads((tmp_path / "monitor" / "monitor_summary.json").read_text())
    assert summary["records"] == 3
    assert summary["low_confidence_classes"][0] == {
        "class_name": "circle",
        "count": 2,
        "mean_confidence": 0.2,
        "mean_grid": [[0.5] * 8] * 8,
    }
    assert (tmp_path / "monitor" / "monitor_summary.html").read_text().startswith("<!doctype")
    status, error = run_cli(
        capsys, "--output", tmp_path, "monitor", "--log", tmp_path / "none.jsonl"
    )
    assert status == 8 and "not found" in error
