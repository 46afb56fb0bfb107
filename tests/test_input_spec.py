"""The input convention object: encoding by hand, resolution order, and the errors it names."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest

from src.data.input_spec import InputSpec, read_card_convention, resolve_input_spec
from src.errors import ModelLoadError

INK = np.array([[0.0, 1.0], [0.5, 0.25]], dtype=np.float32)


@pytest.mark.parametrize(
    ("ink", "value_range", "expected"),
    [
        # Light ink on dark: the ink intensity itself, scaled to the range.
        ("light", "0-1", [[0.0, 1.0], [0.5, 0.25]]),
        ("light", "0-255", [[0.0, 255.0], [127.5, 63.75]]),
        ("light", "-1-1", [[-1.0, 1.0], [0.0, -0.5]]),
        # Dark ink on light paper: paper is white (the top of the range), ink goes to the bottom.
        ("dark", "0-1", [[1.0, 0.0], [0.5, 0.75]]),
        ("dark", "0-255", [[255.0, 0.0], [127.5, 191.25]]),
        ("dark", "-1-1", [[1.0, -1.0], [0.0, 0.5]]),
    ],
)
def test_encode_matches_hand_values(ink: str, value_range: str, expected: list) -> None:
    spec = InputSpec(16, 16, 1, ink, value_range)
    encoded = spec.encode(INK)
    np.testing.assert_allclose(encoded[..., 0], expected, atol=1e-6)
    np.testing.assert_allclose(spec.decode(encoded), INK, atol=1e-6)


def test_three_channels_repeat_the_grey_sketch() -> None:
    spec = InputSpec(16, 16, 3, "dark", "0-255")
    encoded = spec.encode(INK[np.newaxis, ..., np.newaxis])
    assert encoded.shape == (1, 2, 2, 3)
    for channel in range(3):
        np.testing.assert_allclose(encoded[0, ..., channel], [[255.0, 0.0], [127.5, 191.25]])


def _model(shape: tuple) -> SimpleNamespace:
    return SimpleNamespace(inputs=[SimpleNamespace(shape=shape)])


def test_options_win_over_card_and_card_over_default(tmp_path) -> None:
    model_path = tmp_path / "net.h5"
    (tmp_path / "model_card.json").write_text(json.dumps({"input": {"ink": "light"}}))
    from_card = resolve_input_spec(_model((None, 28, 28, 1)), model_path=model_path)
    assert (from_card.ink, from_card.ink_source) == ("light", "card")
    assert (from_card.value_range, from_card.value_range_source) == ("0-1", "default")
    assert from_card.shape == (28, 28, 1)
    from_option = resolve_input_spec(
        _model((None, 28, 28, 1)), ink="dark", value_range="0-255", model_path=model_path
    )
    assert (from_option.ink, from_option.ink_source) == ("dark", "option")
    assert from_option.options() == "--ink dark --value_range 0-255"
    bare = resolve_input_spec(_model((None, 96, 96, 3)))
    assert (bare.ink, bare.value_range, bare.is_default) == ("dark", "0-1", True)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((None, 8, 8, 1), "height is 8"),
        ((None, 64, 1024, 1), "width is 1024"),
        ((None, 64, 64, 2), "2 channels"),
        ((None, 784), r"shaped \(None, 784\)"),
        ((None, None, None, 1), "fixed image input"),
    ],
)
def test_unusable_inputs_are_named(shape: tuple, message: str) -> None:
    with pytest.raises(ModelLoadError, match=message):
        resolve_input_spec(_model(shape))


@pytest.mark.parametrize(
    ("card", "message"),
    [
        ({"input": {"ink": "white"}}, r'"input.ink" is .white.; choose one of dark, light'),
        ({"input": {"value_range": "0-100"}}, r'"input.value_range" is .0-100.'),
        ({"input": ["light"]}, r'"input" must be an object'),
        ("[" * 100_000, "cannot read the model card"),
    ],
)
def test_bad_card_blocks_name_file_and_field(tmp_path, card, message: str) -> None:
    path = tmp_path / "model_card.json"
    path.write_text(card if isinstance(card, str) else json.dumps(card))
    with pytest.raises(ModelLoadError, match=message):
        read_card_convention(path)


def test_card_without_block_or_file_gives_nothing(tmp_path) -> None:
    assert read_card_convention(tmp_path / "missing.json") == {}
    (tmp_path / "model_card.json").write_text(json.dumps(["not", "an", "object"]))
    assert read_card_convention(tmp_path / "model_card.json") == {}


def _bar_image() -> np.ndarray:
    """A 200x120 white page with a black bar: dark ink, off centre, not square."""
    page = np.full((120, 200), 255, dtype=np.uint8)
    page[30:50, 40:150] = 0
    return page


@pytest.mark.parametrize(
    ("ink", "value_range", "to_values"),
    [
        ("light", "0-1", lambda canonical: canonical),
        ("dark", "0-1", lambda canonical: 1.0 - canonical),
        ("dark", "0-255", lambda canonical: 255.0 * (1.0 - canonical)),
        ("light", "-1-1", lambda canonical: 2.0 * canonical - 1.0),
    ],
)
def test_preprocessing_with_a_spec_is_the_canonical_picture_in_that_convention(
    ink: str, value_range: str, to_values
) -> None:
    from src.data.preprocess import to_model_input

    canonical = to_model_input(_bar_image(), size=28)[..., 0]
    fed = to_model_input(_bar_image(), spec=InputSpec(28, 28, 3, ink, value_range))
    assert fed.shape == (28, 28, 3)
    for channel in range(3):
        np.testing.assert_allclose(fed[..., channel], to_values(canonical), atol=1e-4)


def test_a_wide_frame_centres_the_fitted_square() -> None:
    from src.data.preprocess import to_model_input

    square = to_model_input(_bar_image(), size=32)[..., 0]
    fed = to_model_input(_bar_image(), spec=InputSpec(32, 64, 1, "light", "0-1"))[..., 0]
    np.testing.assert_allclose(fed[:, 16:48], square, atol=1e-6)
    assert not fed[:, :16].any() and not fed[:, 48:].any()


def test_strokes_render_at_the_models_size_in_its_polarity() -> None:
    from src.data.preprocess import strokes_to_model_input

    strokes = [[[0, 255], [0, 255]], [[0, 255], [255, 0]]]
    canonical = strokes_to_model_input(strokes, size=96)[..., 0]
    fed = strokes_to_model_input(strokes, spec=InputSpec(96, 96, 1, "dark", "0-255"))
    assert fed.shape == (96, 96, 1)
    np.testing.assert_allclose(fed[..., 0], 255.0 * (1.0 - canonical), atol=1e-3)
    # The paper of a dark-ink model is white: the corners, away from the cross, are 255.
    assert fed[0, 0, 0] == pytest.approx(255.0) and fed[0, 48, 0] == pytest.approx(255.0)
