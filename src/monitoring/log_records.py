"""Reading an attention log as untrusted input: bounded lines, a bounded total, checked records.

A log path may name anything (a FIFO, ``/dev/zero``), and any line may hold any JSON. Only
regular files are opened; a line longer than ``MAX_LINE_BYTES`` is skipped unread; reading stops
after ``max_bytes`` in all (``monitor --max_bytes``); and each decoded record is checked against
the shape ``log_attention_pattern`` writes before the summary uses it. Every skipped line is
counted in a ``ReadReport`` and logged as one warning, as malformed JSON lines are.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from src.data.quickdraw import ReadReport
from src.errors import DataFormatError
from src.monitoring.attention_log import GRID_SIZE
from src.utils.input_files import NotRegularFileError, open_regular_file

logger = logging.getLogger(__name__)

# A logged record is about a kilobyte (the overlay PNG goes to its own file); far longer is not one.
MAX_LINE_BYTES = 1024 * 1024
# Ten times what the default rotation keeps (10 MiB in each of 6 files).
DEFAULT_MAX_READ_BYTES = 600 * 1024 * 1024


def _is_number(value: object) -> bool:
    """A JSON number (not a boolean) that is finite."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _grid_problem(grid: object) -> str | None:
    """Why a map grid is not GRID_SIZE x GRID_SIZE numbers, or None."""
    if not isinstance(grid, list) or len(grid) != GRID_SIZE:
        return f"map.grid is not a list of {GRID_SIZE} rows"
    for row in grid:
        if not isinstance(row, list) or len(row) != GRID_SIZE:
            return f"map.grid has a row that is not {GRID_SIZE} values"
        if not all(_is_number(value) for value in row):
            return "map.grid holds a value that is not a number"
    return None


def record_problem(record: object) -> str | None:
    """Why a decoded log line is not a record the summary can use, or None when it is.

    A record is an object with a non-empty ``top`` list whose first entry has a string
    ``class_name`` and a ``confidence`` from 0 to 1; ``timestamp``, when present, is a string;
    ``map``, when present, is an object whose ``grid`` (optional) is GRID_SIZE x GRID_SIZE numbers.
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    top = record.get("top")
    if not isinstance(top, list) or not top or not isinstance(top[0], dict):
        return "top is not a list of predictions"
    first = top[0]
    if not isinstance(first.get("class_name"), str):
        return "top[0].class_name is not a string"
    confidence = first.get("confidence")
    if not _is_number(confidence) or not 0.0 <= confidence <= 1.0:
        return "top[0].confidence is not a number from 0 to 1"
    if not isinstance(record.get("timestamp", ""), str):
        return "timestamp is not a string"
    heat_map = record.get("map")
    if heat_map is None:
        return None
    if not isinstance(heat_map, dict):
        return "map is not an object"
    grid = heat_map.get("grid")
    return None if grid is None else _grid_problem(grid)


def bounded_lines(
    files: list[Path], report: ReadReport, max_bytes: int = DEFAULT_MAX_READ_BYTES
) -> Iterator[tuple[Path, int, str]]:
    """Yield (file, line number, text) for each line of ``files``, within the bounds.

    Lines longer than MAX_LINE_BYTES are skipped (and counted); reading stops with one warning
    once ``max_bytes`` have been read in all.

    Raises:
        DataFormatError: one of ``files`` is not a regular file (a FIFO, a device, a folder).
    """
    budget = max_bytes
    for file in files:
        report.path = str(file)
        try:
            stream = open_regular_file(file)
        except NotRegularFileError as error:
            raise DataFormatError(f"attention log {error}") from error
        with stream:
            number = 0
            while budget > 0:
                line = stream.readline(min(MAX_LINE_BYTES + 1, budget))
                if not line:
                    break
                budget -= len(line)
                number += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    report.add_problem(f"line {number}", f"longer than {MAX_LINE_BYTES} bytes")
                    budget -= _skip_rest_of_line(stream, budget)
                    continue
                yield file, number, line.decode("utf-8", errors="replace")
        if budget <= 0:
            logger.warning(
                "stopped reading the attention log after %d bytes (--max_bytes); "
                "later lines are not summarised",
                max_bytes,
            )
            return


def _skip_rest_of_line(stream: BinaryIO, budget: int) -> int:
    """Read past the end of an over-long line, at most ``budget`` bytes; the bytes read."""
    skipped = 0
    while skipped < budget:
        chunk = stream.readline(min(MAX_LINE_BYTES, budget - skipped))
        skipped += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            break
    return skipped
