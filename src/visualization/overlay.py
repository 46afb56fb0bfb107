"""The one colormap and overlay helper: every heatmap image the project shows comes from here."""

from __future__ import annotations

import functools
import io
from typing import Any

import numpy as np

DEFAULT_COLORMAP = "jet"  # red = high importance, blue = low, as the guide describes
DEFAULT_ALPHA = 0.4


def sketch_for_display(image: Any) -> np.ndarray:
    """A model input (either polarity) as float (H, W) with dark ink on white paper."""
    array = np.asarray(image, dtype=np.float32)
    array = array.reshape(array.shape[-3], array.shape[-2]) if array.ndim >= 3 else array
    # The model's input is white ink on black; people expect ink on paper.
    return 1.0 - array if float(array.mean()) < 0.5 else array


def heatmap_to_rgb(heatmap: Any, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """A [0, 1] heatmap (H, W) to uint8 RGB (H, W, 3) through a matplotlib colormap.

    Raises:
        ValueError: for an unknown colormap name.
    """
    table = _colour_table(colormap)
    values = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float32)), 0.0, 1.0)
    # The colormap's own float lookup (matplotlib's Colormap.__call__): entry int(value * N),
    # with 1.0 in the last entry. Indexing a cached uint8 table gives the same colours without
    # building a float RGBA image per call, which cost more than the PNG encoding.
    indices = (values * len(table)).astype(np.intp)
    np.minimum(indices, len(table) - 1, out=indices)
    return table[indices]


@functools.lru_cache(maxsize=32)
def _colour_table(colormap: str) -> np.ndarray:
    """A matplotlib colormap's entries as uint8 RGB (N, 3), rounded as ``heatmap_to_rgb`` shows them.

    Raises:
        ValueError: for an unknown colormap name.
    """
    import matplotlib

    try:
        cmap = matplotlib.colormaps[colormap]
    except KeyError as error:
        raise ValueError(
            f"unknown colormap {colormap!r}; try jet, viridis, inferno or turbo"
        ) from error
    table = (cmap(np.arange(cmap.N))[:, :3] * 255).round().astype(np.uint8)
    table.setflags(write=False)  # shared between calls through the cache
    return table


def overlay_heatmap(
    image: Any, heatmap: Any, alpha: float = DEFAULT_ALPHA, colormap: str = DEFAULT_COLORMAP
) -> np.ndarray:
    """Blend a coloured heatmap over the sketch: uint8 RGB (H, W, 3).

    Args:
        image: the model input (H, W) or (H, W, 1), either polarity, values in [0, 1].
        heatmap: (H, W) in [0, 1], same size as the image.
        alpha: heatmap opacity in [0, 1].
        colormap: matplotlib colormap name.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    paper = sketch_for_display(image)
    colours = heatmap_to_rgb(heatmap, colormap).astype(np.float32)
    if colours.shape[:2] != paper.shape:
        raise ValueError(f"heatmap {colours.shape[:2]} and image {paper.shape} differ in size")
    # Broadcast over the colour channels rather than repeating the sketch three times.
    sketch_rgb = (paper * 255.0)[..., np.newaxis]
    return ((1.0 - alpha) * sketch_rgb + alpha * colours).round().astype(np.uint8)


def to_png_bytes(rgb_or_gray: Any, scale: int = 1, compress_level: int = 1) -> bytes:
    """Encode a uint8 image array as PNG bytes, optionally enlarged by nearest-neighbour ``scale``.

    Level 1 compression: maps are tiny, and on a live server the encoder's time matters more
    than a few hundred bytes.
    """
    from PIL import Image

    array = np.asarray(rgb_or_gray)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level)
    return buffer.getvalue()
