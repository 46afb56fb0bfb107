"""Write the shipped sample sketches: hand-authored stroke lists -> samples/<class>.ndjson + .png.

Each drawing below was written for this project (no Quick, Draw! data is copied). Coordinates
use Google's simplified convention (0..255, y down). Run from the repository root:

    python scripts/make_samples.py
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np
from PIL import Image

from src.config import SAMPLES_DIR
from src.data.raster import render_strokes

Stroke = list[list[int]]


def arc(
    cx: float, cy: float, rx: float, ry: float, start: float, end: float, points: int = 16
) -> Stroke:
    """An elliptical arc from angle start to end (degrees, 0 = right, 90 = down)."""
    angles = np.radians(np.linspace(start, end, points))
    xs = [round(cx + rx * math.cos(a)) for a in angles]
    ys = [round(cy + ry * math.sin(a)) for a in angles]
    return [xs, ys]


def line(*points: tuple[int, int]) -> Stroke:
    """A polyline through the given (x, y) points."""
    return [[x for x, _ in points], [y for _, y in points]]


DRAWINGS: dict[str, list[Stroke]] = {
    "smiley face": [
        arc(128, 128, 110, 110, 0, 360, 28),
        arc(90, 95, 8, 10, 0, 360, 8),
        arc(166, 95, 8, 10, 0, 360, 8),
        arc(128, 140, 60, 45, 20, 160, 12),
    ],
    "snowman": [
        arc(128, 190, 62, 58, 0, 360, 24),
        arc(128, 95, 45, 42, 0, 360, 20),
        arc(128, 32, 30, 28, 0, 360, 16),
        line((70, 95), (20, 60)),
        line((186, 95), (236, 60)),
        line((100, 5), (156, 5)),
    ],
    "house": [
        line((40, 110), (40, 240), (216, 240), (216, 110)),
        line((25, 120), (128, 20), (231, 120)),
        line((110, 240), (110, 175), (150, 175), (150, 240)),
        line((60, 135), (95, 135), (95, 165), (60, 165), (60, 135)),
    ],
    "apple": [
        arc(128, 150, 95, 90, -70, 250, 28),
        line((128, 70), (135, 25)),
        line((138, 45), (170, 20), (195, 35), (160, 55), (138, 45)),
    ],
    "fish": [
        line((30, 128), (80, 80), (150, 70), (200, 128), (150, 185), (80, 175), (30, 128)),
        line((200, 128), (250, 85), (245, 175), (200, 128)),
        arc(70, 115, 6, 6, 0, 360, 8),
    ],
    "diamond": [
        line((60, 40), (196, 40), (245, 95), (128, 240), (10, 95), (60, 40)),
        line((10, 95), (245, 95)),
        line((60, 40), (95, 95), (128, 240), (160, 95), (196, 40)),
    ],
    "eye": [
        arc(128, 150, 120, 75, 180, 360, 18),
        arc(128, 100, 120, 75, 0, 180, 18),
        arc(128, 125, 35, 35, 0, 360, 16),
        arc(128, 125, 12, 12, 0, 360, 8),
    ],
    "rainbow": [
        arc(128, 200, 120, 120, 180, 360, 20),
        arc(128, 200, 95, 95, 180, 360, 18),
        arc(128, 200, 70, 70, 180, 360, 16),
        arc(128, 200, 45, 45, 180, 360, 12),
    ],
    "banana": [
        arc(150, 60, 130, 150, 100, 200, 16),
        arc(150, 60, 95, 115, 100, 190, 14),
        line((125, 208), (128, 212)),
        line((30, 25), (22, 8), (38, 5)),
    ],
    "cake": [
        line((30, 130), (30, 230), (226, 230), (226, 130)),
        arc(128, 130, 98, 22, 0, 360, 22),
        line((30, 180), (226, 180)),
        line((128, 108), (128, 60)),
        line((128, 60), (118, 45), (128, 25), (138, 45), (128, 60)),
    ],
    "necklace": [
        arc(128, 60, 100, 130, 10, 170, 24),
        arc(128, 205, 22, 30, 0, 360, 12),
    ],
    "power outlet": [
        line((20, 20), (236, 20), (236, 236), (20, 236), (20, 20)),
        line((85, 80), (85, 130)),
        line((171, 80), (171, 130)),
        arc(128, 180, 18, 18, 180, 360, 10),
    ],
    "book": [
        line((128, 50), (128, 230)),
        line((128, 50), (70, 30), (10, 45), (10, 225), (70, 210), (128, 230)),
        line((128, 50), (186, 30), (246, 45), (246, 225), (186, 210), (128, 230)),
    ],
    "flower": [
        arc(128, 90, 22, 22, 0, 360, 12),
        arc(128, 40, 22, 30, 0, 360, 12),
        arc(128, 140, 22, 30, 0, 360, 12),
        arc(78, 90, 30, 22, 0, 360, 12),
        arc(178, 90, 30, 22, 0, 360, 12),
        line((128, 170), (128, 250)),
        line((128, 215), (95, 190)),
    ],
}

# Pen width for the 256x256 PNGs, in pixels: about 1/20 of the drawing, the thickness Quick, Draw!
# renders at: much thinner pens make sketches the model was not trained to see.
PNG_LINE_WIDTH = 12.0


def main() -> int:
    """Write one ndjson line and one 256x256 black-on-white PNG per drawing."""
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    for word, strokes in DRAWINGS.items():
        stem = word.replace(" ", "_")
        record = {
            "word": word,
            "countrycode": "XX",
            "recognized": True,
            "key_id": f"sketchcam-sample-{stem}",
            "drawing": strokes,
        }
        (SAMPLES_DIR / f"{stem}.ndjson").write_text(json.dumps(record) + "\n", encoding="utf-8")
        ink = render_strokes(strokes, size=256, line_width=PNG_LINE_WIDTH, margin=0.08)
        Image.fromarray(255 - ink).save(SAMPLES_DIR / f"{stem}.png")
    sys.stdout.write(f"wrote {len(DRAWINGS)} samples to {SAMPLES_DIR}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
