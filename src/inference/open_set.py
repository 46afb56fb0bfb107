"""The "not sure" rule: a score of the model's logits and the threshold below which it abstains."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SCORE_NAMES = ("max_softmax", "max_logit", "energy")


@dataclass(frozen=True)
class OpenSetRule:
    """Score name, temperature and threshold: ``recognised = score >= threshold``."""

    score: str = "max_softmax"
    temperature: float = 1.0
    threshold: float = 0.5


def open_set_scores(logits: np.ndarray, rule: OpenSetRule) -> np.ndarray:
    """The rule's score per row of ``logits`` (N, C); higher means more likely a known class."""
    scaled = np.asarray(logits, np.float64) / rule.temperature
    top = scaled.max(axis=1)
    if rule.score == "max_logit":
        return top
    log_sum = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
    if rule.score == "energy":
        return rule.temperature * log_sum
    if rule.score == "max_softmax":
        return np.exp(top - log_sum)
    raise ValueError(f"unknown open-set score {rule.score!r}; use one of {', '.join(SCORE_NAMES)}")
