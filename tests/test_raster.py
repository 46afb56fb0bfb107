"""The rasteriser against hand-worked images."""

from __future__ import annotations

import numpy as np
import pytest

from src.data.raster import render_strokes
from src.errors import InvalidImageError


def test_horizontal_line_lands_in_the_middle_rows() -> None:
    # A horizontal line from x=0 to x=100 at y=50: its extent is 100 wide, 0 tall, so it is
    # centred vertically. With size 32, margin 0.125 and width 4 px (16 px at 4x supersampling),
    # the drawing spans 128 - 2*16 = 96 supersampled px plus width: x from 16 to 112 -> 4..28
    # output pixels, and rows 14..18 (centre 16, half-width 2).
    image = render_strokes([[[0, 100], [50, 50]]], size=32, line_width=4, margin=0.125)
    assert image.dtype == np.uint8 and image.shape == (32, 32)
    rows = np.flatnonzero(image.max(axis=1) > 127)
    cols = np.flatnonzero(image.max(axis=0) > 127)
    assert rows.tolist() == [14, 15, 16, 17]
    assert cols[0] == 4 and cols[-1] == 27
    assert image[:12].max() == 0 and image[20:].max() == 0  # nothing far from the line
    assert image[16, 16] == 255


def test_vertical_line_is_the_transpose() -> None:
    horizontal = render_strokes([[[0, 100], [7, 7]]], size=32, line_width=4, margin=0.125)
    vertical = render_strokes([[[7, 7], [0, 100]]], size=32, line_width=4, margin=0.125)
    np.testing.assert_array_equal(horizontal, vertical.T)


def test_single_point_is_a_centred_dot() -> None:
    image = render_strokes([[[5], [5]]], size=16, line_width=4, margin=0.0)
    ys, xs = np.nonzero(image > 127)
    assert ys.min() == 6 and ys.max() == 9 and xs.min() == 6 and xs.max() == 9


@pytest.mark.parametrize(
    ("strokes", "match"),
    [
        ([], "no strokes"),
        ([[[1, 2], [3]]], "equally long"),
        ([[[1.0, float("nan")], [1, 2]]], "NaN"),
        ([["a", "b"]], "non-numeric|equally"),
        ([[[1e9, 0], [0, 0]]], "beyond"),
    ],
)
def test_malformed_strokes_raise(strokes: object, match: str) -> None:
    with pytest.raises(InvalidImageError, match=match):
        render_strokes(strokes)
