"""Pen-width normalisation in to_model_input: the estimate, thin pens thickened, the rest untouched."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from src.data import preprocess
from src.data.preprocess import estimate_pen_width, to_model_input

# A house outline: a square body, a roof and a door, in a 0..1 frame.
HOUSE = [
    [(0.1, 0.45), (0.9, 0.45), (0.9, 0.95), (0.1, 0.95), (0.1, 0.45)],
    [(0.05, 0.5), (0.5, 0.05), (0.95, 0.5)],
    [(0.4, 0.95), (0.4, 0.7), (0.6, 0.7), (0.6, 0.95)],
]


def draw(lines: list, canvas: int, pen: int) -> np.ndarray:
    """Black-on-white uint8 canvas with ``lines`` (0..1 frame, 5% border) drawn ``pen`` px wide."""
    image = Image.new("L", (canvas, canvas), 255)
    pencil = ImageDraw.Draw(image)
    scale = canvas * 0.9
    for line in lines:
        points = [(canvas * 0.05 + x * scale, canvas * 0.05 + y * scale) for x, y in line]
        pencil.line(points, fill=0, width=pen, joint="curve")
    return np.asarray(image)


@pytest.mark.parametrize("width", [2, 6, 10])
def test_pen_width_of_a_band_is_its_thickness(width: int) -> None:
    # A band across the whole array: the distance to paper is 1, 2, ..., w/2, w/2, ..., 1 down
    # every column, whose mean is w/4 + 1/2, and 4 * mean - 2 gives back w.
    mask = np.zeros((40, 50), bool)
    mask[10 : 10 + width] = True
    assert estimate_pen_width(mask) == pytest.approx(width)
    assert estimate_pen_width(np.zeros((8, 8), bool)) == 0.0


def test_thin_pen_is_brought_to_the_training_look(monkeypatch: pytest.MonkeyPatch) -> None:
    # The drawing spans about 0.9 * 512 px, so the fitted square is about 530 px: a 2 px pen is
    # 0.004 of it (thin), a 24 px pen 0.045 (the training width).
    thin = to_model_input(draw(HOUSE, 512, 2))[..., 0]
    trained = to_model_input(draw(HOUSE, 512, 24))[..., 0]
    assert thin.sum() / trained.sum() == pytest.approx(1.0, abs=0.2)
    # Without the normalisation the thin pen leaves a faint trace, far from the trained look.
    monkeypatch.setattr(preprocess, "THIN_PEN_WIDTH", 0.0)
    unnormalised = to_model_input(draw(HOUSE, 512, 2))[..., 0]
    assert unnormalised.sum() / trained.sum() < 0.2
    assert np.abs(thin - trained).mean() < 0.6 * np.abs(unnormalised - trained).mean()


def hand_fit(canvas: np.ndarray, size: int = 64, margin: float = 0.06) -> np.ndarray:
    """The fit without any pen change, written out: crop, centred square, 28x28 box, bilinear."""
    ink = 1.0 - canvas.astype(np.float32) / 255.0
    rows = np.flatnonzero((ink > 0.15).any(axis=1))
    cols = np.flatnonzero((ink > 0.15).any(axis=0))
    height, width = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    side = int(np.ceil(max(height, width) / (1 - 2 * margin)))
    square = np.zeros((side, side), np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    square[top : top + height, left : left + width] = ink[
        rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1
    ]
    small = Image.fromarray(square, "F").resize((28, 28), Image.Resampling.BOX)
    return np.clip(np.asarray(small.resize((size, size), Image.Resampling.BILINEAR)), 0, 1)


@pytest.mark.parametrize("canvas, pen", [(256, 12), (512, 40), (1024, 60)])
def test_a_pen_at_or_above_the_training_width_is_untouched(canvas: int, pen: int) -> None:
    image = draw(HOUSE, canvas, pen)
    np.testing.assert_allclose(to_model_input(image)[..., 0], hand_fit(image), atol=1e-6)


def test_stroke_ink_adds_up_through_the_thickening() -> None:
    # src.explain.strokes carries each stroke's mask on a constant carrier over the whole
    # drawing's ink; with a thin pen the masks recovered that way must still add up to the
    # whole drawing (the strokes are far apart, so their thickened ink does not overlap).
    canvas = 200
    strokes = [draw([line], canvas, 1) < 128 for line in ([(0.0, 0.1), (1.0, 0.1)], HOUSE[0])]
    whole = np.logical_or(*strokes).astype(np.float32)
    assert estimate_pen_width(whole > 0) / canvas < preprocess.THIN_PEN_WIDTH
    carrier = 0.2 * whole
    base = to_model_input(carrier)[..., 0]
    recovered = [(to_model_input(carrier + 0.5 * mask)[..., 0] - base) / 0.5 for mask in strokes]
    np.testing.assert_allclose(
        recovered[0] + recovered[1], to_model_input(whole)[..., 0], atol=1e-5
    )
    # And the thickening did happen: more ink than the plain fit of the same drawing gives.
    assert to_model_input(whole)[..., 0].sum() > 1.5 * hand_fit(255 - 255 * whole).sum()
