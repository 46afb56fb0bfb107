"""A compared model's sidecar files, ``model_card.json`` and ``audit.json``: untrusted input.

Each file is read through the one safe decoder (``src.data.json_input.read_json_file``) and its
shape is checked against what the comparison reads from it. A missing file is simply absent; a
bad one (not a regular file, not JSON, nested too deeply, the wrong shape) is left out with one
warning naming the file and the reason, and the comparison goes on without it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from src.data.json_input import JSONInputError, read_json_file

logger = logging.getLogger(__name__)

_SCALARS = (str, int, float, bool, type(None))
# The open-set fields a comparison repeats, and the one among them that holds figures.
_OPEN_SET_SCALARS = ("score", "temperature", "threshold", "recognised_when")
_OPEN_SET_FIGURES = "test"
_NUMBER_OR_NONE = (int, float, type(None))


def _card_problem(card: object) -> str | None:
    """Why ``card`` is not a model card a comparison can read, or None."""
    if not isinstance(card, dict):
        return f"a JSON {type(card).__name__}, not an object"
    block = card.get("open_set")
    if block is None:
        return None
    if not isinstance(block, dict):
        return "open_set is not an object"
    for key in _OPEN_SET_SCALARS:
        if not isinstance(block.get(key), _SCALARS):
            return f"open_set.{key} is not a plain value"
    figures = block.get(_OPEN_SET_FIGURES, {})
    if not isinstance(figures, dict) or not all(isinstance(v, _SCALARS) for v in figures.values()):
        return f"open_set.{_OPEN_SET_FIGURES} is not an object of plain values"
    return None


def _level_problem(level: object) -> str | None:
    """Why one audit level is malformed, or None."""
    if not isinstance(level, dict) or not isinstance(level.get("paths"), dict):
        return "a level without a paths object"
    for figures in level["paths"].values():
        if not isinstance(figures, dict) or not all(
            isinstance(figures.get(key), _NUMBER_OR_NONE) and not isinstance(figures.get(key), bool)
            for key in ("top1", "map_rank_correlation")
        ):
            return "a level's top1 or map_rank_correlation is not a number"
    return None


def _audit_problem(report: object) -> str | None:
    """Why ``report`` is not an audit report a comparison can read, or None."""
    if not isinstance(report, dict):
        return f"a JSON {type(report).__name__}, not an object"
    factors = report.get("factors", {})
    if not isinstance(factors, dict):
        return "factors is not an object"
    for name, factor in factors.items():
        if not isinstance(factor, dict):
            return f"factor {name!r} is not an object"
        spreads = factor.get("top1_spread_points", {})
        levels = factor.get("levels", [])
        if not isinstance(spreads, dict) or not all(
            isinstance(value, _NUMBER_OR_NONE) and not isinstance(value, bool)
            for value in spreads.values()
        ):
            return f"factor {name!r}: top1_spread_points is not an object of numbers"
        if not isinstance(levels, list):
            return f"factor {name!r}: levels is not a list"
        problem = next((p for p in map(_level_problem, levels) if p is not None), None)
        if problem is not None:
            return f"factor {name!r}: {problem}"
    return None


def _read_checked(path: Path, problem_of: Any, what: str) -> Mapping[str, Any] | None:
    """The file's content if it is readable and well-shaped; else None and one warning."""
    try:
        content = read_json_file(path)
    except (OSError, JSONInputError) as error:
        logger.warning("ignored %s %s: %s", what, path, error)
        return None
    problem = problem_of(content)
    if problem is not None:
        logger.warning("ignored %s %s: %s", what, path, problem)
        return None
    return content


def read_model_card(path: str | Path) -> Mapping[str, Any] | None:
    """A model's ``model_card.json``; None when absent or unusable (then one warning says why)."""
    file = Path(path)
    if not file.exists():
        return None
    return _read_checked(file, _card_problem, "model card")


def read_audit_report(path: str | Path) -> Mapping[str, Any] | None:
    """An ``audit.json`` written by ``audit``; None when absent or unusable (one warning says why)."""
    file = Path(path)
    if not file.exists():
        return None
    return _read_checked(file, _audit_problem, "audit report")
