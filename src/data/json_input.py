"""One JSON decoder for every file a user hands over (ndjson drawings, drawings, logs, cards).

``json.loads`` raises three different things on hostile text: ``JSONDecodeError`` for bad
syntax, ``RecursionError`` for arrays nested thousands deep, and (later, when the numbers are
used) ``OverflowError`` for integers like ``10**400``. Callers treat one bad record as one
failure, so every such problem becomes a ``ValueError`` that says what is wrong.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from src.utils.input_files import NotRegularFileError, open_regular_file

# Sidecar files (model cards, audit reports) are a few hundred kilobytes; far more is not one.
MAX_JSON_FILE_BYTES = 16 * 1024 * 1024


class JSONInputError(ValueError):
    """The text is not usable JSON; the message says why."""


def _finite_float(text: str) -> float:
    """A JSON number as a float; out-of-range values are refused rather than made infinite."""
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(f"number {text[:20]}... is out of range")
    return value


def _bounded_int(text: str) -> int | float:
    """A JSON integer; beyond float range it is refused (coordinates and scores are floats)."""
    if len(text.lstrip("-")) > 308:
        raise JSONInputError(f"number {text[:20]}... is out of range")
    return int(text)


def _refuse_constant(name: str) -> float:
    """NaN and Infinity are not JSON; Python's decoder would accept them."""
    raise JSONInputError(f"{name} is not a JSON number")


def parse_json(text: str, max_depth: int | None = None) -> object:
    """Decode JSON text, turning every malformed or hostile input into ``JSONInputError``.

    Args:
        text: the JSON text.
        max_depth: refuse arrays and objects nested deeper than this (None: only Python's own
            recursion limit applies). Callers that hand the value to recursive code, like a
            model config to Keras, bound it here so that code never meets the deep structure.

    Raises:
        JSONInputError: bad syntax (with its position), nesting too deep, numbers out of range.
    """
    try:
        value = json.loads(
            text,
            parse_float=_finite_float,
            parse_int=_bounded_int,
            parse_constant=_refuse_constant,
        )
    except JSONInputError:
        raise
    except json.JSONDecodeError as error:
        raise JSONInputError(f"invalid JSON ({error.msg} at line {error.lineno})") from error
    except RecursionError as error:
        raise JSONInputError("JSON nested too deeply") from error
    if max_depth is not None and _depth_exceeds(value, max_depth):
        raise JSONInputError(f"JSON nested deeper than {max_depth} levels")
    return value


def read_json_file(path: str | Path, max_bytes: int = MAX_JSON_FILE_BYTES) -> object:
    """Read and decode a JSON file a user handed over (a model card, an audit report).

    Only a regular file is read (never a FIFO or a device), at most ``max_bytes`` of it, as UTF-8.

    Raises:
        JSONInputError: not a regular file, larger than ``max_bytes``, not UTF-8, or not usable
            JSON (the message says which).
        OSError: the file is missing or cannot be opened.
    """
    try:
        with open_regular_file(path) as stream:
            data = stream.read(max_bytes + 1)
    except NotRegularFileError as error:
        raise JSONInputError(str(error)) from error
    if len(data) > max_bytes:
        raise JSONInputError(f"larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise JSONInputError(f"not UTF-8 text (byte {error.start})") from error
    return parse_json(text)


def _depth_exceeds(value: object, max_depth: int) -> bool:
    """Whether containers nest deeper than ``max_depth`` (iterative: no recursion to exhaust)."""
    pending: list[tuple[object, int]] = [(value, 1)]
    while pending:
        item, level = pending.pop()
        if not isinstance(item, (dict, list)):
            continue
        if level > max_depth:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, level + 1) for child in children)
    return False
