"""The one polarity rule: the border's median brightness decides which way round a sketch is."""

from __future__ import annotations

import numpy as np

from src.data.polarity import on_light_paper, paper_levels


def test_heavy_dark_ink_on_white_paper_is_light_paper() -> None:
    """A drawing that covers most of the canvas: its mean says "dark", its border says paper."""
    image = np.zeros((8, 8), np.float32)  # dark everywhere ...
    image[0, :] = image[-1, :] = image[:, 0] = image[:, -1] = 1.0  # ... but on white paper
    assert image.mean() < 0.5
    assert paper_levels(image) == 1.0
    assert bool(on_light_paper(image))


def test_one_decision_per_image_of_a_batch() -> None:
    white_ink = np.zeros((3, 6, 6), np.float32)
    white_ink[:, 2:4, 1:5] = 1.0
    batch = np.stack([white_ink[0], 1.0 - white_ink[1], white_ink[2]])
    assert on_light_paper(batch).tolist() == [False, True, False]


def test_the_border_median_is_the_paper_level() -> None:
    """Border of a 4x4 image: rows 0 and 3, columns 0 and 3 (corners counted twice, as in
    preprocessing); 11 of its 16 listed values are 0.25 and 5 are 0.75, so the median is 0.25."""
    image = np.full((4, 4), 0.75, np.float32)
    image[0, :] = 0.25
    image[:, 0] = 0.25
    image[3, 1] = 0.25
    assert paper_levels(image) == 0.25
    assert not bool(on_light_paper(image))
