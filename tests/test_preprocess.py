"""to_model_input on every kind of image: polarity, alpha, position, size, palette, 16-bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from src.data.preprocess import strokes_to_model_input, to_model_input


def _square_on(
    background: int, ink: int, size: int = 100, box: tuple = (30, 30, 70, 70)
) -> np.ndarray:
    """A hollow square outline of ink 4 px thick on a plain background."""
    array = np.full((size, size), background, np.uint8)
    top, left, bottom, right = box
    array[top:bottom, left:right] = ink
    array[top + 4 : bottom - 4, left + 4 : right - 4] = background
    return array


def _assert_model_input(result: np.ndarray) -> None:
    assert result.shape == (64, 64, 1) and result.dtype == np.float32
    assert 0.0 <= result.min() and result.max() <= 1.0


def test_both_polarities_give_the_same_input() -> None:
    white_on_black = to_model_input(_square_on(0, 255))
    black_on_white = to_model_input(_square_on(255, 0))
    _assert_model_input(white_on_black)
    np.testing.assert_allclose(white_on_black, black_on_white, atol=1e-6)
    # Ink becomes 1: the square's outline is white, its inside and the border black.
    assert white_on_black[32, 32, 0] == 0.0 and white_on_black[0, 0, 0] == 0.0
    assert white_on_black.max() == pytest.approx(1.0)


def test_ink_is_centred_wherever_it_was() -> None:
    centred = to_model_input(_square_on(255, 0, box=(30, 30, 70, 70)))
    corner = to_model_input(_square_on(255, 0, size=300, box=(0, 200, 40, 240)))
    np.testing.assert_allclose(centred, corner, atol=0.02)
    # Fitted with a 6% margin: ink starts near 64 * 0.06 = 3.84 px from the edge.
    cols = np.flatnonzero(centred[..., 0].max(axis=0) > 0.5)
    assert 2 <= cols[0] <= 5 and 58 <= cols[-1] <= 61


def test_alpha_channel_is_paper() -> None:
    rgba = np.zeros((50, 50, 4), np.uint8)  # fully transparent black = white paper
    rgba[20:30, 10:40] = (0, 0, 0, 255)  # an opaque black bar
    result = to_model_input(Image.fromarray(rgba, "RGBA"))
    _assert_model_input(result)
    assert result[32, 32, 0] == pytest.approx(1.0) and result[0, 0, 0] == 0.0


def test_palette_and_16_bit_images() -> None:
    palette = Image.fromarray(_square_on(255, 0)).convert("P")
    sixteen = Image.fromarray(_square_on(0, 255).astype(np.uint16) * 257).convert("I;16")
    expected = to_model_input(_square_on(0, 255))
    np.testing.assert_allclose(to_model_input(palette), expected, atol=1e-6)
    np.testing.assert_allclose(to_model_input(sixteen), expected, atol=1e-6)


def test_tiny_and_huge_images() -> None:
    blank = to_model_input(np.zeros((1, 1), np.uint8))
    assert blank.shape == (64, 64, 1) and blank.max() == 0.0
    huge = np.full((3000, 3000), 255, np.uint8)
    huge[1000:1100, 500:2500] = 0  # a long horizontal bar, 2000 x 100 px
    result = to_model_input(huge)
    _assert_model_input(result)
    rows = np.flatnonzero(result[..., 0].max(axis=1) > 0.3)
    # Fitted into a square of 2000 / 0.88 = 2273 px, the bar sits at rows 1086..1186, which is
    # 30.6..33.4 of 64: a thin line across the middle.
    assert rows.min() >= 29 and rows.max() <= 35
    cols = np.flatnonzero(result[..., 0].max(axis=0) > 0.3)
    assert cols[0] <= 5 and cols[-1] >= 58


def test_strokes_and_their_drawing_agree() -> None:
    """A square drawn as strokes and the same square as a PNG give nearly the same input."""
    strokes = [[[0, 100, 100, 0, 0], [0, 0, 100, 100, 0]]]
    from_strokes = strokes_to_model_input(strokes)
    _assert_model_input(from_strokes)
    outline = to_model_input(_square_on(255, 0, size=200, box=(50, 50, 150, 150)))
    for image in (from_strokes, outline):
        mask = image[..., 0] > 0.3
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        # Both fill the frame less the 6% margin (about 4 px) and are hollow inside.
        assert 2 <= rows[0] <= 5 and 58 <= rows[-1] <= 61 and 2 <= cols[0] <= 5
        assert image[20:44, 20:44].max() == 0.0
