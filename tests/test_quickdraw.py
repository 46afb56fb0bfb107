"""Readers for every Quick, Draw! format, on tiny files written here, including malformed ones."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.data.quickdraw import (
    Drawing,
    ReadReport,
    load_bitmaps,
    read_binary,
    read_bitmaps,
    read_image_folder,
    read_ndjson,
    write_ndjson,
)
from src.errors import DataFormatError

SIMPLIFIED = {
    "word": "line",
    "countrycode": "FR",
    "recognized": False,
    "key_id": "123",
    "timestamp": "2017-01-01",
    "drawing": [[[0, 255], [10, 10]]],
}
RAW = {"word": "dot", "key_id": "9", "drawing": [[[1.5, 2.25], [3.0, 4.5], [0, 17]]]}


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_read_ndjson_simplified_and_raw(tmp_path: Path) -> None:
    file = _write_lines(tmp_path / "x.ndjson", [json.dumps(SIMPLIFIED), json.dumps(RAW)])
    drawings = list(read_ndjson(file))
    assert [d.word for d in drawings] == ["line", "dot"]
    assert drawings[0] == Drawing("line", [[[0, 255], [10, 10]]], "123", False, "FR", "2017-01-01")
    assert drawings[1].strokes[0][0] == [1.5, 2.25] and drawings[1].recognized is True


def test_read_ndjson_counts_malformed_records(tmp_path: Path) -> None:
    lines = [
        json.dumps(SIMPLIFIED),
        "{not json",
        json.dumps({"word": "x"}),
        json.dumps({"word": "x", "drawing": [[[1, 2], [3]]]}),
        "",
        json.dumps(SIMPLIFIED),
    ]
    report = ReadReport()
    drawings = list(read_ndjson(_write_lines(tmp_path / "bad.ndjson", lines), report))
    assert len(drawings) == 2
    assert (report.read, report.skipped) == (2, 3)
    assert "bad.ndjson:line 2" in report.problems[0]
    assert "line 3" in report.problems[1] and "drawing" in report.problems[1]
    assert "line 4" in report.problems[2]


@pytest.mark.parametrize(
    ("content", "match"),
    [("this is not json\n", r"wrong\.ndjson:1: not ndjson"), (b"\xff\xfe\x00bad", "not UTF-8")],
)
def test_read_ndjson_rejects_wrong_file(tmp_path: Path, content: str | bytes, match: str) -> None:
    file = tmp_path / "wrong.ndjson"
    if isinstance(content, bytes):
        file.write_bytes(content)
    else:
        file.write_text(content)
    with pytest.raises(DataFormatError, match=match):
        list(read_ndjson(file))


def test_write_ndjson_round_trips(tmp_path: Path) -> None:
    drawings = [Drawing("cat", [[[0, 5], [1, 2]], [[7], [8]]], "42", True, "US", None)]
    assert write_ndjson(drawings, tmp_path / "cat.ndjson") == 1
    assert list(read_ndjson(tmp_path / "cat.ndjson")) == drawings


def _bin_record(key_id: int, strokes: list[tuple[list[int], list[int]]]) -> bytes:
    """Google's .bin layout, packed by hand from the format description."""
    out = struct.pack("<Q", key_id) + b"DE" + bytes([1]) + struct.pack("<I", 1490000000)
    out += struct.pack("<H", len(strokes))
    for xs, ys in strokes:
        out += struct.pack("<H", len(xs)) + bytes(xs) + bytes(ys)
    return out


def test_read_binary(tmp_path: Path) -> None:
    file = tmp_path / "house.bin"
    file.write_bytes(
        _bin_record(7, [([0, 10, 20], [5, 6, 7])]) + _bin_record(8, [([1], [2]), ([3, 4], [5, 6])])
    )
    drawings = list(read_binary(file))
    assert [d.key_id for d in drawings] == ["7", "8"]
    assert drawings[0].word == "house" and drawings[0].countrycode == "DE"
    assert drawings[0].strokes == [[[0, 10, 20], [5, 6, 7]]]
    assert drawings[1].strokes[1] == [[3, 4], [5, 6]] and drawings[0].timestamp == 1490000000


def test_read_binary_truncated_names_offset(tmp_path: Path) -> None:
    first = _bin_record(7, [([0, 10], [5, 6])])
    file = tmp_path / "t.bin"
    file.write_bytes(first + _bin_record(8, [([1, 2, 3], [4, 5, 6])])[:-2])
    with pytest.raises(DataFormatError, match=rf"t\.bin.*drawing 2 at byte offset {len(first)}"):
        list(read_binary(file))


def test_read_binary_counts_empty_drawing(tmp_path: Path) -> None:
    file = tmp_path / "e.bin"
    file.write_bytes(_bin_record(1, []) + _bin_record(2, [([1, 2], [3, 4])]))
    report = ReadReport()
    assert [d.key_id for d in read_binary(file, report=report)] == ["2"]
    assert report.skipped == 1 and "byte 0" in report.problems[0]


def test_bitmaps_reshape_row_major(tmp_path: Path) -> None:
    rows = np.zeros((2, 784), np.uint8)
    rows[1, 28 * 3 + 5] = 255  # row 3, column 5
    np.save(tmp_path / "apple.npy", rows)
    images = list(read_bitmaps(tmp_path / "apple.npy"))
    assert len(images) == 2 and images[0].word == "apple"
    assert images[1].image.shape == (28, 28) and images[1].image[3, 5] == 255
    assert images[1].image.sum() == 255


@pytest.mark.parametrize("shape", [(3, 28, 28), (2, 783), (784,)])
def test_bitmaps_reject_wrong_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    np.save(tmp_path / "x.npy", np.zeros(shape, np.uint8))
    with pytest.raises(DataFormatError, match=r"x\.npy.*\(N, 784\)"):
        load_bitmaps(tmp_path / "x.npy")


def test_bitmaps_reject_non_npy(tmp_path: Path) -> None:
    (tmp_path / "x.npy").write_text("hello")
    with pytest.raises(DataFormatError, match="not a readable .npy"):
        load_bitmaps(tmp_path / "x.npy")


def test_image_folder_with_broken_file(tmp_path: Path) -> None:
    for name, value in (("cat", 0), ("dog", 255)):
        (tmp_path / name).mkdir()
        Image.new("L", (10, 10), value).save(tmp_path / name / "a.png")
    (tmp_path / "dog" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "dog" / "notes.txt").write_text("ignored")
    report = ReadReport()
    items = list(read_image_folder(tmp_path, report))
    assert [(item.word, int(item.image[0, 0])) for item in items] == [("cat", 0), ("dog", 255)]
    assert report.skipped == 1 and "broken.png" in report.problems[0]


def test_image_folder_missing(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="sub-folder"):
        list(read_image_folder(tmp_path))


def test_numeric_and_nesting_extremes_are_per_record_failures(tmp_path: Path) -> None:
    huge = dict(SIMPLIFIED, drawing=[[[0, 10**400], [10, 10]]])
    deep = '{"word": "line", "drawing": ' + "[" * 100_000 + "]" * 100_000 + "}"
    float_overflow = json.dumps(SIMPLIFIED).replace("255", "1e400")
    lines = [json.dumps(SIMPLIFIED), json.dumps(huge), deep, float_overflow, json.dumps(RAW)]
    report = ReadReport()
    drawings = list(read_ndjson(_write_lines(tmp_path / "x.ndjson", lines), report))
    assert [d.word for d in drawings] == ["line", "dot"]
    assert report.skipped == 3
    assert [problem.split(":")[1] for problem in report.problems] == ["line 2", "line 3", "line 4"]
    assert "nested too deeply" in report.problems[1]


def test_monitor_log_skips_deep_lines(tmp_path: Path) -> None:
    from src.monitoring.log_records import GRID_SIZE
    from src.monitoring.summary import read_records

    # A record as log_attention_pattern writes it (monitor skips records of any other shape).
    good = {
        "timestamp": "2025-01-01T09:05:00+00:00",
        "image_id": "x",
        "map": {"grid": [[0.5] * GRID_SIZE for _ in range(GRID_SIZE)]},
        "top": [{"class_name": "cat", "confidence": 0.5}],
    }
    log = _write_lines(tmp_path / "log.jsonl", [json.dumps(good), "[" * 100_000, json.dumps(good)])
    assert list(read_records(log)) == [good, good]
