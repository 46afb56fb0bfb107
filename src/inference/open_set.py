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

from src.data.json_input import read_json_file
from src.errors import ModelLoadError

SCORE_NAMES = ("max_softmax", "max_logit", "energy")
CARD_FILENAME = "model_card.json"


@dataclass(frozen=True)
class OpenSetRule:
    """Score name, temperature and threshold: ``recognised = score >= threshold``.

    ``measured`` says whether the rule was chosen and measured for this model (its card) or is
    the fallback.

    Raises:
        ValueError: an unknown score name, a temperature that is not positive or a threshold
            that is not finite (the message names the allowed values).
    """

    score: str = "max_softmax"
    temperature: float = 1.0
    threshold: float = 0.5
    measured: bool = False

    def __post_init__(self) -> None:
        if self.score not in SCORE_NAMES:
            raise ValueError(
                f"unknown open-set score {self.score!r}; use one of {', '.join(SCORE_NAMES)}"
            )
        if not self.temperature > 0 or not np.isfinite(self.temperature):
            raise ValueError(f"open-set temperature must be positive, got {self.temperature!r}")
        if not np.isfinite(self.threshold):
            raise ValueError(f"open-set threshold must be finite, got {self.threshold!r}")

    @classmethod
    def from_card(cls, card_path: str | Path) -> OpenSetRule:
        """The rule in the ``open_set`` block of a model card, or ``DEFAULT_RULE`` without one.

        Args:
            card_path: a ``model_card.json`` file.

        Raises:
            ModelLoadError: the card is unreadable or its block is malformed (names the file).
        """
        card_path = Path(card_path)
        try:
            card = read_json_file(card_path)
        except (OSError, ValueError) as error:
            raise ModelLoadError(f"{card_path} is not a readable model card ({error})") from error
        if not isinstance(card, dict):
            raise ModelLoadError(f"{card_path} is not a model card: it is not a JSON object")
        block = card.get("open_set")
        if block is None:
            return DEFAULT_RULE
        try:
            numbers = (block["temperature"], block["threshold"])
            # JSON true/false and "0.5" strings would pass float(); a card holds plain numbers.
            if not isinstance(block["score"], str) or not all(
                isinstance(value, (int, float)) and not isinstance(value, bool) for value in numbers
            ):
                raise TypeError(
                    f"score must be a name and temperature/threshold numbers: {block!r}"
                )
            return cls(block["score"], float(numbers[0]), float(numbers[1]), True)
        except (KeyError, TypeError) as error:
            raise ModelLoadError(
                f"{card_path}: open_set needs score, temperature and threshold ({error!r}); "
                "fix the card or remove its open_set block"
            ) from error
        except ValueError as error:
            raise ModelLoadError(f"{card_path}: {error}") from error

    def describe(self) -> dict[str, object]:
        """The rule as JSON-ready fields (``/health``): ``from_card`` is ``measured``."""
        return {
            "score": self.score,
            "temperature": self.temperature,
            "threshold": self.threshold,
            "from_card": self.measured,
        }


DEFAULT_RULE = OpenSetRule()


def open_set_scores(logits: np.ndarray, rule: OpenSetRule) -> np.ndarray:
    """The rule's score per row of ``logits`` (N, C); higher means more likely a known class.

    max_softmax = max softmax(z / T); max_logit = max(z) / T; energy = T * logsumexp(z / T).

    Args:
        logits: (N, C) pre-softmax class scores (a single (C,) row is taken as one row).
        rule: which score, at which temperature.

    Returns:
        float64 (N,) scores.
    """
    scaled = np.atleast_2d(np.asarray(logits, np.float64)) / rule.temperature
    top = scaled.max(axis=1)
    if rule.score == "max_logit":
        return top
    # logsumexp shifted by the row maximum, so large logits do not overflow.
    log_sum = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
    if rule.score == "energy":
        return rule.temperature * log_sum
    return np.exp(top - log_sum)


def is_recognised(logits: np.ndarray, rule: OpenSetRule) -> np.ndarray:
    """Bool (N,): whether each row's score reaches the rule's threshold (known class)."""
    return open_set_scores(logits, rule) >= rule.threshold


def logits_or_log_probabilities(logits: np.ndarray | None, probabilities: np.ndarray) -> np.ndarray:
    """The logits when known, else log-probabilities.

    Log-probabilities equal the logits up to a per-row shift, so max_softmax is exact; max_logit
    and energy then see shifted values (max_logit = log of the top probability, energy = 0 at
    T = 1), which a card's threshold measured on real logits does not describe.
    """
    if logits is not None:
        return np.asarray(logits, np.float64)
    return np.log(np.maximum(np.asarray(probabilities, np.float64), 1e-12))


def load_open_set_rule(model_path: str | Path | None) -> OpenSetRule:
    """The rule in the card beside ``model_path`` (``<model_dir>/model_card.json``), or
    ``DEFAULT_RULE`` when there is no card or it has no ``open_set`` block.

    Raises:
        ModelLoadError: if the card's ``open_set`` block is malformed (names the file).
    """
    if model_path is None:
        return DEFAULT_RULE
    card_path = Path(model_path).with_name(CARD_FILENAME)
    if not card_path.is_file():
        return DEFAULT_RULE
    return OpenSetRule.from_card(card_path)


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
