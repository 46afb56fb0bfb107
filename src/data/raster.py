"""The one rasteriser: Quick, Draw! strokes to an anti-aliased square bitmap (ink 255 on 0)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

from src.config import IMAGE_SIZE
from src.errors import InvalidImageError

# A stroke is [[x0, x1, ...], [y0, y1, ...]] (raw data adds a third row of times, ignored here).
Stroke = Sequence[Sequence[float]]

# Line width in output pixels at 64x64, calibrated so rendered strokes match the thickness of
# Google's 28x28 numpy_bitmap drawings once those are brought to 64x64: the width at which the
# median over the bitmap classes of the mean ink mass (sum of to_model_input pixels) of stroke
# renders matches that of the class's bitmaps.
DEFAULT_LINE_WIDTH = 3.0
# The same calibration for a 28x28 render (src.training.augment's "Google look").
GOOGLE_LOOK_LINE_WIDTH_28 = 1.3
# Empty border kept around the drawing, as a fraction of the side (Google's bitmaps keep ~1px of 28).
DEFAULT_MARGIN = 0.06
# Drawing happens at this multiple of the output size, then box-filtered down: cheap anti-aliasing.
SUPERSAMPLE = 4
# Coordinates beyond this magnitude are refused: they are corrupt, not a drawing.
MAX_COORDINATE = 1e6


def count_points(strokes: list) -> int:
    """Points in a ``[[xs, ys], ...]`` drawing (empty strokes count none), before validation.

    What the web app's work bounds are measured in.
    """
    return sum(len(stroke[0]) for stroke in strokes if stroke)


def validate_strokes(strokes: object) -> list[np.ndarray]:
    """Check a stroke list and return it as float64 arrays of shape (2, n_points).

    Args:
        strokes: ``[[xs, ys], ...]`` or ``[[xs, ys, ts], ...]`` in any coordinate range.

    Returns:
        One (2, n) array per stroke, n >= 1.

    Raises:
        InvalidImageError: if the drawing is empty or a stroke is malformed, non-finite or huge.
    """
    if not isinstance(strokes, (list, tuple)) or len(strokes) == 0:
        raise InvalidImageError("drawing has no strokes: send at least one [[x...], [y...]] stroke")
    arrays = []
    for index, stroke in enumerate(strokes):
        if not isinstance(stroke, (list, tuple)) or len(stroke) < 2:
            raise InvalidImageError(
                f"stroke {index} is not [[x...], [y...]]: each stroke needs an x row and a y row"
            )
        try:
            xs = np.asarray(stroke[0], dtype=np.float64)
            ys = np.asarray(stroke[1], dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as error:
            raise InvalidImageError(
                f"stroke {index} has non-numeric or out-of-range coordinates"
            ) from error
        if xs.ndim != 1 or ys.ndim != 1 or xs.size != ys.size or xs.size == 0:
            raise InvalidImageError(
                f"stroke {index} needs equally long, non-empty x and y rows "
                f"(got {xs.size} x and {ys.size} y values)"
            )
        points = np.stack([xs, ys])
        if not np.all(np.isfinite(points)):
            raise InvalidImageError(f"stroke {index} has NaN or infinite coordinates")
        if np.abs(points).max() > MAX_COORDINATE:
            raise InvalidImageError(
                f"stroke {index} has coordinates beyond +/-{MAX_COORDINATE:g}; rescale the drawing"
            )
        arrays.append(points)
    return arrays


def render_strokes(
    strokes: object,
    size: int = IMAGE_SIZE,
    line_width: float = DEFAULT_LINE_WIDTH * IMAGE_SIZE / 64,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Rasterise strokes into a square uint8 image, fitted to the drawing's bounding box.

    The drawing is scaled uniformly so its longer side (plus the line width) fills the image
    less a margin on each side, and centred. Lines have round caps and joins.

    Args:
        strokes: ``[[xs, ys], ...]`` (Quick, Draw! simplified or raw format).
        size: side of the output image in pixels.
        line_width: stroke width in output pixels.
        margin: empty border on each side, as a fraction of ``size``.

    Returns:
        uint8 array (size, size): ink 255 on background 0.

    Raises:
        InvalidImageError: if the strokes are malformed (see ``validate_strokes``).
    """
    arrays, layout = _validated_layout(strokes, size, line_width, margin)
    return _draw(arrays, layout, size)


def render_stroke_masks(
    strokes: object,
    size: int = IMAGE_SIZE,
    line_width: float = DEFAULT_LINE_WIDTH * IMAGE_SIZE / 64,
    margin: float = DEFAULT_MARGIN,
) -> np.ndarray:
    """Rasterise each stroke alone, in the frame ``render_strokes`` fits to the whole drawing.

    Stroke k's mask covers exactly the pixels stroke k inks in ``render_strokes(strokes, ...)``,
    so maps of the whole drawing can be read stroke by stroke.

    Args:
        strokes: ``[[xs, ys], ...]`` as for ``render_strokes``.
        size: side of the output images in pixels.
        line_width: stroke width in output pixels.
        margin: empty border on each side, as a fraction of ``size``.

    Returns:
        uint8 array (n_strokes, size, size): stroke k's ink 255 on background 0.

    Raises:
        InvalidImageError: if the strokes are malformed (see ``validate_strokes``).
    """
    arrays, layout = _validated_layout(strokes, size, line_width, margin)
    return np.stack([_draw([points], layout, size) for points in arrays])


def _validated_layout(
    strokes: object, size: int, line_width: float, margin: float
) -> tuple[list[np.ndarray], tuple[np.ndarray, float, np.ndarray, float]]:
    """Validate strokes and fit the whole drawing's frame (shared by both renderers)."""
    if size < 4:
        raise ValueError(f"size must be at least 4 pixels, got {size}")
    arrays = validate_strokes(strokes)
    return arrays, _layout(arrays, size, line_width, margin)


def _layout(
    arrays: list[np.ndarray], size: int, line_width: float, margin: float
) -> tuple[np.ndarray, float, np.ndarray, float]:
    """The whole drawing's fit: (low corner, scale, offset, supersampled line width)."""
    all_points = np.concatenate(arrays, axis=1)
    low = all_points.min(axis=1)
    extent = float((all_points.max(axis=1) - low).max())
    canvas = size * SUPERSAMPLE
    width = max(line_width * SUPERSAMPLE, 1.0)
    usable = canvas * (1 - 2 * margin) - width
    scale = usable / extent if extent > 0 else 0.0
    span = (all_points.max(axis=1) - low) * scale
    # Centre the drawing: the offset spreads the unused room evenly on both sides.
    offset = (canvas - span) / 2
    return low, scale, offset, width


def _draw(
    arrays: list[np.ndarray], layout: tuple[np.ndarray, float, np.ndarray, float], size: int
) -> np.ndarray:
    """Draw strokes with a fixed layout on a supersampled canvas, then box-filter to ``size``."""
    low, scale, offset, width = layout
    canvas = size * SUPERSAMPLE
    image = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(image)
    radius = width / 2
    for points in arrays:
        xy = ((points - low[:, None]) * scale + offset[:, None]).T
        coords = [(float(x), float(y)) for x, y in xy]
        if len(coords) > 1:
            draw.line(coords, fill=255, width=max(int(math.ceil(width)), 1), joint="curve")
        # Round caps (and single-point strokes as dots): PIL lines have square ends.
        for x, y in (coords[0], coords[-1]):
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=255)
    return np.asarray(image.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)
