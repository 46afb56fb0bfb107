"""A map computed at the model's resolution, laid over the user's own image at its own size.

``to_model_input`` crops the drawing, pads it to a centred square with a margin and resizes that
square into the model's frame (centred on the longer side of a non-square frame);
``FitGeometry`` says where the square lies in the image. Undoing those steps puts each map
pixel back over the image pixels it was made from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image

from src.data.preprocess import FitGeometry


def heatmap_on_image(
    heatmap: np.ndarray, geometry: FitGeometry | None, image_shape: tuple[int, int]
) -> np.ndarray:
    """The model-frame ``heatmap`` (H, W) as a float32 map of the image's ``(rows, cols)``.

    Args:
        heatmap: the map at the model's input size, values in [0, 1].
        geometry: ``fit_geometry`` of the image (None for a blank image: an all-zero map).
        image_shape: the image's (rows, cols).

    Returns:
        float32 (rows, cols) in [0, 1]; zero outside the fitted square.
    """
    rows, cols = image_shape
    on_image = np.zeros((rows, cols), np.float32)
    if geometry is None:
        return on_image
    height, width = heatmap.shape
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    square = np.ascontiguousarray(heatmap[top : top + side, left : left + side], np.float32)
    # Only the part of the fitted square that lies on the image is resized: the margin may
    # reach past the image's edges, and the square can be far larger than the image's crop.
    first_row, first_col = max(geometry.top, 0), max(geometry.left, 0)
    last_row = min(geometry.top + geometry.side, rows)
    last_col = min(geometry.left + geometry.side, cols)
    if last_row <= first_row or last_col <= first_col:
        return on_image
    scale = side / geometry.side
    box = (
        (first_col - geometry.left) * scale,
        (first_row - geometry.top) * scale,
        (last_col - geometry.left) * scale,
        (last_row - geometry.top) * scale,
    )
    picture = Image.fromarray(square, mode="F").resize(
        (last_col - first_col, last_row - first_row), Image.Resampling.BILINEAR, box=box
    )
    on_image[first_row:last_row, first_col:last_col] = np.asarray(picture, np.float32)
    return np.clip(on_image, 0.0, 1.0)


def overlay_on_image(
    image: Any, heatmap: np.ndarray, alpha: float, colormap: str, margin: float | None = None
) -> np.ndarray:
    """The map laid over the user's image (PIL image) at its size: uint8 RGB (rows, cols, 3).

    Raises:
        InvalidImageError: as ``to_model_input``.
    """
    from src.data.preprocess import fit_geometry, grayscale
    from src.data.raster import DEFAULT_MARGIN
    from src.visualization.overlay import overlay_heatmap

    grey = grayscale(image)
    geometry = fit_geometry(image, DEFAULT_MARGIN if margin is None else margin)
    on_image = heatmap_on_image(heatmap, geometry, grey.shape)
    return overlay_heatmap(grey, on_image, alpha=alpha, colormap=colormap)
