"""The ONLY preprocessing: any image or drawing to the model's input.

Training, the CLI, the Python API and the web app all call ``to_model_input``; nothing else in the
project resizes, inverts or normalises a sketch. The canonical look is Google's numpy_bitmap
look: white ink (1.0) on black (0.0), the drawing centred and fitted to the frame with a margin,
float32 (64, 64, 1) in [0, 1]. Given a model's ``InputSpec``, the same picture is made at that
model's size and encoded in its ink, value range and channels.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from src.config import IMAGE_SIZE
from src.data.input_spec import InputSpec
from src.data.polarity import LIGHT_PAPER, paper_levels
from src.data.raster import DEFAULT_LINE_WIDTH, DEFAULT_MARGIN, render_strokes
from src.errors import InvalidImageError

# Images above this many pixels are refused before decoding (decompression bombs, huge scans).
MAX_IMAGE_PIXELS = 40_000_000
# Ink is whatever differs from the background by more than this (robust to JPEG noise).
INK_THRESHOLD = 0.15
# The padded square is never larger than this; bigger drawings are area-averaged down first.
MAX_SQUARE_SIDE = 4096
# Every drawing passes through Google's numpy_bitmap resolution on its way in (see ``_fit``).
DETAIL_SIZE = 28
# Pen-width normalisation (``_thicken_thin_pen``): a drawing whose estimated pen width is below
# THIN_PEN_WIDTH of the fitted square is thickened to TRAINING_PEN_WIDTH before the 28x28 step,
# since a thin pen area-averages into faint lines the model reads as another class. Both are
# fractions of the square's side: TRAINING_PEN_WIDTH is the pen-width audit's reference level
# (models/model_card.json, "audit") expressed in the fitted square, margin included. The
# project's own stroke render lies above THIN_PEN_WIDTH and Google's bitmaps skip the 28x28
# step, so the training look passes unchanged. Thick pens are left alone: thinning by erosion
# or by redrawing the skeleton lost more (filled-in details do not come back) than it gained.
THIN_PEN_WIDTH = 0.03
TRAINING_PEN_WIDTH = 0.045
# The pen is estimated on the ink mask area-averaged to PEN_ESTIMATE_SIZE (8 x DETAIL_SIZE), so
# the cost does not grow with the canvas; a first look at PEN_GLANCE_SIZE, a quarter of the
# pixels, settles most drawings: only a glance under PEN_GLANCE_WIDTH needs the finer estimate.
PEN_ESTIMATE_SIZE = 224
PEN_GLANCE_SIZE = 112
PEN_GLANCE_WIDTH = 0.04
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def load_image(source: str | Path | bytes) -> Image.Image:
    """Open an image file or encoded bytes safely and return its first frame, EXIF-rotated.

    Args:
        source: a path, or the encoded bytes of a PNG/JPEG/BMP/GIF/WebP/TIFF image.

    Returns:
        A fully decoded PIL image (first frame of an animation).

    Raises:
        InvalidImageError: if the file is missing, not an image, truncated, or too large.
    """
    if isinstance(source, (bytes, bytearray)):
        stream: io.BytesIO | Path = io.BytesIO(bytes(source))
        name = "image data"
    else:
        stream = Path(source)
        name = str(source)
        if not stream.is_file():
            raise InvalidImageError(f"image file not found: {name} (check the path)")
    try:
        with Image.open(stream) as opened:
            width, height = opened.size
            if width * height > MAX_IMAGE_PIXELS or width < 1 or height < 1:
                raise InvalidImageError(
                    f"{name} is {width}x{height} pixels; images must be 1 to "
                    f"{MAX_IMAGE_PIXELS:,} pixels (resize it first)"
                )
            opened.seek(0)
            opened.load()
            image = ImageOps.exif_transpose(opened) or opened
            return image.copy()
    except InvalidImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError) as error:
        raise InvalidImageError(
            f"{name} is not a readable image ({_reason(error, name)}); "
            "use PNG, JPEG, BMP, GIF or WebP"
        ) from error
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        raise InvalidImageError(
            f"{name} is truncated or corrupt ({_reason(error, name)})"
        ) from error


def _reason(error: Exception, name: str) -> str:
    """Pillow's message with its Python object reprs (``<_io.BytesIO object at 0x...>``)
    replaced by what the user sent: an address means nothing to them."""
    return re.sub(r"<[^<>]* at 0x[0-9a-fA-F]+>", name, str(error))


def _grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """Any image to a float32 2-D array in [0, 1]; transparency becomes white paper."""
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            array = np.asarray(image, dtype=np.float32)
            top = float(array.max()) if array.size else 0.0
            return array / top if top > 0 else np.zeros_like(array)
        if image.mode == "LAB":
            # Pillow converts LAB to nothing else; its L band is the lightness already.
            image = image.getchannel("L")
        if image.mode == "La":
            # Premultiplied alpha: Pillow converts it only to LA, which composites as usual.
            image = image.convert("LA")
        if image.mode == "P" or image.mode == "PA":
            image = image.convert("RGBA")
        if image.mode in ("RGBA", "LA", "La", "RGBa"):
            paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(paper, image.convert("RGBA"))
        try:
            gray_image = image if image.mode == "L" else image.convert("L")
        except ValueError as error:
            raise InvalidImageError(
                f"images in Pillow mode {image.mode} cannot be read ({error}); "
                "save the image as RGB or grayscale"
            ) from error
        gray = np.asarray(gray_image, dtype=np.float32)
        gray /= 255.0  # in place: this array is ours, and a 256x256 copy is measurable here
        return gray
    array = np.asarray(image)
    if array.dtype == bool:
        array = array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidImageError(f"image array has non-numeric dtype {array.dtype}")
    array = array.astype(np.float32)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        if array.shape[-1] == 4:
            alpha = array[..., 3:] / (255.0 if array.max() > 1.0 else 1.0)
            array = array[..., :3] * alpha + (255.0 if array.max() > 1.0 else 1.0) * (1 - alpha)
        array = array.mean(axis=-1) if array.shape[-1] == 3 else array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise InvalidImageError(
            f"image array has shape {array.shape}; expected (H, W), (H, W, 1|3|4) or (1, H, W, 1)"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidImageError("image array contains NaN or infinite values")
    if array.max() > 1.0:
        array = array / 255.0
    return np.clip(array, 0.0, 1.0)


def grayscale(image: Image.Image | np.ndarray) -> np.ndarray:
    """Any image (any PIL mode, alpha over white paper, or array) as float32 (H, W) in [0, 1].

    Raises:
        InvalidImageError: as ``to_model_input``.
    """
    return _grayscale(image)


def _ink(gray: np.ndarray) -> np.ndarray:
    """Grayscale to ink intensity: the background (the border's median) maps to 0, ink to 1.

    Works in place on ``gray`` (``_grayscale`` always returns a fresh array).
    """
    background = float(paper_levels(gray))
    # Dark ink on light paper (a PNG sketch) or light ink on dark (Quick, Draw! bitmaps).
    ink = gray if background < LIGHT_PAPER else np.subtract(1.0, gray, out=gray)
    level = min(background, 1.0 - background)
    # On pure white (or black) paper, the usual case, the stretch is the identity: skipping it
    # saves two passes over the image.
    if level != 0.0:
        ink -= level
        ink /= max(1.0 - level, 1e-6)
    # np.minimum/np.maximum rather than np.clip: the same values without np.clip's Python-level
    # dispatch, which costs more than the pass itself on a 256x256 image.
    return np.minimum(np.maximum(ink, 0.0, out=ink), 1.0, out=ink)


@dataclass(frozen=True)
class FitGeometry:
    """Where ``to_model_input`` takes its square from, in the source image's pixels.

    The square's top-left corner is at (``top``, ``left``) (it may lie outside the image: the
    margin is padding) and its side is ``side`` pixels; it is resized to the output size, so a
    point at (row, col) of the image lands at ``((row - top) * size / side,
    (col - left) * size / side)`` of the model input (continuous coordinates, pixel k spanning
    [k, k + 1)). ``crop`` is the ink's bounding box: (first row, last row, first col, last col).
    """

    top: int
    left: int
    side: int
    crop: tuple[int, int, int, int]

    def to_model(self, rows: np.ndarray, cols: np.ndarray, size: int) -> tuple[Any, Any]:
        """Image coordinates (continuous) to model-input coordinates for an output of ``size``."""
        scale = size / self.side
        return (np.asarray(rows) - self.top) * scale, (np.asarray(cols) - self.left) * scale


def is_empty(ink: np.ndarray) -> bool:
    """Whether a picture of ink intensities (1 = ink, 0 = paper, any shape) holds no ink.

    The one "nothing drawn" rule: no pixel is above INK_THRESHOLD, the level ``to_model_input``
    itself takes for ink. A blank canvas, a 1x1 PNG or an all-white photo comes out of
    preprocessing as all zeros, and a model still ranks classes for it (a confident-looking
    answer about nothing), so every interface asks this first and answers "nothing drawn".
    """
    return not bool(np.any(np.asarray(ink) > INK_THRESHOLD))


def _geometry(ink: np.ndarray, margin: float) -> FitGeometry | None:
    """The crop box and the centred square around it; None for a blank image."""
    inked = ink > INK_THRESHOLD
    rows = np.flatnonzero(inked.any(axis=1))
    cols = np.flatnonzero(inked.any(axis=0))
    if rows.size == 0:
        return None
    height = int(rows[-1] - rows[0] + 1)
    width = int(cols[-1] - cols[0] + 1)
    side = int(np.ceil(max(height, width) / (1 - 2 * margin)))
    return FitGeometry(
        top=int(rows[0]) - (side - height) // 2,
        left=int(cols[0]) - (side - width) // 2,
        side=side,
        crop=(int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])),
    )


def fit_geometry(
    image: Image.Image | np.ndarray, margin: float = DEFAULT_MARGIN
) -> FitGeometry | None:
    """The square ``to_model_input(image, margin=margin)`` crops and resizes, or None if blank.

    Lets a caller map model-input coordinates (a Grad-CAM map) back onto the image it gave.

    Raises:
        InvalidImageError: as ``to_model_input``.
    """
    return _geometry(_ink(_grayscale(image)), margin)


def _shrink_crop(
    crop: np.ndarray, side: int, top: int, left: int
) -> tuple[np.ndarray, int, int, int]:
    """The crop and its place in the square, scaled so the square's side is MAX_SQUARE_SIDE."""
    scale = MAX_SQUARE_SIDE / side
    height = max(1, round(crop.shape[0] * scale))
    width = max(1, round(crop.shape[1] * scale))
    small = Image.fromarray(crop, mode="F").resize((width, height), Image.Resampling.BOX)
    top = min(round(top * scale), MAX_SQUARE_SIDE - height)
    left = min(round(left * scale), MAX_SQUARE_SIDE - width)
    return np.asarray(small, dtype=np.float32), MAX_SQUARE_SIDE, top, left


def _box_resize(image: np.ndarray, side: int) -> np.ndarray:
    """Area-average a float32 square to ``side`` x ``side``."""
    picture = Image.fromarray(image, mode="F").resize((side, side), Image.Resampling.BOX)
    return np.asarray(picture, dtype=np.float32)


def estimate_pen_width(inked: np.ndarray) -> float:
    """The pen width of a boolean ink mask, in pixels, from its distance transform.

    Across a line of width w the distance to the paper runs 1, 2, ... up to w/2 pixels and back,
    so its mean over the ink is about w/4 + 1/2: w = 4 * mean - 2. Ends and crossings bias it
    little for drawings of long strokes. 0.0 for a mask without ink.
    """
    from scipy import ndimage

    if not inked.any():
        return 0.0
    distance = ndimage.distance_transform_edt(inked)
    return float(4.0 * distance[inked].mean() - 2.0)


def _pen_width_share(inked: np.ndarray, side: int) -> float:
    """The pen width of a square ink mask as a share of its side, estimated at ``side`` or less."""
    if inked.shape[0] > side:
        # Coverage of the binary ink (not the grey values) decides the mask at this size.
        inked = _box_resize(inked.astype(np.float32), side) > 0.5
    return estimate_pen_width(inked) / inked.shape[0]


def _thicken_thin_pen(square: np.ndarray) -> np.ndarray:
    """The square with a thin pen widened to TRAINING_PEN_WIDTH, else ``square`` itself.

    The width is estimated on which pixels are ink (above INK_THRESHOLD), never on their
    values, and the widening is a grey dilation by a flat square at the square's own
    resolution: it commutes with adding ink inside the ink, so ``src.explain.strokes`` can
    still carry each stroke's mask through the fit. (A dilation after area-averaging would
    keep a hairline's faint grey; at full resolution the widened line is as dark as the pen.)
    """
    from scipy import ndimage

    inked = square > INK_THRESHOLD
    if not inked.any() or _pen_width_share(inked, PEN_GLANCE_SIZE) >= PEN_GLANCE_WIDTH:
        return square
    width = _pen_width_share(inked, PEN_ESTIMATE_SIZE)
    if width >= THIN_PEN_WIDTH:
        return square
    # maximum_filter with a square footprint runs one pass per axis in time independent of
    # its size, which matters on a 4,096 px square.
    reach = int(round((TRAINING_PEN_WIDTH - width) * square.shape[0] / 2))
    if reach < 1:
        return square
    return ndimage.maximum_filter(square, size=2 * reach + 1, mode="constant", cval=0.0)


def _fit(ink: np.ndarray, size: int, margin: float) -> np.ndarray:
    """Crop to the ink's bounding box, pad to a centred square with a margin, resize to size."""
    geometry = _geometry(ink, margin)
    if geometry is None:
        # A blank canvas stays blank: the model and Grad-CAM must cope with it, not us.
        return np.zeros((size, size), dtype=np.float32)
    first_row, last_row, first_col, last_col = geometry.crop
    crop = ink[first_row : last_row + 1, first_col : last_col + 1]
    side = geometry.side
    top = first_row - geometry.top
    left = first_col - geometry.left
    if side > MAX_SQUARE_SIDE:
        # A long thin drawing (say 16,000,000 x 3 pixels) would need a square of side x side
        # floats; area-averaging the crop first keeps the work bounded by the image itself.
        crop, side, top, left = _shrink_crop(crop, side, top, left)
    square = np.zeros((side, side), dtype=np.float32)
    square[top : top + crop.shape[0], left : left + crop.shape[1]] = crop
    # One look for every source: a crisp stroke render or canvas PNG is area-averaged down to
    # Google's 28x28, like their numpy_bitmaps, before coming back up. Otherwise the model
    # learns the look instead of the drawing: bitmap-only classes drawn as crisp strokes go to
    # stroke-only classes (models/model_card.json, "cross_domain", measures it). With the crop
    # box and the ink mask fixed, ink added at a constant level inside that mask comes out
    # added: the resampling is linear and the pen widening a flat dilation (src.explain relies
    # on that). Drawings already near DETAIL_SIZE (the bitmaps themselves) are left alone:
    # resampling them twice would only blur them.
    if side > 2 * DETAIL_SIZE:
        picture = Image.fromarray(_thicken_thin_pen(square), mode="F")
        picture = picture.resize((DETAIL_SIZE, DETAIL_SIZE), Image.Resampling.BOX)
    else:
        picture = Image.fromarray(square, mode="F")
    # Bilinear in Pillow is area-aware when shrinking and smooth when enlarging 28x28 bitmaps.
    resized = picture.resize((size, size), Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def to_model_input(
    image: Image.Image | np.ndarray,
    size: int = IMAGE_SIZE,
    margin: float = DEFAULT_MARGIN,
    spec: InputSpec | None = None,
) -> np.ndarray:
    """Turn any sketch image into the model's input.

    Handles any PIL mode (palette, alpha, 16-bit), any size, black-on-white or white-on-black,
    and ink anywhere on the canvas (it is cropped, centred and fitted with a margin).

    Args:
        image: a PIL image, or an array (H, W), (H, W, C) or (1, H, W, 1), uint8 or float in [0, 1].
        size: output side in pixels (without ``spec``).
        margin: empty border on each side, as a fraction of ``size``.
        spec: the model's input convention; when given, its height, width, channels, ink and
            value range decide the output instead of ``size``.

    Returns:
        float32 array (size, size, 1) in [0, 1], white ink on black; with ``spec``, float32
        (height, width, channels) in the model's own convention.

    Raises:
        InvalidImageError: if the array has an unusable shape, dtype or non-finite values.
    """
    ink = _ink(_grayscale(image))
    if spec is None:
        return _fit(ink, size, margin)[..., np.newaxis]
    return spec.encode(_fit_frame(ink, spec.height, spec.width, margin))


def _fit_frame(ink: np.ndarray, height: int, width: int, margin: float) -> np.ndarray:
    """``_fit`` into a height x width frame: the fitted square centred on the longer side."""
    side = min(height, width)
    square = _fit(ink, side, margin)
    if height == width:
        return square
    frame = np.zeros((height, width), dtype=np.float32)
    top, left = (height - side) // 2, (width - side) // 2
    frame[top : top + side, left : left + side] = square
    return frame


def strokes_to_model_input(
    strokes: object,
    size: int = IMAGE_SIZE,
    line_width: float = DEFAULT_LINE_WIDTH,
    spec: InputSpec | None = None,
) -> np.ndarray:
    """Rasterise Quick, Draw! strokes with the project's rasteriser, then ``to_model_input``.

    Args:
        strokes: ``[[xs, ys], ...]`` in any coordinate range.
        size: output side in pixels (without ``spec``).
        line_width: stroke width in pixels at a 64-pixel output (scaled with the output size).
        spec: the model's input convention: the drawing is rendered at the model's size and
            fed in its ink and value range.

    Returns:
        float32 array (size, size, 1) in [0, 1]; with ``spec``, as ``to_model_input``.

    Raises:
        InvalidImageError: if the strokes are malformed.
    """
    side = size if spec is None else min(spec.height, spec.width)
    bitmap = render_strokes(strokes, size=side, line_width=line_width * side / 64)
    return to_model_input(bitmap, size=side, spec=spec)


def image_file_to_model_input(
    path: str | Path, size: int = IMAGE_SIZE, spec: InputSpec | None = None
) -> np.ndarray:
    """Load an image file (see ``load_image``) and return ``to_model_input`` of it."""
    return to_model_input(load_image(path), size=size, spec=spec)


def to_batch(images: np.ndarray) -> np.ndarray:
    """Shape (H, W), (H, W, 1), (1, H, W, 1) or (N, H, W, 1) input as a float32 (N, H, W, 1) batch.

    Raises:
        InvalidImageError: for any other shape, or non-finite values.
    """
    array = np.asarray(images, dtype=np.float32)
    if array.ndim == 2:
        array = array[np.newaxis, ..., np.newaxis]
    elif array.ndim == 3:
        array = array[np.newaxis] if array.shape[-1] in (1, 3) else array[..., np.newaxis]
    if array.ndim != 4:
        raise InvalidImageError(
            f"image tensor has shape {np.shape(images)}; expected (H, W), (H, W, C), "
            "(1, H, W, C) or (N, H, W, C)"
        )
    if not np.all(np.isfinite(array)):
        raise InvalidImageError("image tensor contains NaN or infinite values")
    return array
