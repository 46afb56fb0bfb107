"""Per-factor differences between two models' ``audit.json`` (the invariance audit's report)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _path_figures(factor: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Spread, worst top-1, mean map correlation and flag of one factor read by one path."""
    levels = [level["paths"][path] for level in factor.get("levels", []) if path in level["paths"]]
    top1 = [level["top1"] for level in levels if level.get("top1") is not None]
    correlations = [
        level["map_rank_correlation"]
        for level in levels
        if level.get("map_rank_correlation") is not None
    ]
    return {
        "spread_points": factor.get("top1_spread_points", {}).get(path),
        "worst_top1": min(top1) if top1 else None,
        "mean_map_rank_correlation": (
            round(sum(correlations) / len(correlations), 4) if correlations else None
        ),
    }


def _delta(first: float | None, second: float | None) -> float | None:
    """second - first, rounded, or None when either is missing."""
    return None if first is None or second is None else round(second - first, 4)


def audit_deltas(first: Mapping[str, Any], second: Mapping[str, Any]) -> dict[str, Any]:
    """Per factor and input path: both models' audit figures and the second minus the first.

    Args:
        first: the first model's ``audit.json`` content.
        second: the second model's.

    Returns:
        ``{factor: {path: {"first": {...}, "second": {...}, "delta": {...}}, "flagged": [a, b]}}``
        for the factors both audits measured; the figures are the top-1 spread over levels (in
        points), the worst level's top-1 and the mean map rank correlation with the reference
        rendering.
    """
    deltas: dict[str, Any] = {}
    first_factors = first.get("factors", {})
    second_factors = second.get("factors", {})
    for name in (name for name in first_factors if name in second_factors):
        entry: dict[str, Any] = {
            "flagged": [
                bool(first_factors[name].get("flagged")),
                bool(second_factors[name].get("flagged")),
            ]
        }
        paths = first_factors[name].get("top1_spread_points", {})
        for path in (
            path for path in paths if path in second_factors[name].get("top1_spread_points", {})
        ):
            figures = [
                _path_figures(factors[name], path) for factors in (first_factors, second_factors)
            ]
            entry[path] = {
                "first": figures[0],
                "second": figures[1],
                "delta": {key: _delta(figures[0][key], figures[1][key]) for key in figures[0]},
            }
        deltas[name] = entry
    return deltas
