"""`monitor`: a log is untrusted input (wrong-shaped records, special files, unbounded reads)."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import pytest

from src.utils.exit_status import ExitStatus

GRID = [[0.25] * 8 for _ in range(8)]


def _good(class_name: str, confidence: float) -> dict:
    """A record as log_attention_pattern writes it."""
    return {
        "timestamp": "2025-01-01T09:05:00+00:00",
        "image_id": "x",
        "map": {"grid": GRID},
        "top": [{"class_name": class_name, "confidence": confidence}],
    }


def _with_top(**fields: object) -> dict:
    record = _good("circle", 0.2)
    record["top"] = [{"class_name": "circle", "confidence": 0.2, **fields}]
    return record


def _with(key: str, value: object) -> dict:
    record = _good("circle", 0.2)
    record[key] = value
    return record


def _without_class_name() -> dict:
    record = _good("circle", 0.2)
    del record["top"][0]["class_name"]
    return record


BAD_RECORDS = {
    "top_string": _with("top", "circle"),
    "top_object": _with("top", {"class_name": "circle", "confidence": 0.2}),
    "top_numbers": _with("top", [0.2, 0.5]),
    "top_empty": _with("top", []),
    "confidence_string": _with_top(confidence="0.2"),
    "confidence_null": _with_top(confidence=None),
    "confidence_bool": _with_top(confidence=True),
    "class_name_list": _with_top(class_name=["circle"]),
    "class_name_missing": _without_class_name(),
    "map_list": _with("map", [[0.1]]),
    "grid_ragged": _with("map", {"grid": [[0.1] * 8] * 7 + [[0.1] * 3]}),
    "grid_empty": _with("map", {"grid": []}),
    "grid_text": _with("map", {"grid": [["a"] * 8] * 8}),
    "grid_flat": _with("map", {"grid": [0.1] * 64}),
    "grid_other_size": _with("map", {"grid": [[0.1] * 4] * 4}),
    "timestamp_list": _with("timestamp", [1, 2]),
    "record_list": [1, 2, 3],
}


def _cli(*arguments: str) -> int:
    from src.cli.gradcam_analysis import main

    return main(list(arguments))


def _summary(output: Path) -> dict:
    return json.loads((output / "monitor_summary.json").read_text())


@pytest.mark.parametrize("kind", sorted(BAD_RECORDS))
def test_a_wrong_shaped_record_is_skipped_and_counted(tmp_path: Path, kind: str) -> None:
    log = tmp_path / "attention.jsonl"
    lines = [_good("circle", 0.2), BAD_RECORDS[kind], _good("line", 0.4), _good("circle", 0.3)]
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    output = tmp_path / "out"
    assert _cli("--output", str(output), "monitor", "--log", str(log)) == ExitStatus.SUCCESS
    summary = _summary(output)
    assert summary["records"] == 3 and summary["skipped_lines"] == 1
    # The three good records by hand: circle twice (0.2, 0.3), line once.
    assert summary["low_confidence_classes"] == [
        {"class_name": "circle", "count": 2, "mean_confidence": 0.25, "mean_grid": GRID},
        {"class_name": "line", "count": 1, "mean_confidence": 0.4, "mean_grid": GRID},
    ]


def test_an_over_long_line_is_skipped_and_the_next_line_read(tmp_path: Path) -> None:
    from src.monitoring.log_records import MAX_LINE_BYTES

    log = tmp_path / "attention.jsonl"
    huge = json.dumps(_with("image_id", "x" * (2 * MAX_LINE_BYTES + 10)))
    lines = [json.dumps(_good("circle", 0.2)), huge, json.dumps(_good("line", 0.4))]
    log.write_text("\n".join(lines) + "\n")
    output = tmp_path / "out"
    assert _cli("--output", str(output), "monitor", "--log", str(log)) == ExitStatus.SUCCESS
    summary = _summary(output)
    assert summary["records"] == 2 and summary["skipped_lines"] == 1


def test_max_bytes_bounds_the_total_read(tmp_path: Path) -> None:
    log = tmp_path / "attention.jsonl"
    line = json.dumps(_good("circle", 0.2)) + "\n"
    log.write_text(line * 10)
    output = tmp_path / "out"
    # Room for exactly three whole lines and part of a fourth (which is then not JSON).
    limit = str(3 * len(line.encode()) + 5)
    code = _cli("--output", str(output), "monitor", "--log", str(log), "--max_bytes", limit)
    assert code == ExitStatus.SUCCESS
    summary = _summary(output)
    assert summary["records"] == 3 and summary["skipped_lines"] == 1


@pytest.mark.parametrize("value", ["0", "-1", "many"])
def test_max_bytes_must_be_a_positive_count(tmp_path: Path, value: str) -> None:
    log = tmp_path / "attention.jsonl"
    log.write_text(json.dumps(_good("circle", 0.2)) + "\n")
    code = _cli("--output", str(tmp_path), "monitor", "--log", str(log), "--max_bytes", value)
    assert code == ExitStatus.USAGE


def _run_with_watchdog(arguments: list[str], on_hang: object) -> int:
    """Run the CLI in a thread; if it has not returned in 60 s, call ``on_hang`` to release it."""
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(_cli(*arguments)), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():
        on_hang()  # type: ignore[operator]
        worker.join(10)
        pytest.fail("monitor blocked on a special file")
    return result[0]


@pytest.mark.parametrize("special", ["fifo", "/dev/zero", "/dev/urandom", "folder"])
def test_a_log_that_is_not_a_regular_file_exits_8(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], special: str
) -> None:
    if special == "fifo":
        log = tmp_path / "attention.jsonl"
        os.mkfifo(log)
    elif special == "folder":
        log = tmp_path / "attention.jsonl"
        log.mkdir()
    else:
        log = Path(special)

    def release() -> None:
        # Open the FIFO's writing end once so a blocked reader sees end-of-file and the test ends.
        if special == "fifo":
            os.close(os.open(log, os.O_WRONLY | os.O_NONBLOCK))

    arguments = ["--output", str(tmp_path / "out"), "monitor", "--log", str(log)]
    assert _run_with_watchdog(arguments, release) == ExitStatus.DATA_FORMAT
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and str(log) in error[0]
    assert not (tmp_path / "out").exists()
