"""Production monitoring: map summaries, the two calls of docs/usage_guide.md, concurrent rotated log, summary."""

from __future__ import annotations

import json
import multiprocessing
import re
from pathlib import Path

import numpy as np
import pytest


def test_summarise_map_of_a_known_map() -> None:
    from src.monitoring.attention_log import summarise_map

    heatmap = np.zeros((64, 64), np.float32)
    heatmap[:8, 56:] = 1.0  # top-right corner
    image = np.zeros((64, 64, 1), np.float32)
    image[:8, 60:] = 1.0  # half of the hot area is ink
    summary = summarise_map(heatmap, image)
    assert summary["centroid"] == pytest.approx([60 / 64, 4 / 64], abs=1e-3)
    assert summary["ink_share"] == pytest.approx(0.5)
    assert summary["grid"][0][7] == 1.0 and np.asarray(summary["grid"]).sum() == 1.0
    empty = summarise_map(np.zeros((64, 64)), image)
    assert empty["ink_share"] == 0.0 and empty["spread"] == 0.0


def test_spec_calls_log_an_analysis(tmp_path: Path) -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.monitoring import generate_gradcam_analysis, log_attention_pattern
    from src.service.explainer import Explainer
    from tests.test_explain_strokes import BOTTOM_STROKE, TOP_STROKE, build_top_half_model

    model = build_top_half_model()
    paper_sketch = 1.0 - strokes_to_model_input([TOP_STROKE, BOTTOM_STROKE])[..., 0]
    result = generate_gradcam_analysis(
        paper_sketch, model, class_names=["top", "other"], top_k=2, include_overlay=True
    )
    assert result["top"][0]["class_name"] == "top"
    assert result["margin"] == pytest.approx(
        result["top"][0]["confidence"] - result["top"][1]["confidence"], abs=1e-4
    )
    assert result["map"]["centroid"][1] < 0.5  # the attention is in the top half
    assert generate_gradcam_analysis(paper_sketch, model)["top"][0]["class_name"] == "0"
    # Built once per model: the model's one Explainer hands out the same GradCAM every time.
    explainer = Explainer.for_model(model)
    assert explainer is Explainer.for_model(model) and explainer.cam() is explainer.cam()
    log = tmp_path / "logs" / "attention.jsonl"
    record = log_attention_pattern(result, "req/1", log_path=log)
    line = json.loads(log.read_text().strip())
    assert line == record and line["image_id"] == "req/1" and "overlay_png" not in line
    assert (log.parent / "attention.jsonl.overlays" / line["overlay_file"]).stat().st_size > 0


def guide_monitoring_snippet() -> str:
    """The code block of docs/usage_guide.md that starts with the monitoring comment."""
    guide = (Path(__file__).resolve().parents[1] / "docs" / "usage_guide.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", guide, flags=re.DOTALL)
    return next(block for block in blocks if block.startswith("# Log attention patterns"))


def test_guide_monitoring_snippet_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.data.preprocess import strokes_to_model_input
    from tests.test_explain_strokes import BOTTOM_STROKE, TOP_STROKE, build_top_half_model

    snippet = guide_monitoring_snippet()
    assert "from src.monitoring import generate_gradcam_analysis, log_attention_pattern" in snippet
    monkeypatch.setenv("SKETCHCAM_LOG_DIR", str(tmp_path))
    # The reader's own variables; the snippet brings its imports itself.
    namespace = {
        "confidence": 0.2,
        "threshold": 0.5,
        "image": 1.0 - strokes_to_model_input([TOP_STROKE, BOTTOM_STROKE])[..., 0],
        "model": build_top_half_model(),
        "image_id": "guide/1",
    }
    exec(compile(snippet, "monitoring_snippet", "exec"), namespace)
    lines = (tmp_path / "attention.jsonl").read_text().splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["image_id"] == "guide/1"


def _write_many(log: str, worker: int, count: int) -> None:
    """Child process: append ``count`` small records (rotation happens along the way)."""
    from src.monitoring.attention_log import log_attention_pattern

    for number in range(count):
        fake = {
            "top": [{"class_index": 0, "class_name": f"c{worker}", "confidence": 0.3}],
            "margin": 0.1,
            "map": {"grid": [[0.0] * 8] * 8},
        }
        log_attention_pattern(
            fake, f"{worker}-{number}", log_path=log, max_bytes=20_000, backups=50
        )


@pytest.mark.slow
def test_concurrent_writers_lose_no_line_across_rotation(tmp_path: Path) -> None:
    from src.monitoring.summary import log_files, read_records

    log = tmp_path / "attention.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_many, args=(str(log), w, 60)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(30)
        assert process.exitcode == 0
    files = log_files(log)
    assert len(files) > 3 and all(file.stat().st_size <= 20_000 for file in files)
    ids = [record["image_id"] for record in read_records(log)]
    assert sorted(ids) == sorted(f"{w}-{n}" for w in range(4) for n in range(60))


def build_constant_model(biases: list[float]):  # type: ignore[no-untyped-def]
    """A conv model whose logits are ``biases`` whatever the input (zero dense weights).

    Its probabilities are the softmax of ``biases``, computed by hand in the tests.
    """
    import keras
    from keras import layers

    inputs = keras.Input((64, 64, 1))
    x = layers.Conv2D(2, 3, padding="same", activation="relu", name="last_conv")(inputs)
    x = layers.GlobalAveragePooling2D()(x)
    dense = layers.Dense(len(biases), name="logits")
    outputs = layers.Activation("softmax", name="predictions")(dense(x))
    model = keras.Model(inputs, outputs)
    dense.set_weights([np.zeros((2, len(biases)), np.float32), np.asarray(biases, np.float32)])
    return model


def test_attention_logger_logs_only_low_confidence(tmp_path: Path) -> None:
    from src.monitoring.attention_log import AttentionLogger
    from src.visualization.gradcam import GradCAM

    image = np.zeros((64, 64, 1), np.float32)
    image[20:40, 30] = 1.0
    logger = AttentionLogger(tmp_path / "a.jsonl", threshold=0.6, class_names=["cat", "dog"])
    # A confidence the caller already knows to be high skips the analysis and writes nothing.
    assert logger.maybe_log(image, "sure", GradCAM(build_constant_model([0.0, 0.0])), 0.9) is None
    assert not (tmp_path / "a.jsonl").exists()
    # softmax([0, ln 3]) = [1/4, 3/4]: top confidence 0.75 >= 0.6, nothing logged even when the
    # caller passes no confidence (the logger computes it).
    confident = GradCAM(build_constant_model([0.0, float(np.log(3.0))]))
    assert logger.maybe_log(image, "confident", confident) is None
    assert not (tmp_path / "a.jsonl").exists()
    # softmax([ln 1.2, 0]) = [6/11, 5/11]: top confidence 0.545 < 0.6, logged as "cat".
    unsure = GradCAM(build_constant_model([float(np.log(1.2)), 0.0]))
    record = logger.maybe_log(image, "unsure", unsure)
    assert record is not None
    assert record["top"][0]["class_name"] == "cat"
    assert record["top"][0]["confidence"] == pytest.approx(6 / 11, abs=1e-4)
    lines = (tmp_path / "a.jsonl").read_text().splitlines()
    assert [json.loads(line)["image_id"] for line in lines] == ["unsure"]
    with pytest.raises(ValueError, match="threshold"):
        AttentionLogger(tmp_path / "b.jsonl", threshold=1.5)


def test_summary_counts_classes_and_renders_html(tmp_path: Path) -> None:
    from src.errors import DataFormatError
    from src.monitoring.summary import read_records, summarise_log
    from src.reports.monitor_summary import render_monitor_summary

    log = tmp_path / "attention.jsonl"
    grid = np.zeros((8, 8))
    lines = []
    for hour, name, confidence, cell in [
        (9, "cat", 0.3, 1),
        (9, "cat", 0.4, 3),
        (10, "dog", 0.2, 0),
    ]:
        grid_copy = grid.copy()
        grid_copy[0, cell] = 1.0
        lines.append(
            json.dumps(
                {
                    "timestamp": f"2025-01-01T{hour:02d}:05:00+00:00",
                    "image_id": "x",
                    "map": {"grid": grid_copy.tolist()},
                    "top": [{"class_name": name, "confidence": confidence}],
                }
            )
        )
    log.write_text("\n".join(lines) + "\nnot json\n")
    summary = summarise_log(read_records(log), bucket="hour")
    assert summary["records"] == 3
    assert summary["counts_over_time"] == {"2025-01-01T09": 2, "2025-01-01T10": 1}
    cat = summary["low_confidence_classes"][0]
    assert cat["class_name"] == "cat" and cat["count"] == 2
    assert cat["mean_confidence"] == pytest.approx(0.35)
    assert cat["mean_grid"][0][1] == 0.5 and cat["mean_grid"][0][3] == 0.5
    page = render_monitor_summary(summary)
    assert page.count("data:image/png;base64,") == 2 and "<script" not in page
    with pytest.raises(DataFormatError, match="not found"):
        list(read_records(tmp_path / "missing.jsonl"))


def test_default_log_is_under_the_working_directory_or_the_log_dir_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.monitoring.attention_log import log_attention_pattern
    from src.web.settings import WebSettings

    record = {"top": [{"class_index": 0, "class_name": "cat", "confidence": 0.2}], "margin": 0.1}
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("SKETCHCAM_LOG_DIR", raising=False)
    log_attention_pattern(record, "first")
    written = work / "logs" / "attention.jsonl"
    assert json.loads(written.read_text())["image_id"] == "first"
    assert WebSettings().monitor_log == written

    elsewhere = tmp_path / "var" / "sketchcam"
    monkeypatch.setenv("SKETCHCAM_LOG_DIR", str(elsewhere))
    log_attention_pattern(record, "second")
    assert json.loads((elsewhere / "attention.jsonl").read_text())["image_id"] == "second"
    assert len(written.read_text().splitlines()) == 1
    assert WebSettings().monitor_log == elsewhere / "attention.jsonl"
