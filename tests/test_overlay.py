"""The one colormap and overlay helper against matplotlib's own colormap and a hand blend.

Expectations are computed independently: colours by calling the matplotlib colormap object on
the heatmap values (its own float lookup), the blend in float64 from the formula
``(1 - alpha) * paper + alpha * colour``, and PNG bytes by decoding them back with Pillow.
"""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import pytest
from PIL import Image

from src.data.preprocess import to_model_input
from src.visualization.overlay import (
    heatmap_to_rgb,
    overlay_heatmap,
    overlay_heatmaps,
    sketch_for_display,
    to_png_bytes,
)


def matplotlib_rgb(heatmap: np.ndarray, colormap: str) -> np.ndarray:
    """Colours as matplotlib draws them: NaN as 0, values clipped to [0, 1], 8-bit rounded."""
    values = np.clip(np.nan_to_num(heatmap.astype(np.float64)), 0.0, 1.0)
    return (matplotlib.colormaps[colormap](values)[..., :3] * 255).round().astype(np.uint8)


def hand_blend(paper: np.ndarray, heatmap: np.ndarray, alpha: float, colormap: str) -> np.ndarray:
    """The overlay in float64: ``paper`` is dark ink on white in [0, 1]."""
    colours = matplotlib_rgb(heatmap, colormap).astype(np.float64)
    return (1 - alpha) * paper[..., np.newaxis] * 255 + alpha * colours


@pytest.fixture
def heatmaps() -> np.ndarray:
    """Random maps with the edge cases: exactly 0 and 1, NaN, below 0 and above 1."""
    values = np.random.default_rng(3).random((4, 16, 16)).astype(np.float32)
    values[0, 0, :5] = [0.0, 1.0, np.nan, -0.5, 2.0]
    return values


@pytest.mark.parametrize("colormap", ["jet", "viridis", "inferno"])
def test_colours_are_matplotlibs(heatmaps: np.ndarray, colormap: str) -> None:
    np.testing.assert_array_equal(
        heatmap_to_rgb(heatmaps[0], colormap), matplotlib_rgb(heatmaps[0], colormap)
    )
    # A batch is coloured like its images one by one.
    np.testing.assert_array_equal(
        heatmap_to_rgb(heatmaps, colormap), matplotlib_rgb(heatmaps, colormap)
    )


@pytest.mark.parametrize("alpha", [0.0, 0.4, 1.0])
def test_overlay_is_the_blend_on_dark_ink_paper(heatmaps: np.ndarray, alpha: float) -> None:
    # A model input is white ink on black: the overlay shows it as dark ink on white paper.
    model_input = np.zeros((16, 16, 1), np.float32)
    model_input[4:12, 7:9] = 1.0
    expected = hand_blend(1.0 - model_input[..., 0], heatmaps[1], alpha, "jet")
    overlay = overlay_heatmap(model_input, heatmaps[1], alpha)
    assert overlay.dtype == np.uint8 and overlay.shape == (16, 16, 3)
    assert np.abs(overlay.astype(np.float64) - expected).max() <= 0.5 + 1e-3


def test_batch_overlay_decides_polarity_per_image(heatmaps: np.ndarray) -> None:
    white_ink = np.zeros((16, 16), np.float32)
    white_ink[2:5, 2:14] = 1.0
    dark_ink = 1.0 - white_ink  # the same drawing, already dark ink on white
    images = np.stack([white_ink, dark_ink])[..., np.newaxis]
    overlays = overlay_heatmaps(images, heatmaps[:2], 0.3, "viridis")
    for overlay, heatmap in zip(overlays, heatmaps[:2]):
        expected = hand_blend(dark_ink, heatmap, 0.3, "viridis")
        assert np.abs(overlay.astype(np.float64) - expected).max() <= 0.5 + 1e-3
    np.testing.assert_array_equal(sketch_for_display(white_ink), dark_ink)


def test_overlay_refuses_bad_alpha_and_mismatched_sizes(heatmaps: np.ndarray) -> None:
    with pytest.raises(ValueError, match="alpha"):
        overlay_heatmap(np.zeros((16, 16)), heatmaps[0], alpha=1.5)
    with pytest.raises(ValueError, match="differ in size"):
        overlay_heatmap(np.zeros((8, 8)), heatmaps[0])
    with pytest.raises(ValueError, match="unknown colormap"):
        heatmap_to_rgb(heatmaps[0], "no-such-map")


@pytest.mark.parametrize("scale", [1, 3])
def test_png_bytes_decode_to_the_same_pixels(heatmaps: np.ndarray, scale: int) -> None:
    rgb = heatmap_to_rgb(heatmaps[2])
    with Image.open(io.BytesIO(to_png_bytes(rgb, scale=scale))) as image:
        decoded = np.asarray(image.convert("RGB"))
    # Nearest-neighbour enlargement: every pixel becomes a scale x scale block.
    np.testing.assert_array_equal(decoded, rgb.repeat(scale, axis=0).repeat(scale, axis=1))
    gray = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    with Image.open(io.BytesIO(to_png_bytes(gray))) as image:
        assert image.mode == "L"
        np.testing.assert_array_equal(np.asarray(image), (gray * 255).round().astype(np.uint8))


def test_preprocessing_leaves_the_callers_array_alone() -> None:
    # The ink transform works in place on its own copy; a caller's float array must not change.
    drawing = np.ones((40, 50), np.float32)
    drawing[10:30, 20:24] = 0.0
    before = drawing.copy()
    to_model_input(drawing)
    np.testing.assert_array_equal(drawing, before)
