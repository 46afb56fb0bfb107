"""The "not sure" rule: a score of the model's logits and the threshold below which it abstains.

A model's card (``model_card.json`` beside the model file) may hold an ``open_set`` block,
chosen and measured at training time (``src.evaluation.open_set``)::

    "open_set": {"score": "max_logit", "temperature": 1.0, "threshold": 1.69, ...}

Without one, the rule is "not sure below 50% confidence" (``DEFAULT_RULE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from src.data.json_input import parse_json
from src.errors import ModelLoadError

SCORE_NAMES = ("max_softmax", "max_logit", "energy")
CARD_FILENAME = "model_card.json"


@dataclass(frozen=True)
class OpenSetRule:
    """Score name, temperature and threshold: ``recognised = score >= threshold``.

    ``from_card`` says whether the rule was measured for this model (its card) or is the
    fallback.
    """

    score: str = "max_softmax"
    temperature: float = 1.0
    threshold: float = 0.5
    from_card: bool = False


DEFAULT_RULE = OpenSetRule()


def open_set_scores(logits: np.ndarray, rule: OpenSetRule) -> np.ndarray:
    """The rule's score per row of ``logits`` (N, C); higher means more likely a known class.

    max_softmax = max softmax(z / T); max_logit = max(z) / T; energy = T * logsumexp(z / T).
    """
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


def logits_or_log_probabilities(logits: np.ndarray | None, probabilities: np.ndarray) -> np.ndarray:
    """The logits when known, else log-probabilities: equal to the logits up to a per-row shift,
    so max_softmax is exact; max_logit and energy then see the shifted values."""
    if logits is not None:
        return np.asarray(logits, np.float64)
    return np.log(np.maximum(np.asarray(probabilities, np.float64), 1e-12))


def load_open_set_rule(model_path: str | Path | None) -> OpenSetRule:
    """The rule in the card beside ``model_path``, or ``DEFAULT_RULE`` when there is none.

    Raises:
        ModelLoadError: if the card's ``open_set`` block is malformed (names the file).
    """
    if model_path is None:
        return DEFAULT_RULE
    card_path = Path(model_path).with_name(CARD_FILENAME)
    if not card_path.is_file():
        return DEFAULT_RULE
    try:
        block = parse_json(card_path.read_text(encoding="utf-8")).get("open_set")  # type: ignore[union-attr]
    except (OSError, ValueError, AttributeError) as error:
        raise ModelLoadError(f"{card_path} is not a readable model card ({error})") from error
    if block is None:
        return DEFAULT_RULE
    try:
        numbers = (block["temperature"], block["threshold"])
        # JSON true/false and "0.5" strings would pass float(); a card holds plain numbers.
        if not isinstance(block["score"], str) or not all(
            isinstance(value, (int, float)) and not isinstance(value, bool) for value in numbers
        ):
            raise TypeError(f"score must be a name and temperature/threshold numbers: {block!r}")
        rule = OpenSetRule(block["score"], float(numbers[0]), float(numbers[1]), True)
    except (KeyError, TypeError, ValueError) as error:
        raise ModelLoadError(
            f"{card_path}: open_set needs score, temperature and threshold ({error}); "
            "fix the card or remove its open_set block"
        ) from error
    if rule.score not in SCORE_NAMES or not rule.temperature > 0 or not np.isfinite(rule.threshold):
        raise ModelLoadError(
            f"{card_path}: open_set score must be one of {', '.join(SCORE_NAMES)} with a positive "
            f"temperature and a finite threshold (got {block!r})"
        )
    return rule


@dataclass(frozen=True)
class OpenSetVerdict:
    """Whether the top class is trusted, and the score that decided it."""

    recognised: bool
    score: float


def assess(
    rule: OpenSetRule, logits: np.ndarray | None, probabilities: np.ndarray
) -> list[OpenSetVerdict]:
    """One verdict per row of ``probabilities`` (N, C), from the logits when given."""
    scores = open_set_scores(logits_or_log_probabilities(logits, probabilities), rule)
    return [OpenSetVerdict(bool(value >= rule.threshold), float(value)) for value in scores]


def not_sure_text(class_name: str, confidence: float) -> str:
    """The CLI's wording for an answer the rule does not trust."""
    return f"not sure (closest: {class_name} {confidence:.0%})"
