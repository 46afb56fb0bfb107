"""Hostile inputs by class: every Pillow mode, extreme aspect ratios, JSON numbers and nesting."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from src.data.json_input import JSONInputError, parse_json
from src.data.preprocess import to_model_input
from src.data.quickdraw import ReadReport, read_ndjson
from src.errors import InvalidImageError
from src.utils.exit_status import ExitStatus

GOOD = {"word": "line", "drawing": [[[10, 200], [100, 100]]]}
# Each hostile line stands for a class of input that crashed a decoder once.
HOSTILE_LINES = {
    "huge integer": '{"word": "line", "drawing": [[[10, 1' + "0" * 400 + "], [1, 2]]]}",
    "huge float": '{"word": "line", "drawing": [[[10, 1e400], [1, 2]]]}',
    "NaN constant": '{"word": "line", "drawing": [[[10, NaN], [1, 2]]]}',
    "deep nesting": '{"word": "line", "drawing": ' + "[" * 50_000 + "]" * 50_000 + "}",
}


@pytest.mark.parametrize("mode", sorted(Image.MODES))
def test_every_pillow_mode_is_read(mode: str) -> None:
    image = Image.new("RGB", (40, 30), "white")
    ImageDraw.Draw(image).rectangle((10, 10, 30, 20), fill="black")
    result = to_model_input(image.convert(mode))
    assert result.shape == (64, 64, 1) and np.isfinite(result).all()
    # Every mode keeps the drawing: ink where the rectangle was, none in the margins.
    assert result.max() > 0.5 and result[:3].max() == 0.0


@pytest.mark.parametrize("mode", ["LAB", "La"])
def test_modes_pillow_cannot_convert_match_their_rgb_original(mode: str) -> None:
    original = Image.new("RGBA" if mode == "La" else "RGB", (60, 40), "white")
    ImageDraw.Draw(original).rectangle((10, 10, 50, 25), fill="black")
    expected = to_model_input(original)
    converted = original.convert(mode)
    np.testing.assert_allclose(to_model_input(converted), expected, atol=0.02)


def test_a_very_long_thin_drawing_is_bounded_and_lands_on_the_centre_line() -> None:
    canvas = np.zeros((3, 4_000_000), np.uint8)
    canvas[1, :] = 255  # one ink row the whole length: the square around it would be 4.5M wide
    result = to_model_input(canvas)[..., 0]
    rows_with_ink = np.flatnonzero(result.max(axis=1) > 0)
    columns_with_ink = np.flatnonzero(result.max(axis=0) > 0)
    # A horizontal line through the middle, spanning the width less the 6% margins.
    assert set(rows_with_ink.tolist()) <= set(range(29, 36))
    assert columns_with_ink[0] <= 5 and columns_with_ink[-1] >= 58


@pytest.mark.parametrize("name", sorted(HOSTILE_LINES))
def test_parse_json_refuses_hostile_text(name: str) -> None:
    with pytest.raises(JSONInputError):
        parse_json(HOSTILE_LINES[name])


def test_hostile_ndjson_records_fail_alone(tmp_path: Path) -> None:
    path = tmp_path / "line.ndjson"
    lines = [json.dumps(GOOD), *HOSTILE_LINES.values(), json.dumps(GOOD)]
    path.write_text("\n".join(lines) + "\n")
    report = ReadReport()
    drawings = list(read_ndjson(path, report))
    assert len(drawings) == 2
    assert report.skipped == len(HOSTILE_LINES)


@pytest.mark.slow
def test_batch_with_hostile_records_explains_the_rest_and_exits_9(
    tmp_path: Path, sketch_model_path: Path, sketch_labels_path: Path
) -> None:
    from src.cli.gradcam_analysis import main

    inputs = tmp_path / "inputs"
    inputs.mkdir()
    lines = [json.dumps(GOOD), *HOSTILE_LINES.values(), json.dumps(GOOD)]
    (inputs / "line.ndjson").write_text("\n".join(lines) + "\n")
    output = tmp_path / "out"
    code = main(
        ["--model", str(sketch_model_path), "--labels", str(sketch_labels_path),
         "--output", str(output), "batch", "--images_dir", str(inputs)]
    )  # fmt: skip
    summary = json.loads((output / "batch_summary.json").read_text())
    assert summary["succeeded"] == 2
    assert summary["failed"] == len(HOSTILE_LINES)
    assert code == ExitStatus.PARTIAL_FAILURE


def test_strokes_drawing_file_nested_too_deep_is_one_line_and_exit_8(
    tmp_path: Path, sketch_model_path: Path, sketch_labels_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.gradcam_analysis import main

    drawing = tmp_path / "drawing.json"
    drawing.write_text("[" * 50_000 + "]" * 50_000)
    code = main(
        ["--model", str(sketch_model_path), "--labels", str(sketch_labels_path),
         "--output", str(tmp_path / "out"), "strokes", "--drawing", str(drawing)]
    )  # fmt: skip
    error = capsys.readouterr().err.strip().splitlines()
    assert code == ExitStatus.DATA_FORMAT
    assert len(error) == 1 and "nested too deeply" in error[0]


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_random_bytes_model_is_not_a_keras_model_rather_than_missing(
    tmp_path: Path, suffix: str
) -> None:
    from src.errors import ModelLoadError
    from src.models.io import load_model

    path = tmp_path / f"model{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(3000))
    with pytest.raises(ModelLoadError, match="is not a valid Keras model file") as raised:
        load_model(path)
    assert "not found" not in str(raised.value)


def test_unreadable_image_bytes_name_the_input_not_a_python_object() -> None:
    from src.data.preprocess import load_image

    with pytest.raises(InvalidImageError) as raised:
        load_image(b"these bytes are no image")
    assert "0x" not in str(raised.value) and "image data" in str(raised.value)
