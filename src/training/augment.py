"""Sketch augmentation in NumPy and Pillow only, so it runs under any Keras backend.

Two kinds: on strokes, before rasterising (stroke dropout, line width, and the 28x28 margin of
Google's look), and on the 64x64 model input afterwards (small affine jitter, blur, sharpening,
thickening). Both sides are there to erase the difference between
Google's bitmaps and our renders, so the model must tell classes apart by shape, not by look.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from src.data.preprocess import strokes_to_model_input, to_model_input
from src.data.raster import GOOGLE_LOOK_LINE_WIDTH_28, render_strokes

# The side at which ``restyle_raster`` redraws a raster: a canvas's size, so its pens are a canvas's.
RESTYLE_SIZE = 256


@dataclass(frozen=True)
class AugmentConfig:
    """Strengths of the random augmentations (probabilities are per image)."""

    rotation_degrees: float = 10.0
    scale_range: tuple[float, float] = (0.88, 1.08)
    shift_pixels: float = 3.0
    shear: float = 0.12
    blur_probability: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.0)
    sharpen_probability: float = 0.25
    thicken_probability: float = 0.15
    # Stroke-level: probability of dropping one stroke of a drawing with three or more strokes.
    stroke_dropout_probability: float = 0.5
    direct_line_width: tuple[float, float] = (2.2, 4.0)
    google_line_width: tuple[float, float] = (1.0, 1.6)
    google_look_probability: float = 0.2
    # Of the rest: drawn with an ordinary pen on a canvas, read either by ``to_model_input`` or by
    # the plain ``convert('L').resize((64, 64)) / 255`` that users copy from docs/usage_guide.md.
    # Pen widths span thin to thick relative to the drawing's longer side, so that how thick the
    # pen was stops being a cue for any class.
    canvas_probability: float = 0.75
    plain_resize_probability: float = 0.45
    pen_relative_width: tuple[float, float] = (1 / 72, 1 / 5)
    # For the plain resize: the drawing's size on the canvas and the chance it sits off-centre.
    drawing_fraction: tuple[float, float] = (0.4, 0.95)
    off_centre_probability: float = 0.3
    # Raster restyling (see ``restyle_raster``, kernels at 256 pixels): erosion thins Google's
    # strokes down to a hairline, dilation thickens them about as often and as far as the
    # canvas pens thicken the stroke drawings, so neither a thin nor a thick pen is a cue for
    # either kind of class (thicker still, it made a thick pen a cue for the bitmap classes).
    restyle_kernels: tuple[int, ...] = (-9, -9, -7, -7, -5, 5, 9, 13)
    restyle_probability: float = 0.5


def drop_stroke(strokes: list, rng: np.random.Generator) -> list:
    """Remove one random stroke (never the longest) from a drawing of three or more strokes."""
    if len(strokes) < 3:
        return strokes
    lengths = [len(stroke[0]) for stroke in strokes]
    longest = int(np.argmax(lengths))
    candidates = [index for index in range(len(strokes)) if index != longest]
    dropped = int(rng.choice(candidates))
    return [stroke for index, stroke in enumerate(strokes) if index != dropped]


def render_google_look(strokes: list, line_width: float = GOOGLE_LOOK_LINE_WIDTH_28) -> np.ndarray:
    """Strokes rendered at 28x28 like Google's numpy_bitmap, then brought to the model input."""
    return to_model_input(render_strokes(strokes, size=28, line_width=line_width, margin=0.04))


def render_augmented_strokes(
    strokes: list, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """One random rendering of a drawing as float32 (64, 64, 1) model input.

    Drops a stroke with ``stroke_dropout_probability``, then renders with a random line width,
    either by ``render_google_look`` (margin 0.04) or by ``strokes_to_model_input`` (the
    inference path). The shipped model's first stage drew the second branch at 64x64; see the
    model card's ``training.initialised_from``.
    """
    if rng.random() < config.stroke_dropout_probability:
        strokes = drop_stroke(strokes, rng)
    if rng.random() < config.google_look_probability:
        return render_google_look(strokes, float(rng.uniform(*config.google_line_width)))
    if rng.random() < config.canvas_probability:
        return render_pen_on_canvas(strokes, rng, config)
    return strokes_to_model_input(strokes, line_width=float(rng.uniform(*config.direct_line_width)))


def _log_uniform(bounds: tuple[float, float], rng: np.random.Generator) -> float:
    """A random value spread evenly in log space between ``bounds``."""
    return float(np.exp(rng.uniform(np.log(bounds[0]), np.log(bounds[1]))))


def plain_resize(canvas: np.ndarray, size: int = 64) -> np.ndarray:
    """The usage guide's plain reading of a canvas: Pillow's default resize, divided by 255.

    ``canvas`` is uint8 white ink on black, and so is the result (float32 (size, size, 1)): the
    model's polarity block makes the black-on-white original equivalent.
    """
    resized = Image.fromarray(canvas).resize((size, size))
    return (np.asarray(resized, dtype=np.float32) / 255.0)[..., np.newaxis]


def render_pen_on_canvas(
    strokes: list, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """A drawing made with a random pen on a 256-pixel canvas, read by one of the two paths.

    The pen width is log-uniform in ``pen_relative_width`` of the drawing's longer side. With
    ``plain_resize_probability`` the canvas is read by ``plain_resize`` (the drawing takes a
    random share of the canvas, sometimes off-centre), else by ``to_model_input``.
    """
    canvas_size = 256
    fraction = float(rng.uniform(*config.drawing_fraction))
    plain = rng.random() < config.plain_resize_probability
    drawing_side = int(round(canvas_size * fraction)) if plain else canvas_size
    margin = 0.04
    pen = _log_uniform(config.pen_relative_width, rng) * drawing_side * (1 - 2 * margin)
    drawing = render_strokes(strokes, size=drawing_side, line_width=pen, margin=margin)
    if not plain:
        return to_model_input(drawing)
    canvas = np.zeros((canvas_size, canvas_size), np.uint8)
    room = canvas_size - drawing_side
    if rng.random() < config.off_centre_probability:
        top, left = (int(value) for value in rng.integers(0, room + 1, size=2))
    else:
        top = left = room // 2
    canvas[top : top + drawing_side, left : left + drawing_side] = drawing
    return plain_resize(canvas)


def restyle_raster(
    image: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """A model-input raster (uint8 (64, 64), white ink) redrawn with a thinner or thicker pen.

    Google's bitmaps all share one soft pen; users draw with any pen on a crisp canvas. At 256
    pixels (the size of a canvas) the raster is cut at half its peak into crisp ink, a flat
    min filter (negative kernel) or max filter (positive) thins or thickens it while keeping the
    shape, then it is read by ``to_model_input`` or by ``plain_resize`` like a canvas.
    """
    kernel = int(rng.choice(config.restyle_kernels))
    picture = Image.fromarray(image).resize((RESTYLE_SIZE, RESTYLE_SIZE), Image.Resampling.BILINEAR)
    crisp = np.where(np.asarray(picture) >= max(int(image.max()) // 2, 1), 255, 0).astype(np.uint8)
    morphology = ImageFilter.MinFilter if kernel < 0 else ImageFilter.MaxFilter
    array = np.asarray(Image.fromarray(crisp).filter(morphology(abs(kernel))), dtype=np.uint8)
    if array.max() < 32:
        # Thinning removed the drawing: keep the original look rather than a blank image.
        return image
    if rng.random() < config.plain_resize_probability:
        result = plain_resize(array)
    else:
        result = to_model_input(array)
    return np.round(result[..., 0] * 255.0).astype(np.uint8)


def _affine_coefficients(size: int, rng: np.random.Generator, config: AugmentConfig) -> tuple:
    """PIL's inverse affine coefficients for a random rotation, scale, shear and shift."""
    angle = math.radians(rng.uniform(-config.rotation_degrees, config.rotation_degrees))
    scale = rng.uniform(*config.scale_range)
    shear = rng.uniform(-config.shear, config.shear)
    shift = rng.uniform(-config.shift_pixels, config.shift_pixels, size=2)
    cos, sin = math.cos(angle), math.sin(angle)
    # Forward map (about the centre): rotation @ shear @ scale; PIL wants its inverse.
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) * scale
    inverse = np.linalg.inv(forward)
    centre = np.array([size / 2, size / 2])
    offset = centre - inverse @ (centre + shift)
    return (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])


def augment_image(
    image: np.ndarray, rng: np.random.Generator, config: AugmentConfig = AugmentConfig()
) -> np.ndarray:
    """Randomly jitter one model input (float32 (H, W, 1) in [0, 1]); returns the same shape."""
    size = image.shape[0]
    # 8-bit "L" because Pillow's blur only takes 8-bit images; 1/255 steps are finer than noise.
    picture = Image.fromarray(np.round(np.clip(image[..., 0], 0, 1) * 255).astype(np.uint8))
    picture = picture.transform(
        (size, size),
        Image.Transform.AFFINE,
        _affine_coefficients(size, rng, config),
        resample=Image.Resampling.BILINEAR,
    )
    if rng.random() < config.thicken_probability:
        picture = picture.filter(ImageFilter.MaxFilter(3))
    if rng.random() < config.blur_probability:
        picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(*config.blur_sigma))))
    array = np.asarray(picture, dtype=np.float32) / 255.0
    if rng.random() < config.sharpen_probability:
        # Upsampled 28x28 bitmaps have soft edges; a contrast stretch makes them render-crisp.
        array = (array - 0.15) * rng.uniform(1.5, 2.5)
    return np.clip(array, 0.0, 1.0)[..., np.newaxis]
