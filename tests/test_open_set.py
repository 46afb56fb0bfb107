"""The open-set scores against hand computations, the rule read from a model card, and the
logits the scores are taken from (a named layer, a fused softmax, or none at all)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from src.errors import ModelLoadError
from src.inference.open_set import (
    DEFAULT_RULE,
    SCORE_NAMES,
    OpenSetRule,
    is_recognised,
    load_open_set_rule,
    logits_or_log_probabilities,
    open_set_scores,
)

# Logits [2, 0, 0] and [0, 0, 0] at T = 2, so z / T = [1, 0, 0] and [0, 0, 0].
BY_HAND = {
    "max_softmax": [math.e / (math.e + 2), 1 / 3],
    "max_logit": [1.0, 0.0],
    "energy": [2 * math.log(math.e + 2), 2 * math.log(3)],
}
LOGITS = np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])


@pytest.mark.parametrize("score", SCORE_NAMES)
def test_scores_match_hand_computation(score: str) -> None:
    values = open_set_scores(LOGITS, OpenSetRule(score, 2.0, 0.0))
    np.testing.assert_allclose(values, BY_HAND[score], rtol=1e-12)


def test_large_logits_do_not_overflow() -> None:
    logits = np.array([[1000.0, 0.0, 0.0]])
    assert open_set_scores(logits, OpenSetRule("max_softmax", 1.0, 0.5))[0] == pytest.approx(1.0)
    # logsumexp([1000, 0, 0]) = 1000 + log(1 + 2 e^-1000), which is 1000 in float64.
    assert open_set_scores(logits, OpenSetRule("energy", 1.0, 0.5))[0] == pytest.approx(1000.0)


def test_recognised_from_the_threshold_up() -> None:
    rule = OpenSetRule("max_logit", 2.0, 1.0)
    logits = np.array([[2.0, 0.0, 0.0], [1.98, 0.0, 0.0], [3.0, 5.0, 0.0]])
    assert is_recognised(logits, rule).tolist() == [True, False, True]


def test_log_probabilities_give_the_exact_max_softmax() -> None:
    probabilities = np.exp(LOGITS) / np.exp(LOGITS).sum(axis=1, keepdims=True)
    shifted = logits_or_log_probabilities(None, probabilities)
    values = open_set_scores(shifted, OpenSetRule("max_softmax", 2.0, 0.5))
    np.testing.assert_allclose(values, BY_HAND["max_softmax"], rtol=1e-9)


def test_rule_from_a_card(tmp_path: Path) -> None:
    card = tmp_path / "model_card.json"
    card.write_text(json.dumps({"open_set": {"score": "energy", "temperature": 1.5,
                                              "threshold": -2, "auroc": 0.9}}))  # fmt: skip
    expected = OpenSetRule("energy", 1.5, -2.0, measured=True)
    assert OpenSetRule.from_card(card) == expected
    assert load_open_set_rule(tmp_path / "model.h5") == expected
    assert expected.describe() == {
        "score": "energy", "temperature": 1.5, "threshold": -2.0, "from_card": True
    }  # fmt: skip


def test_fallback_is_half_confidence(tmp_path: Path) -> None:
    assert DEFAULT_RULE == OpenSetRule("max_softmax", 1.0, 0.5, measured=False)
    assert load_open_set_rule(tmp_path / "model.h5") == DEFAULT_RULE
    assert load_open_set_rule(None) == DEFAULT_RULE
    (tmp_path / "model_card.json").write_text(json.dumps({"classes": ["a"]}))
    assert OpenSetRule.from_card(tmp_path / "model_card.json") == DEFAULT_RULE
    probabilities = np.array([[0.5, 0.3, 0.2], [0.49, 0.31, 0.2]])
    shifted = logits_or_log_probabilities(None, probabilities)
    assert is_recognised(shifted, DEFAULT_RULE).tolist() == [True, False]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (("entropy", 1.0, 0.0), "unknown open-set score 'entropy'; use one of max_softmax"),
        (("energy", 0.0, 0.0), "temperature must be positive"),
        (("energy", float("nan"), 0.0), "temperature must be positive"),
        (("energy", 1.0, float("inf")), "threshold must be finite"),
    ],
)
def test_invalid_rule_is_refused(fields: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OpenSetRule(*fields)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"open_set": {"score": "entropy", "temperature": 1, "threshold": 0}}', "use one of"),
        ('{"open_set": {"score": "energy", "threshold": 0}}', "needs score, temperature"),
        ('{"open_set": {"score": "energy", "temperature": "hot", "threshold": 0}}', "numbers"),
        ('{"open_set": {"score": "energy", "temperature": true, "threshold": 0}}', "numbers"),
        ('{"open_set": {"score": "energy", "temperature": 1, "threshold": "0.5"}}', "numbers"),
        ('{"open_set": {"score": 3, "temperature": 1, "threshold": 0}}', "score must be a name"),
        ('{"open_set": {"score": "energy", "temperature": 0, "threshold": 0}}', "positive"),
        ('["open_set"]', "not a JSON object"),
        ('{"open_set": "max_logit"}', "needs score, temperature"),
        ('{"open_set": ', "not a readable model card"),
    ],
)
def test_malformed_card_names_the_file(tmp_path: Path, text: str, message: str) -> None:
    card = tmp_path / "model_card.json"
    card.write_text(text)
    with pytest.raises(ModelLoadError, match=message) as raised:
        OpenSetRule.from_card(card)
    assert str(card) in str(raised.value)


def _model(head: str):  # type: ignore[no-untyped-def]
    """An 8x8 three-class model whose logits are a named layer, fused into a softmax Dense, or
    hidden inside a Lambda (none the engine can find)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(3)
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="last_conv")(inputs)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    if head == "fused":
        outputs = layers.Dense(3, activation="softmax", name="dense")(x)
    else:
        x = layers.Dense(3, name="logits" if head == "named" else "dense")(x)
        squash = (
            layers.Activation("softmax") if head == "named" else layers.Lambda(keras.ops.softmax)
        )
        outputs = squash(x)
    return keras.Model(inputs, outputs)


def _logits_by_hand(model, images: np.ndarray) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The pooled features times the Dense kernel plus bias, outside the code under test."""
    import keras

    features = keras.Model(model.inputs, model.get_layer("pool").output).predict(images, verbose=0)
    dense = model.get_layer("logits" if "logits" in [x.name for x in model.layers] else "dense")
    kernel, bias = (np.asarray(weight) for weight in dense.get_weights())
    return features.astype(np.float64) @ kernel + bias


@pytest.mark.parametrize("head", ["named", "fused"])
def test_explainer_scores_the_logits(head: str, tmp_path: Path, tiny_images: np.ndarray) -> None:
    from src.service.explainer import Explainer

    (tmp_path / "model_card.json").write_text(
        json.dumps({"open_set": {"score": "max_logit", "temperature": 0.5, "threshold": 0.0}})
    )
    model = _model(head)
    verdicts = Explainer(model, model_path=tmp_path / "model.h5").open_set_of(tiny_images)
    expected = _logits_by_hand(model, tiny_images).max(axis=1) / 0.5
    np.testing.assert_allclose([v.score for v in verdicts], expected, rtol=1e-4, atol=1e-5)


def test_model_without_logits_uses_its_probabilities(tiny_images: np.ndarray) -> None:
    from src.service.explainer import Explainer

    model = _model("lambda")
    explainer = Explainer(model)
    expected = model.predict(tiny_images, verbose=0).max(axis=1)
    verdicts = explainer.open_set_of(tiny_images)
    np.testing.assert_allclose([v.score for v in verdicts], expected, rtol=1e-5)
    result = explainer.explain(tiny_images)
    np.testing.assert_allclose([v.score for v in explainer.open_set(result)], expected, rtol=1e-5)


def test_logits_of_matches_the_logits_layer_in_chunks(tiny_model, tiny_images) -> None:  # type: ignore[no-untyped-def]
    """``logits_of`` finds the logits as the CAM engine does; the reference is the public
    Keras sub-model ending at the layer named "logits", run in one go."""
    import keras

    from src.evaluation.open_set import logits_of

    head = keras.Model(tiny_model.inputs, tiny_model.get_layer("logits").output)
    expected = np.asarray(head(tiny_images, training=False), np.float64)
    # A batch size that splits the images unevenly: the chunks must join in order.
    got = logits_of(tiny_model, tiny_images, batch_size=max(1, len(tiny_images) - 1))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert logits_of(tiny_model, tiny_images[:0]).shape == (0, 3)
