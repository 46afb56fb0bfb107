"""Choose and measure the "not sure" rule: temperature, score and threshold for unknown drawings.

The softmax stays over the known classes. A drawing of something else should get a low score;
which score separates best (the top probability, the top logit or the energy), at which
temperature and threshold, is chosen on validation data: known drawings of the validation split
and outlier categories of the validation split. The figures are then measured once on the test
split and on outlier categories that neither training nor the choice ever saw.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from src.inference.open_set import SCORE_NAMES, OpenSetRule, open_set_scores

logger = logging.getLogger(__name__)

# At most this share of known drawings may be called "not sure" on the test split; the
# threshold is set on validation with some room under it.
MAX_KNOWN_FLAGGED = 0.03
VALIDATION_KNOWN_FLAGGED = 0.02
CALIBRATION_BINS = 15


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64."""
    scaled = np.asarray(logits, np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean cross-entropy of the true labels under ``softmax(logits / temperature)``."""
    probabilities = softmax(logits, temperature)
    picked = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature in [0.25, 8] that minimises the validation negative log-likelihood.

    A one-dimensional search on a fine logarithmic grid: the likelihood is smooth and unimodal
    in the temperature, so the grid's best point is within 1% of the optimum.
    """
    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 351))
    losses = [negative_log_likelihood(logits, labels, float(value)) for value in grid]
    return float(grid[int(np.argmin(losses))])


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = CALIBRATION_BINS
) -> float:
    """Expected calibration error of the top class: sum over confidence bins of
    (share of items in the bin) x |accuracy - mean confidence| in that bin."""
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    bin_of = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for index in range(bins):
        members = bin_of == index
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            error += members.mean() * gap
    return float(error)


def auroc(known_scores: np.ndarray, unknown_scores: np.ndarray) -> float:
    """Area under the ROC curve for telling known (positive) from unknown by the score: the
    share of (known, unknown) pairs the score orders right, ties counting half, which is the
    Mann-Whitney U of the known scores over the number of pairs."""
    from scipy.stats import mannwhitneyu

    # The statistic alone is wanted: the asymptotic method skips the exact p-value's cost.
    result = mannwhitneyu(known_scores, unknown_scores, method="asymptotic")
    return float(result.statistic / (len(known_scores) * len(unknown_scores)))


def threshold_for(known_scores: np.ndarray, flagged_share: float) -> float:
    """The score below which ``flagged_share`` of the known drawings fall."""
    return float(np.quantile(known_scores, flagged_share))


def rule_figures(
    rule: OpenSetRule, known_logits: np.ndarray, labels: np.ndarray, unknown_logits: np.ndarray
) -> dict[str, float | int]:
    """AUROC, share of unknown and known drawings flagged, and calibration under ``rule``."""
    known = open_set_scores(known_logits, rule)
    unknown = open_set_scores(unknown_logits, rule)
    return {
        "known_count": int(len(known)),
        "unknown_count": int(len(unknown)),
        "auroc": auroc(known, unknown),
        "unknown_flagged": float(np.mean(unknown < rule.threshold)),
        "known_flagged": float(np.mean(known < rule.threshold)),
        "ece_known": expected_calibration_error(softmax(known_logits, rule.temperature), labels),
        "ece_known_at_temperature_1": expected_calibration_error(softmax(known_logits), labels),
        "top1_known": float(np.mean(known_logits.argmax(axis=1) == labels)),
    }


def choose_rule(
    known_logits: np.ndarray, labels: np.ndarray, unknown_logits: np.ndarray
) -> tuple[OpenSetRule, dict[str, Any]]:
    """Fit the temperature, then pick the score with the best validation AUROC and its threshold.

    Returns the rule and, per candidate score, its validation AUROC (for the model card).
    """
    temperature = fit_temperature(known_logits, labels)
    candidates: dict[str, Any] = {}
    rules = []
    for name in SCORE_NAMES:
        probe = OpenSetRule(name, temperature, 0.0)
        known = open_set_scores(known_logits, probe)
        rule = OpenSetRule(name, temperature, threshold_for(known, VALIDATION_KNOWN_FLAGGED))
        figures = rule_figures(rule, known_logits, labels, unknown_logits)
        candidates[name] = {
            "auroc": figures["auroc"],
            "unknown_flagged": figures["unknown_flagged"],
        }
        rules.append(rule)
    best = max(rules, key=lambda rule: candidates[rule.score]["auroc"])
    logger.info("open set: %s at T=%.3f, threshold %.4f", best.score, temperature, best.threshold)
    return best, candidates


def logits_of(model: Any, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """The model's logits (N, C) float64 for float32 (N, H, W, 1) images, found and computed
    as the CAM engine finds them (``target_layers.resolve_score_source``)."""
    from src.visualization.cam_engine import CamEngine

    engine = CamEngine(model)
    batch = np.asarray(images, np.float32)
    chunks = [
        engine.class_scores(batch[start : start + batch_size])
        for start in range(0, len(batch), batch_size)
    ]
    if not chunks:
        return np.zeros((0, engine.classes), np.float64)
    return np.concatenate(chunks).astype(np.float64)


def _as_float(images: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W) renders as the model's float32 (N, H, W, 1) input."""
    return (images.astype(np.float32) / 255.0)[..., np.newaxis]


def open_set_card(model: Any, data: Any) -> dict[str, Any]:
    """The model card's ``open_set`` block: the chosen rule, how it was chosen, test figures.

    Args:
        model: a trained model with a ``logits`` layer.
        data: the ``SketchData`` it was trained on, with rendered outlier splits.

    Returns:
        ``{"score", "temperature", "threshold", "validation", "test", "outlier_categories"}``.
    """
    validation_known = logits_of(model, data.validation.as_float())
    validation_unknown = logits_of(model, _as_float(data.outlier_validation))
    rule, candidates = choose_rule(validation_known, data.validation.labels, validation_unknown)
    test_figures = rule_figures(
        rule,
        logits_of(model, data.test.as_float()),
        data.test.labels,
        logits_of(model, _as_float(data.outlier_test)),
    )
    return {
        "score": rule.score,
        "temperature": rule.temperature,
        "threshold": rule.threshold,
        "recognised_when": "score >= threshold",
        "validation": {"candidates": candidates, "known_flagged_target": VALIDATION_KNOWN_FLAGGED},
        "test": test_figures,
        "outlier_categories": {
            split: len(names) for split, names in data.outlier_categories.items()
        },
        "outlier_test_categories": data.outlier_categories.get("test", []),
    }
