"""The one colormap and overlay helper: every heatmap image the project shows comes from here."""

from __future__ import annotations

import functools
import io
import zlib
from typing import Any

import numpy as np

from src.data.polarity import on_light_paper

DEFAULT_COLORMAP = "jet"  # red = high importance, blue = low, as docs/usage_guide.md describes
DEFAULT_ALPHA = 0.4


def sketch_for_display(image: Any) -> np.ndarray:
    """A model input (either polarity) as float (H, W) with dark ink on white paper."""
    return sketches_for_display(_as_batch_of_one(image))[0]


def _as_batch_of_one(image: Any) -> np.ndarray:
    """(H, W), (H, W, 1) or (1, H, W, 1) as float32 (1, H, W)."""
    array = np.asarray(image, dtype=np.float32)
    array = array.reshape(array.shape[-3], array.shape[-2]) if array.ndim >= 3 else array
    return array[np.newaxis]


def sketches_for_display(images: Any) -> np.ndarray:
    """A batch of model inputs (N, H, W) or (N, H, W, 1), each either polarity, as float
    (N, H, W) with dark ink on white paper."""
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 4:
        array = array[..., 0]
    # The model's input is white ink on black; people expect ink on paper. Decided per image.
    dark = ~on_light_paper(array)
    return np.where(dark[:, np.newaxis, np.newaxis], 1.0 - array, array)


def heatmap_to_rgb(heatmap: Any, colormap: str = DEFAULT_COLORMAP) -> np.ndarray:
    """A [0, 1] heatmap (H, W), or a batch (N, H, W), to uint8 RGB (..., 3) through a colormap.

    Raises:
        ValueError: for an unknown colormap name.
    """
    table = _colour_table(colormap)
    # Indexing a cached uint8 table gives the colormap's colours without building a float RGBA
    # image per call, which cost more than the PNG encoding.
    # np.take along the first axis: the cheapest row gather for (N, 3) tables.
    return np.take(table, _colour_indices(heatmap, len(table)), axis=0)


def _colour_indices(heatmap: Any, entries: int) -> np.ndarray:
    """Colormap entries of a [0, 1] heatmap, as matplotlib's Colormap.__call__ picks them:
    entry int(value * N), with 1.0 in the last entry; NaN counts as 0."""
    # fmax/fmin skip NaN, so NaN becomes 0 and infinities clip: np.nan_to_num then np.clip in
    # two plain ufunc passes (nan_to_num's own checks cost more than the colour lookup).
    values = np.fmin(np.fmax(np.asarray(heatmap, dtype=np.float32), 0.0), 1.0)
    indices = (values * entries).astype(np.intp)
    return np.minimum(indices, entries - 1, out=indices)


@functools.lru_cache(maxsize=64)
def _scaled_colour_table(colormap: str, alpha: float) -> np.ndarray:
    """``alpha`` times the colormap's uint8 entries, as float32 (N, 3)."""
    table = _colour_table(colormap).astype(np.float32) * alpha
    table.setflags(write=False)  # shared between calls through the cache
    return table


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
    heatmaps = np.asarray(heatmap)[np.newaxis]
    return overlay_heatmaps(_as_batch_of_one(image), heatmaps, alpha, colormap)[0]


def overlay_heatmaps(
    images: Any, heatmaps: Any, alpha: float = DEFAULT_ALPHA, colormap: str = DEFAULT_COLORMAP
) -> np.ndarray:
    """``overlay_heatmap`` for a batch in one pass: uint8 RGB (N, H, W, 3).

    Args:
        images: model inputs (N, H, W) or (N, H, W, 1), each either polarity, in [0, 1].
        heatmaps: (N, H, W) in [0, 1].
        alpha: heatmap opacity in [0, 1].
        colormap: matplotlib colormap name.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    paper = sketches_for_display(images)
    indices = _colour_indices(heatmaps, len(_colour_table(colormap)))
    if indices.shape != paper.shape:
        raise ValueError(f"heatmaps {indices.shape} and images {paper.shape} differ in size")
    # alpha * colour read from a cached float table: the same float32 products as multiplying
    # the looked-up colours, without two passes over the RGB image.
    blended = np.take(_scaled_colour_table(colormap, alpha), indices, axis=0)
    # Broadcast over the colour channels rather than repeating the sketch three times.
    blended += (1.0 - alpha) * (paper * 255.0)[..., np.newaxis]
    return blended.round(out=blended).astype(np.uint8)


def to_png_bytes(rgb_or_gray: Any, scale: int = 1, compress_level: int = 1) -> bytes:
    """Encode a uint8 image array as PNG bytes, optionally enlarged by nearest-neighbour ``scale``.

    Level 1 compression with zlib's run-length strategy: maps are tiny and smooth, and on a
    live server or a 1,000-image batch the encoder's time matters more than a few bytes, and on
    these smooth overlays Z_RLE is both quicker and smaller than the default strategy.
    """
    from PIL import Image

    array = np.asarray(rgb_or_gray)
    if array.dtype != np.uint8:
        array = (np.clip(array, 0.0, 1.0) * 255).round().astype(np.uint8)
    image = Image.fromarray(array)
    if scale > 1:
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=compress_level, compress_type=zlib.Z_RLE)
    return buffer.getvalue()
