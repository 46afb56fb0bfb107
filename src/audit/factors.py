"""Nuisance factors and the renderer: a drawing as a user's paint program would show it.

A ``RenderSpec`` fixes every factor (canvas size, pen width, drawing size and place, rotation,
jitter, stroke order); ``FACTORS`` varies one factor at a time around ``REFERENCE``. Drawings are
rendered black on white with a round pen (Pillow ``ImageDraw``, no anti-aliasing, like a plain
paint program), and every rendering comes with the affine map from the drawing's own
coordinates to canvas pixels, so Grad-CAM maps of different renderings can be compared in the
drawing's frame (``src.audit.alignment``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

# At fill 1.0 the drawing's longer side (stroke centre lines) spans this share of the canvas:
# room on each side for half of the thickest pen (1/8 of the drawing).
FULL_FILL = 0.84
# A drawing placed in the corner keeps this share of the canvas from the top and left edges.
CORNER_MARGIN = 0.08
ORDERS = ("original", "reversed", "shuffled")
PLACES = ("centre", "corner")


@dataclass(frozen=True)
class RenderSpec:
    """One rendering condition.

    Attributes:
        canvas: canvas side in pixels.
        pen: pen width as a fraction of the drawing's longer side.
        fill: the drawing's longer side relative to a drawing that fills the canvas.
        place: "centre" or "corner" (top-left).
        rotation: degrees, clockwise on screen, about the drawing's centre.
        jitter: standard deviation of gaussian point noise, as a fraction of the longer side.
        order: stroke order, "original", "reversed" or "shuffled".
    """

    canvas: int = 256
    pen: float = 1 / 20
    fill: float = 1.0
    place: str = "centre"
    rotation: float = 0.0
    jitter: float = 0.0
    order: str = "original"


@dataclass(frozen=True)
class Level:
    """One level of a factor: a label for reports and the spec that renders it."""

    label: str
    value: float
    spec: RenderSpec


@dataclass(frozen=True)
class Factor:
    """A nuisance factor: its levels (one of them renders ``REFERENCE``) and what it varies."""

    name: str
    description: str
    levels: tuple[Level, ...]

    @property
    def reference_label(self) -> str | None:
        """The label of the level that renders ``REFERENCE`` (None if no level does)."""
        return next((level.label for level in self.levels if level.spec == REFERENCE), None)


REFERENCE = RenderSpec()


def _levels(pairs: list[tuple[str, float, dict[str, object]]]) -> tuple[Level, ...]:
    return tuple(
        Level(label, value, replace(REFERENCE, **changes))  # type: ignore[arg-type]
        for label, value, changes in pairs
    )


FACTORS: tuple[Factor, ...] = (
    Factor(
        "pen_width",
        "pen width / the drawing's longer side; the drawing fills a 256 px canvas",
        _levels(
            [
                (f"1/{d}", 1 / d, {"pen": 1 / d})
                for d in (64, 40, 28, 20, 14, 10, 8)  # 1/20: the reference
            ]
        ),
    ),
    Factor(
        "canvas_size",
        "canvas side in pixels; the drawing fills it, pen 1/20 of the drawing",
        _levels([(str(size), size, {"canvas": size}) for size in (256, 384, 512, 768, 1024)]),
    ),
    Factor(
        "size_position",
        "drawing size (share of a full-canvas drawing) and place on a 256 px canvas; "
        "pen 1/20 of the drawing",
        _levels(
            [
                ("100% centre", 1.0, {}),
                ("70% centre", 0.7, {"fill": 0.7}),
                ("40% centre", 0.4, {"fill": 0.4}),
                ("40% corner", 0.4, {"fill": 0.4, "place": "corner"}),
            ]
        ),
    ),
    Factor(
        "rotation",
        "rotation in degrees about the drawing's centre",
        _levels([(f"{angle:g}", angle, {"rotation": angle}) for angle in (-15, -8, 0, 8, 15)]),
    ),
    Factor(
        "jitter",
        "gaussian noise on every point, standard deviation / the drawing's longer side",
        _levels([(f"{sigma:.1%}", sigma, {"jitter": sigma}) for sigma in (0.0, 0.005, 0.01, 0.02)]),
    ),
    Factor(
        "stroke_order",
        "order in which the strokes are drawn (a raster model must not see it)",
        _levels([(order, index, {"order": order}) for index, order in enumerate(ORDERS)]),
    ),
)


@dataclass(frozen=True)
class Rendering:
    """A canvas (uint8, black ink 0 on white 255) and the drawing-to-canvas affine map.

    ``matrix`` (2, 2) and ``offset`` (2,) map a point (x, y) of the drawing's coordinates to
    continuous canvas coordinates (x, y), pixel k spanning [k, k + 1).
    """

    canvas: np.ndarray
    matrix: np.ndarray
    offset: np.ndarray


def drawing_points(strokes: list[list[list[float]]]) -> list[np.ndarray]:
    """Strokes ``[[xs, ys(, ts)], ...]`` as float64 arrays (2, n)."""
    return [np.asarray(stroke[:2], dtype=np.float64) for stroke in strokes]


def render(
    strokes: list[np.ndarray], spec: RenderSpec, generator: np.random.Generator
) -> Rendering:
    """Render one drawing (arrays (2, n) from ``drawing_points``) under ``spec``.

    Args:
        strokes: the drawing's strokes in its own coordinates.
        spec: the rendering condition.
        generator: source of the jitter and the shuffled order.

    Returns:
        The canvas and its drawing-to-canvas map (the map of the points before jitter).
    """
    points = np.concatenate(strokes, axis=1)
    low, high = points.min(axis=1), points.max(axis=1)
    centre = (low + high) / 2
    longer = float((high - low).max()) or 1.0
    angle = math.radians(spec.rotation)
    # y grows downwards on screen, so this matrix turns the drawing clockwise for angle > 0.
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    moved = rotation @ (points - centre[:, None])
    if spec.jitter > 0:
        moved = moved + generator.normal(0.0, spec.jitter * longer, moved.shape)
    moved_low = moved.min(axis=1)
    extent = moved.max(axis=1) - moved_low
    target = spec.fill * FULL_FILL * spec.canvas
    scale = target / (float(extent.max()) or 1.0)
    if spec.place == "corner":
        corner = np.full(2, CORNER_MARGIN * spec.canvas)
    else:
        corner = (spec.canvas - extent * scale) / 2
    canvas_points = (moved - moved_low[:, None]) * scale + corner[:, None]
    pen = max(1, round(spec.pen * target))
    image = Image.new("L", (spec.canvas, spec.canvas), 255)
    draw = ImageDraw.Draw(image)
    bounds = np.cumsum([stroke.shape[1] for stroke in strokes])[:-1]
    pieces = np.split(canvas_points, bounds, axis=1)
    order = _stroke_order(len(pieces), spec.order, generator)
    radius = pen / 2
    for index in order:
        flat = pieces[index].T.ravel().tolist()
        if len(flat) > 2:
            # One C call for the segments; Pillow's own round joints cost several Python calls
            # per vertex, so the joints and caps are the discs below instead.
            draw.line(flat, fill=0, width=pen)
        if pen > 2:
            # A round pen: a disc at every vertex gives round joins and caps.
            for x, y in zip(flat[0::2], flat[1::2]):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=0)
        else:
            draw.point(flat, fill=0)
    matrix = scale * rotation
    # Pillow paints integer coordinate k into pixel k, whose centre is k + 0.5.
    offset = corner - scale * moved_low - matrix @ centre + 0.5
    return Rendering(np.asarray(image), matrix, offset)


def _stroke_order(count: int, order: str, generator: np.random.Generator) -> np.ndarray:
    """Indices of the strokes in drawing order."""
    if order == "reversed":
        return np.arange(count)[::-1]
    if order == "shuffled":
        return generator.permutation(count)
    return np.arange(count)
