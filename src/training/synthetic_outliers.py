"""Synthetic outlier drawings built from known ones, for outlier exposure.

The real outlier categories hold only a few thousand drawings. Two cheap generators add "pieces of
known things, but not a known thing": a *scramble* moves and turns each stroke of one drawing on
its own, so its parts keep their look but lose their arrangement, and a *chimera* puts two
drawings of different classes side by side. Trained towards "none of these", they teach the model
that familiar strokes alone are no reason to be sure.
"""

from __future__ import annotations

import math

import numpy as np

# A stroke moves by up to this share of the drawing's longer side, in x and in y.
SCRAMBLE_SHIFT = 0.45
# And turns by up to this many degrees about its own centre.
SCRAMBLE_DEGREES = 120.0
# A scramble needs this many strokes; fewer keep the drawing's shape and are made chimeras.
SCRAMBLE_MIN_STROKES = 3


def _as_points(strokes: list) -> list[np.ndarray]:
    """Each stroke as float (2, N) [xs, ys], any extra rows (times) dropped."""
    return [np.asarray(stroke[:2], dtype=np.float64) for stroke in strokes]


def _corner_and_size(points: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """The drawing's lower corner (2, 1) and its longer side (at least 1, so a dot scales)."""
    every = np.concatenate(points, axis=1)
    return every.min(axis=1, keepdims=True), float(max(np.ptp(every[0]), np.ptp(every[1]), 1.0))


def _as_strokes(points: list[np.ndarray]) -> list:
    """Float (2, N) arrays back to Quick, Draw!'s ``[[xs, ys], ...]`` lists."""
    return [[row.tolist() for row in stroke] for stroke in points]


def scramble_strokes(strokes: list, rng: np.random.Generator) -> list:
    """Each stroke of ``strokes`` moved and turned on its own (a rigid motion per stroke).

    Every stroke keeps its shape and length; only where it lies relative to the others changes.
    """
    points = _as_points(strokes)
    _, extent = _corner_and_size(points)
    moved = []
    for stroke in points:
        angle = math.radians(rng.uniform(-SCRAMBLE_DEGREES, SCRAMBLE_DEGREES))
        rotation = np.array(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        )
        centre = stroke.mean(axis=1, keepdims=True)
        shift = rng.uniform(-SCRAMBLE_SHIFT, SCRAMBLE_SHIFT, size=(2, 1)) * extent
        moved.append(rotation @ (stroke - centre) + centre + shift)
    return _as_strokes(moved)


def chimera(first: list, second: list, rng: np.random.Generator) -> list:
    """``first`` and ``second`` scaled to the same size and placed side by side (or stacked).

    Both keep every stroke; ``second`` is offset by one drawing's width (or height) less a random
    overlap of up to a third, so the two halves touch without hiding each other.
    """
    parts = []
    for drawing in (first, second):
        points = _as_points(drawing)
        low, scale = _corner_and_size(points)
        parts.append([(stroke - low) / scale * 255.0 for stroke in points])
    axis = int(rng.integers(2))
    offset = np.zeros((2, 1))
    offset[axis] = 255.0 * (1.0 - rng.uniform(0.0, 1 / 3))
    return _as_strokes(parts[0] + [stroke + offset for stroke in parts[1]])


def make_synthetic_outliers(drawings: list, labels: list[int], count: int, seed: int) -> list[list]:
    """``count`` synthetic outliers from known ``drawings`` (with their class ``labels``).

    Alternates scrambles and chimeras; a drawing with fewer than ``SCRAMBLE_MIN_STROKES``
    strokes is paired into a chimera instead, and a chimera's partner is always of another class.
    Returns ``[]`` when there are no drawings, or only one class for a chimera to pair.
    """
    labels_array = np.asarray(labels)
    if count <= 0 or len(drawings) == 0 or len(np.unique(labels_array)) < 2:
        return []
    rng = np.random.default_rng([seed, 7])
    made: list[list] = []
    while len(made) < count:
        index = int(rng.integers(len(drawings)))
        drawing = drawings[index]
        if len(made) % 2 == 0 and len(drawing) >= SCRAMBLE_MIN_STROKES:
            made.append(scramble_strokes(drawing, rng))
            continue
        others = np.flatnonzero(labels_array != labels_array[index])
        partner = drawings[int(rng.choice(others))]
        made.append(chimera(drawing, partner, rng))
    return made
