"""The JSON content of a model comparison, built from the measured runs (no model calls here)."""

from __future__ import annotations

from collections.abc import Mapping
from itertools import combinations
from typing import Any

import numpy as np

from src.explain.audit_deltas import audit_deltas
from src.explain.map_agreement import mcnemar_exact, rank_correlation

# Inputs shown in the "attention differs most" gallery, per pair of models.
GALLERY_SIZE = 12
# Only inputs whose maps' rank correlation is below this count as differing: at 0.9 and above
# the two maps rank the same cells hottest, so showing them as "most different" when two
# models agree everywhere would point at differences that are not there.
DIFFERENT_BELOW = 0.9
# The open-set fields of a model card worth repeating (the card keeps the rest).
OPEN_SET_FIELDS = ("score", "temperature", "threshold", "recognised_when", "test")
MCNEMAR_TEST = "exact two-sided binomial test of the discordant inputs (math.comb)"


def _rounded(value: float | None, digits: int = 4) -> float | None:
    """A float for JSON: rounded, and None for missing or NaN."""
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), digits)


def _correct(run: Any, truths: list[str | None], top: int) -> np.ndarray:
    """Per labelled input: whether the true class is among the model's ``top`` answers."""
    order = np.argsort(-run.probabilities, axis=1, kind="stable")[:, :top]
    names = run.spec.class_names
    return np.array(
        [
            truth in {names[index] for index in order[number]}
            for number, truth in enumerate(truths)
            if truth is not None
        ],
        dtype=bool,
    )


def _ink_figures(shares: np.ndarray, areas: np.ndarray) -> dict[str, Any]:
    """Mean share of heat near ink, the chance level, and the flag for background attention."""
    defined = np.isfinite(shares)
    share = float(shares[defined].mean()) if defined.any() else float("nan")
    area = float(areas[defined].mean()) if defined.any() else float("nan")
    return {
        "mean_share": _rounded(share),
        "chance_share": _rounded(area),
        "lift": _rounded(share / area) if area > 0 else None,
        "inputs_below_chance": int((shares[defined] < areas[defined]).sum()),
        "inputs_with_heat": int(defined.sum()),
        # A uniform map puts ``area`` of its heat near ink; less than that means the model
        # looks at the blank canvas more than at the drawing.
        "flagged": bool(defined.any() and share < area),
    }


def _ink_summary(run: Any, targets: list[str | None]) -> dict[str, Any]:
    """Ink figures over every input, and per explained class."""
    explained = np.array([target or "" for target in targets], dtype=object)
    per_class = {
        class_name: _ink_figures(run.ink_share[rows], run.ink_area[rows])
        for class_name in dict.fromkeys(target for target in targets if target is not None)
        if (rows := explained == class_name).any()
    }
    return {**_ink_figures(run.ink_share, run.ink_area), "per_class": per_class}


def _model_summary(run: Any, truths: list[str | None], targets: list[str | None]) -> dict[str, Any]:
    """One model's description, accuracy on the labelled inputs, open-set figures and ink share."""
    top1, top3 = _correct(run, truths, 1), _correct(run, truths, 3)
    card: Mapping[str, Any] = run.spec.card or {}
    open_set = card.get("open_set")
    return {
        "name": run.spec.name,
        "input_size": run.input_size,
        "layer": run.layer_name,
        "method": run.method,
        "classes": len(run.spec.class_names),
        "labelled_inputs": int(top1.size),
        "top1": _rounded(top1.mean()) if top1.size else None,
        "top3": _rounded(top3.mean()) if top3.size else None,
        "open_set": (
            {key: open_set[key] for key in OPEN_SET_FIELDS if key in open_set}
            if isinstance(open_set, Mapping)
            else None
        ),
        "ink": _ink_summary(run, targets),
    }


def pair_name(first: Any, second: Any) -> str:
    """How outputs name a pair of runs: "a.h5 vs b.h5"."""
    return f"{first.spec.name} vs {second.spec.name}"


def _agreement(first: Any, second: Any, truths: list[str | None]) -> dict[str, Any]:
    """Right/wrong 2x2 on the labelled inputs, McNemar's p-value, and same-answer rate overall."""
    right_first, right_second = _correct(first, truths, 1), _correct(second, truths, 1)
    counts = {
        "both_right": int((right_first & right_second).sum()),
        "first_only_right": int((right_first & ~right_second).sum()),
        "second_only_right": int((~right_first & right_second).sum()),
        "both_wrong": int((~right_first & ~right_second).sum()),
    }
    answers = [
        [run.spec.class_names[index] for index in run.probabilities.argmax(axis=1)]
        for run in (first, second)
    ]
    same = sum(a == b for a, b in zip(*answers))
    return {
        "labelled_inputs": int(right_first.size),
        **counts,
        # Three significant digits: p-values of 1e-40 must not print as 0.
        "mcnemar_p_value": float(
            f"{mcnemar_exact(counts['first_only_right'], counts['second_only_right']):.3g}"
        ),
        "mcnemar_test": MCNEMAR_TEST,
        "same_answer": _rounded(same / len(answers[0])),
        "same_answer_count": int(same),
    }


def class_mean_maps(comparison: Any) -> dict[str, np.ndarray]:
    """Per shared class with explained inputs: each model's mean map, stacked (M, G, G)."""
    targets = np.array([target or "" for target in comparison.targets], dtype=object)
    means = {}
    for class_name in comparison.shared_classes:
        rows = targets == class_name
        if rows.any():
            means[class_name] = np.stack(
                [run.grid_heatmaps[rows].mean(axis=0) for run in comparison.runs]
            )
    return means


def _mean_defined(values: list[float | None]) -> float | None:
    """Mean of the values that are not None (None when there are none)."""
    defined = [value for value in values if value is not None]
    return _rounded(float(np.mean(defined))) if defined else None


def _pair_summary(
    comparison: Any,
    first_index: int,
    second_index: int,
    correlations: list[float | None],
    means: dict[str, np.ndarray],
) -> dict[str, Any]:
    """Agreement, map correlations per class and overall, the most different inputs, audits."""
    first, second = comparison.runs[first_index], comparison.runs[second_index]
    per_class = []
    for class_name, maps in means.items():
        rows = [n for n, target in enumerate(comparison.targets) if target == class_name]
        per_class.append(
            {
                "class": class_name,
                "inputs": len(rows),
                "mean_map_rank_correlation": _rounded(
                    rank_correlation(maps[first_index], maps[second_index])
                ),
                "mean_input_rank_correlation": _mean_defined([correlations[n] for n in rows]),
            }
        )
    defined = [value for value in correlations if value is not None]
    ranked = sorted((value, n) for n, value in enumerate(correlations) if value is not None)
    audits = (first.spec.audit, second.spec.audit)
    return {
        "name": pair_name(first, second),
        "models": [first.spec.name, second.spec.name],
        "agreement": _agreement(first, second, comparison.true_classes),
        "map_rank_correlation": {
            "mean": _rounded(np.mean(defined)) if defined else None,
            "median": _rounded(np.median(defined)) if defined else None,
            "inputs": len(defined),
            "undefined_inputs": len(correlations) - len(defined),
        },
        "per_class": per_class,
        "different_below": DIFFERENT_BELOW,
        "most_different": [n for value, n in ranked[:GALLERY_SIZE] if value < DIFFERENT_BELOW],
        "audit_deltas": audit_deltas(*audits) if all(audits) else None,
    }


def _input_record(comparison: Any, number: int, correlations: dict[str, list]) -> dict[str, Any]:
    """One input: its source, true and explained class, each model's answer, the correlations."""
    answers = {}
    for run in comparison.runs:
        index = int(run.probabilities[number].argmax())
        answers[run.spec.name] = {
            "class": run.spec.class_names[index],
            "confidence": _rounded(run.probabilities[number, index]),
            "explained_class": run.spec.class_names[int(run.explained[number])],
            "ink_share": _rounded(run.ink_share[number]),
        }
    return {
        "source": comparison.sources[number],
        "true_class": comparison.true_classes[number],
        "answers": answers,
        "map_rank_correlation": {
            name: _rounded(values[number]) for name, values in correlations.items()
        },
    }


def summarise(comparison: Any) -> dict[str, Any]:
    """``model_comparison.json``'s content from a ``ModelComparison``'s runs."""
    runs = comparison.runs
    pairs = list(combinations(range(len(runs)), 2))
    correlations = {
        pair_name(runs[a], runs[b]): [
            rank_correlation(map_a, map_b)
            for map_a, map_b in zip(runs[a].grid_heatmaps, runs[b].grid_heatmaps)
        ]
        for a, b in pairs
    }
    means = class_mean_maps(comparison)
    return {
        "shared_classes": list(comparison.shared_classes),
        "inputs": len(comparison.sources),
        "labelled_inputs": sum(truth is not None for truth in comparison.true_classes),
        "map_grid": comparison.grid,
        "models": [
            _model_summary(run, comparison.true_classes, comparison.targets) for run in runs
        ],
        "pairs": [
            _pair_summary(comparison, a, b, correlations[pair_name(runs[a], runs[b])], means)
            for a, b in pairs
        ],
        "per_input": [
            _input_record(comparison, number, correlations)
            for number in range(len(comparison.sources))
        ],
    }
