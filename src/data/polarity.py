"""Which way round a sketch is drawn: dark ink on light paper, or light ink on dark.

The one rule: a sketch is mostly paper, so the paper's brightness is the median of the image's
border, and paper at or above ``LIGHT_PAPER`` is light (a PNG sketch) while paper below it is
dark (Quick, Draw! bitmaps and the model's own input, white ink on black).
"""

from __future__ import annotations

import numpy as np

# Paper at or above this brightness (in [0, 1]) is light paper carrying dark ink.
LIGHT_PAPER = 0.5


def paper_levels(images: np.ndarray) -> np.ndarray:
    """The paper brightness of each image (..., H, W): the median of its border pixels."""
    array = np.asarray(images)
    border = np.concatenate(
        [array[..., 0, :], array[..., -1, :], array[..., :, 0], array[..., :, -1]], axis=-1
    )
    return np.median(border, axis=-1)


def on_light_paper(images: np.ndarray) -> np.ndarray:
    """Whether each image (..., H, W) is dark ink on light paper (bool, one per image)."""
    return paper_levels(images) >= LIGHT_PAPER
