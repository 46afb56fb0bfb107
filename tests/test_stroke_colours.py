"""Stroke-importance colours follow the map's value along each stroke, not each stroke's share.

A known case by construction: the map is 1 on the top half and 0.3 on the bottom half; a short
stroke lies in the top half and a long one in the bottom half. The short stroke is the hot one
(mean 1 against 0.3), although the long one holds more of the map (0.3 over six times the ink).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from src.data.input_spec import InputSpec

SHORT_TOP = [[0, 0], [0, 40]]  # a tick in the top-left corner
LONG_BOTTOM = [[0, 255], [255, 255]]  # the whole bottom edge
STROKES = [LONG_BOTTOM, SHORT_TOP]


class HalfHotCam:
    """Stands in for GradCAM: the same hand-made map for every image."""

    input_size = (64, 64)
    # The convention the project's own 64x64 models read (light ink on dark, values 0-1).
    input_spec = InputSpec(64, 64, 1, "light", "0-1")

    def explain(self, images: np.ndarray, class_indices: Any = None) -> SimpleNamespace:
        heatmap = np.full((64, 64), 0.3, np.float32)
        heatmap[:32] = 1.0
        return SimpleNamespace(
            heatmaps=heatmap[np.newaxis],
            class_indices=np.array([0]),
            probabilities=np.array([[0.7, 0.3]], np.float32),
        )


def test_mean_heat_ranks_the_short_hot_stroke_first() -> None:
    from src.explain.strokes import attribute_strokes

    attribution = attribute_strokes(STROKES, HalfHotCam())
    # The share favours the long stroke: 0.3 of the heat over much more ink.
    assert attribution.shares[0] > attribution.shares[1]
    # Along the strokes: exactly the map's value on each half.
    assert attribution.mean_heat[1] == pytest.approx(1.0, abs=1e-4)
    assert attribution.mean_heat[0] == pytest.approx(0.3, abs=1e-4)


def test_stroke_image_colours_the_short_hot_stroke_red_and_the_long_one_blue() -> None:
    from src.explain.strokes import attribute_strokes
    from src.web.explain_routes import STROKE_IMAGE_SIZE, stroke_importance_image

    attribution = attribute_strokes(STROKES, HalfHotCam())
    image = stroke_importance_image(STROKES, attribution).astype(int)
    ink = image.sum(axis=-1) < 3 * 250
    half = STROKE_IMAGE_SIZE // 2
    top_ink = image[:half][ink[:half]]  # the short stroke
    bottom_ink = image[half:][ink[half:]]  # the long stroke
    assert len(top_ink) and len(bottom_ink)
    # Jet: red for the highest value, blue-cyan for 0.3 of it.
    assert (top_ink[:, 0] > top_ink[:, 2]).mean() > 0.9
    assert (bottom_ink[:, 2] > bottom_ink[:, 0]).mean() > 0.9
