"""`audit` counts are bounded; `compare-models` treats every model card and audit.json as untrusted."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest

from src.data.json_input import JSONInputError, read_json_file
from src.data.quickdraw import Drawing, write_ndjson
from src.utils.exit_status import ExitStatus
from tests.conftest import STROKES_BY_CLASS, TINY_CLASSES
from tests.test_compare_models import (
    _audit,
    _save_model,
    build_ink_model,
    write_labelled_drawings,
)

DEEP = "[" * 100_000 + "]" * 100_000


def _cli(*arguments: str) -> int:
    from src.cli.gradcam_analysis import main

    return main(list(arguments))


# --- audit: counts and seeds are bounded ---------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "value", "bound"),
    [
        ("--per_class", "10000000000000", "100000"),
        ("--per_class", "0", "100000"),
        ("--seed", "-1", "4294967295"),
        ("--seed", "4294967296", "4294967295"),
        ("--batch_size", "10000000000000", "65536"),
    ],
)
def test_audit_counts_out_of_bounds_are_a_usage_error(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    option: str,
    value: str,
    bound: str,
) -> None:
    data = tmp_path / "data"
    write_ndjson([Drawing("circle", STROKES_BY_CLASS["circle"]())], data / "circle.ndjson")
    code = _cli(
        "--model",
        str(sketch_model_path),
        "--labels",
        str(sketch_labels_path),
        "--output",
        str(tmp_path / "out"),
        "audit",
        "--data",
        str(data),
        option,
        value,
    )
    assert code == ExitStatus.USAGE
    error_lines = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(error_lines) == 1
    assert option in error_lines[0] and bound in error_lines[0]
    assert not (tmp_path / "out").exists()


# --- the safe decoder reads files ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (DEEP.encode(), "nested too deeply"),
        (b'{"a": \xff}', "not UTF-8"),
        (b"[1, 2", "invalid JSON"),
        (b'{"x": 1e999}', "out of range"),
    ],
)
def test_read_json_file_refuses_hostile_content(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "card.json"
    path.write_bytes(content)
    with pytest.raises(JSONInputError, match=reason):
        read_json_file(path)


def test_read_json_file_refuses_fifo_devices_and_oversized(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    # No writer ever opens the FIFO: a blocking open would hang here.
    with pytest.raises(JSONInputError, match="FIFO"):
        read_json_file(fifo)
    with pytest.raises(JSONInputError, match="device"):
        read_json_file("/dev/zero")
    with pytest.raises(JSONInputError, match="folder"):
        read_json_file(tmp_path)
    big = tmp_path / "big.json"
    big.write_text(json.dumps(["x" * 100]))
    with pytest.raises(JSONInputError, match="larger than 50 bytes"):
        read_json_file(big, max_bytes=50)
    assert read_json_file(big) == ["x" * 100]


# --- compare-models: bad sidecars are left out, with one warning each ---------------------------


BAD_CARDS = {
    "deep": DEEP,
    "list": json.dumps([{"open_set": {"score": "energy"}}]),
    "open_set_list": json.dumps({"open_set": [1, 2]}),
    "score_object": json.dumps({"open_set": {"score": {"nested": [1]}, "threshold": 1}}),
    "test_nested": json.dumps({"open_set": {"score": "energy", "test": {"auroc": [[0.9]]}}}),
    "not_utf8": b'{"open_set": "\xff"}',
}
BAD_AUDITS = {
    "deep": DEEP,
    "list": json.dumps([_audit(20.0, 0.7)]),
    "factors_list": json.dumps({"factors": [1, 2]}),
    "factor_string": json.dumps({"factors": {"pen_width": "wide"}}),
    "levels_object": json.dumps({"factors": {"pen_width": {"levels": {"a": 1}}}}),
    "paths_list": json.dumps({"factors": {"pen_width": {"levels": [{"paths": [1]}]}}}),
    "top1_string": json.dumps(
        {
            "factors": {
                "pen_width": {
                    "levels": [{"paths": {"to_model_input": {"top1": "high"}}}],
                    "top1_spread_points": {"to_model_input": 3.0},
                }
            }
        }
    ),
    "spread_list": json.dumps(
        {"factors": {"pen_width": {"levels": [], "top1_spread_points": {"snippet": [1]}}}}
    ),
}


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """Two copies of the ink model in their own folders, and a folder of labelled drawings."""
    root = tmp_path_factory.mktemp("sidecars")
    model = build_ink_model(32, "ink_32")
    first = _save_model(model, root / "first", "a", TINY_CLASSES)
    second = _save_model(model, root / "second", "b", TINY_CLASSES)
    return first, second, write_labelled_drawings(root / "data")


def _compare(first: Path, second: Path, data: Path, output: Path, *extra: str) -> int:
    return _cli(
        "--model",
        str(first),
        "--labels",
        str(first.parent / "labels.json"),
        "--output",
        str(output),
        "compare-models",
        "--other_model",
        str(second),
        "--data",
        str(data),
        *extra,
    )


def _warnings_naming(caplog: pytest.LogCaptureFixture, path: Path) -> list[str]:
    """The warnings logged that name ``path``."""
    messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return [message for message in messages if str(path) in message]


def _write(path: Path, content: str | bytes) -> None:
    path.write_bytes(content.encode() if isinstance(content, str) else content)


@pytest.mark.parametrize("kind", sorted(BAD_CARDS))
def test_bad_model_card_is_left_out_with_one_warning(
    two_models: tuple[Path, Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    first, second, data = two_models
    card = second.with_name("model_card.json")
    good = {"score": "energy", "temperature": 1.5, "threshold": -2.0, "test": {"auroc": 0.9}}
    _write(first.with_name("model_card.json"), json.dumps({"open_set": good}))
    _write(card, BAD_CARDS[kind])
    try:
        with caplog.at_level(logging.WARNING):
            code = _compare(first, second, data, tmp_path / "out")
    finally:
        card.unlink()
        first.with_name("model_card.json").unlink()
    assert code == ExitStatus.SUCCESS
    about_card = _warnings_naming(caplog, card)
    assert len(about_card) == 1 and "\n" not in about_card[0]
    summary = json.loads((tmp_path / "out" / "model_comparison.json").read_text())
    # The good card beside the first model is still read; the bad one is left out.
    assert summary["models"][0]["open_set"] == good
    assert summary["models"][1]["open_set"] is None


@pytest.mark.parametrize("kind", sorted(BAD_AUDITS))
def test_bad_audit_report_is_left_out_with_one_warning(
    two_models: tuple[Path, Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    kind: str,
) -> None:
    first, second, data = two_models
    (tmp_path / "audit_a").mkdir()
    (tmp_path / "audit_b").mkdir()
    _write(tmp_path / "audit_a" / "audit.json", json.dumps(_audit(20.0, 0.7)))
    bad = tmp_path / "audit_b" / "audit.json"
    _write(bad, BAD_AUDITS[kind])
    with caplog.at_level(logging.WARNING):
        code = _compare(
            first,
            second,
            data,
            tmp_path / "out",
            "--audit",
            str(tmp_path / "audit_a"),
            "--other_audit",
            str(tmp_path / "audit_b"),
        )
    assert code == ExitStatus.SUCCESS
    assert len(_warnings_naming(caplog, bad)) == 1
    summary = json.loads((tmp_path / "out" / "model_comparison.json").read_text())
    assert summary["pairs"][0]["audit_deltas"] is None


def test_audit_folder_without_audit_json_is_still_an_error(
    two_models: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, data = two_models
    (tmp_path / "empty").mkdir()
    code = _compare(first, second, data, tmp_path / "out", "--audit", str(tmp_path / "empty"))
    assert code == ExitStatus.ERROR
    assert "run `audit` with --output that folder first" in capsys.readouterr().err


def test_open_set_rule_from_a_fifo_or_deep_card_is_one_error(tmp_path: Path) -> None:
    from src.errors import ModelLoadError
    from src.inference.open_set import OpenSetRule

    fifo = tmp_path / "model_card.json"
    os.mkfifo(fifo)
    with pytest.raises(ModelLoadError, match="FIFO"):
        OpenSetRule.from_card(fifo)  # a blocking open would wait here for a writer
    deep = tmp_path / "deep_card.json"
    deep.write_text(DEEP)
    with pytest.raises(ModelLoadError, match="nested too deeply"):
        OpenSetRule.from_card(deep)
