"""Bring Grad-CAM maps of different renderings of one drawing into the drawing's own frame.

A map lives in model-input pixels. Each input path says where a canvas point lands in the model
input (docs/usage_guide.md's snippet resizes the whole canvas; ``to_model_input`` crops a
square around the ink, see ``src.data.preprocess.fit_geometry``), and each rendering says where a drawing point
lands on the canvas (``src.audit.factors.Rendering``). Chaining the two, every map is sampled on
one grid laid over the drawing's bounding square, so maps of a drawing rendered large, small,
in a corner or rotated can be rank-correlated point for point.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from src.data.preprocess import FitGeometry

# Grid points per side of the common frame: the model's maps come from an 8x8 layer, so a finer
# grid adds no information, only ties.
GRID_SIDE = 32
# The grid covers the drawing's bounding square plus this share of its side on each side (the
# pen's width spills over the centre lines).
GRID_PAD = 0.06


def drawing_grid(strokes: list[np.ndarray], side: int = GRID_SIDE) -> np.ndarray:
    """Cell centres (side * side, 2) as (x, y) over the drawing's padded bounding square."""
    points = np.concatenate(strokes, axis=1)
    low, high = points.min(axis=1), points.max(axis=1)
    centre = (low + high) / 2
    half = (float((high - low).max()) or 1.0) * (0.5 + GRID_PAD)
    steps = centre[:, None] - half + (np.arange(side) + 0.5) * (2 * half / side)
    xs, ys = np.meshgrid(steps[0], steps[1])
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


def snippet_coordinates(canvas_xy: np.ndarray, canvas_side: int, size: int) -> np.ndarray:
    """Canvas points (..., 2) as (x, y) to the snippet path's model input: the canvas resized."""
    return canvas_xy * (size / canvas_side)


def fitted_coordinates(
    canvas_xy: np.ndarray, geometry: FitGeometry | None, size: int
) -> np.ndarray:
    """Canvas points (..., 2) as (x, y) to ``to_model_input``'s model input.

    A blank canvas (no geometry) maps everything to the input's centre.
    """
    if geometry is None:
        return np.full_like(canvas_xy, size / 2)
    rows, cols = geometry.to_model(canvas_xy[..., 1], canvas_xy[..., 0], size)
    return np.stack([cols, rows], axis=-1)


def sample_maps(maps: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear samples of maps (N, H, W) at continuous (x, y) points (N, P, 2).

    Pixel k spans [k, k + 1), so its value sits at k + 0.5; points outside take the edge value.

    Returns:
        float32 (N, P).
    """
    count, height, width = maps.shape
    xs = np.clip(points[..., 0] - 0.5, 0.0, width - 1.0)
    ys = np.clip(points[..., 1] - 0.5, 0.0, height - 1.0)
    # The lower neighbour; max(..., 0) keeps a one-pixel map valid (x1 == x0 then).
    x0 = np.maximum(np.minimum(np.floor(xs).astype(np.int64), width - 2), 0)
    y0 = np.maximum(np.minimum(np.floor(ys).astype(np.int64), height - 2), 0)
    x1 = np.minimum(x0 + 1, width - 1)
    y1 = np.minimum(y0 + 1, height - 1)
    fx, fy = xs - x0, ys - y0
    rows = np.arange(count)[:, None]
    top = maps[rows, y0, x0] * (1 - fx) + maps[rows, y0, x1] * fx
    bottom = maps[rows, y1, x0] * (1 - fx) + maps[rows, y1, x1] * fx
    return (top * (1 - fy) + bottom * fy).astype(np.float32)


def rank_correlation(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Spearman rank correlation of each row of ``first`` (N, P) with the same row of ``second``.

    Ties share their average rank. A row that is constant in either array has no ranking to
    compare: NaN.
    """
    ranks = [rankdata(values, axis=1) for values in (first, second)]
    centred = [rank - rank.mean(axis=1, keepdims=True) for rank in ranks]
    numerator = (centred[0] * centred[1]).sum(axis=1)
    denominator = np.sqrt((centred[0] ** 2).sum(axis=1) * (centred[1] ** 2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)
