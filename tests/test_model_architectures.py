"""The architectures the trainer can build: named layers, sizes, and the --architecture flag."""

from __future__ import annotations

import numpy as np
import pytest

from src.config import ModelConfig


def _residual_parameters(filters: tuple[int, ...], dense: int, classes: int) -> int:
    """Parameters of build_residual_cnn counted by hand: per stage a 1x1 projection (when the
    width changes) and two 3x3 convolutions, no biases, each followed by batch norm (4 per
    channel); then the dense layer and the logits, with biases."""
    total, channels = 0, 1
    for width in filters:
        if channels != width:
            total += channels * width + 4 * width
        total += 9 * channels * width + 4 * width + 9 * width * width + 4 * width
        channels = width
    return total + channels * dense + dense + dense * classes + classes


@pytest.mark.parametrize("filters", [(4, 8), (48, 96, 192)])
def test_residual_parameter_count_matches_a_hand_count(filters: tuple[int, ...]) -> None:
    from src.models.architectures import build_model

    model = build_model("residual", ModelConfig(num_classes=24, filters=filters))
    assert model.count_params() == _residual_parameters(filters, 256, 24)


def test_default_residual_stays_under_two_million_parameters() -> None:
    from src.models.architectures import build_model, default_filters

    filters = default_filters("residual")
    model = build_model("residual", ModelConfig(num_classes=24, filters=filters))
    assert model.count_params() == _residual_parameters(filters, 256, 24) <= 2_000_000


def test_residual_has_the_layers_the_engine_needs() -> None:
    import keras

    from src.models.architectures import build_model
    from src.models.cnn import LAST_CONV, LOGITS

    model = build_model("residual", ModelConfig(num_classes=3, filters=(4, 8), dense_units=8))
    # Two stages on the 32x32 average-pooled input: one 2x2 max pool, so 16x16 maps.
    assert model.get_layer(LAST_CONV).output.shape[1:] == (16, 16, 8)
    assert model.get_layer(LOGITS).output.shape[-1] == 3
    # Softmax of the logits is the output, as in build_cnn.
    batch = np.random.default_rng(0).random((2, 64, 64, 1), dtype=np.float32)
    logits_model = keras.Model(model.inputs, model.get_layer(LOGITS).output)
    logits = logits_model.predict(batch, verbose=0)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(model.predict(batch, verbose=0), expected, rtol=1e-5)


def test_default_architecture_is_build_cnn() -> None:
    from src.models.architectures import build_model, default_filters
    from src.models.cnn import build_cnn

    config = ModelConfig(num_classes=24, filters=default_filters("cnn"))
    built = build_model("cnn", config)
    assert [layer.name for layer in built.layers] == [layer.name for layer in build_cnn().layers]
    # The shipped network: 326,968 parameters (models/best_model.h5).
    assert built.count_params() == 326_968


def test_unknown_architecture_names_the_choices() -> None:
    from src.models.architectures import build_model

    with pytest.raises(ValueError, match="choose one of cnn, residual"):
        build_model("transformer", ModelConfig())


@pytest.mark.parametrize(
    ("argv", "architecture", "filters"),
    [
        ([], "cnn", (32, 64, 128)),
        (["--architecture", "residual"], "residual", (48, 96, 192)),
        (["--architecture", "residual", "--filters", "8,16"], "residual", (8, 16)),
    ],
)
def test_training_flags_choose_the_architecture(
    argv: list[str], architecture: str, filters: tuple[int, ...]
) -> None:
    from src.training.train import build_parser, config_from_args

    config = config_from_args(build_parser().parse_args(["--strokes_dir", "x", *argv]))
    assert (config.architecture, config.model.filters) == (architecture, filters)


@pytest.mark.parametrize("bad", ["8,x", "0,8", ""])
def test_bad_filters_exit_2(bad: str) -> None:
    from src.training.train import build_parser

    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["--filters", bad])
    assert stopped.value.code == 2
