"""How far two models agree: on answers (McNemar's test) and on where they look (rank correlation).

Also how much of a map's heat lies on the drawing rather than on blank canvas ("ink share"), the
measure behind flagging a model that learned background artifacts. Arrays in, numbers out.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageFilter

from src.data.preprocess import INK_THRESHOLD
from src.explain.faithfulness import spearman


def rank_correlation(first: np.ndarray, second: np.ndarray) -> float | None:
    """Spearman correlation of two maps, or None when either is constant (no ranking exists).

    A blank map (a Grad-CAM of all zeros) carries no ordering of pixels, so a correlation with it
    is undefined rather than 0; callers leave such pairs out of their means.
    """
    first, second = np.asarray(first), np.asarray(second)
    if np.ptp(first) == 0 or np.ptp(second) == 0:
        return None
    return spearman(first, second)


def mcnemar_exact(first_only: int, second_only: int) -> float:
    """Two-sided exact McNemar p-value: a binomial test of the discordant pairs at p = 1/2.

    Computed with integer binomial coefficients (``math.comb``), exact for any count; for small
    discordant counts the chi-square approximation of the classical test is unreliable.

    Args:
        first_only: inputs only the first model got right.
        second_only: inputs only the second model got right.

    Returns:
        The p-value in [0, 1]; 1.0 when there are no discordant inputs.

    Raises:
        ValueError: for negative counts.
    """
    if first_only < 0 or second_only < 0:
        raise ValueError(f"counts must be non-negative, got {first_only} and {second_only}")
    discordant = first_only + second_only
    smaller = min(first_only, second_only)
    tail = sum(math.comb(discordant, k) for k in range(smaller + 1))
    # Integer numerator and denominator: Python divides them exactly before rounding to float.
    return min(1.0, 2 * tail / 2**discordant)


def near_ink_masks(images: np.ndarray, radius: int) -> np.ndarray:
    """Boolean (N, H, W): pixels within ``radius`` pixels of ink (model inputs, white ink).

    Args:
        images: model inputs (N, H, W, 1) or (N, H, W) in [0, 1].
        radius: how far around a stroke still counts as "on the drawing" (0: the ink itself).
    """
    ink = np.asarray(images, np.float32).reshape(len(images), *np.shape(images)[1:3])
    masks = ink > INK_THRESHOLD
    if radius < 1:
        return masks
    # A square max filter is a dilation; Pillow's is written in C and takes 8-bit images.
    dilate = ImageFilter.MaxFilter(2 * radius + 1)
    return np.stack(
        [
            np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).filter(dilate)) > 0
            for mask in masks
        ]
    )


def ink_shares(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Share of each map's heat that falls inside its mask, float64 (N,); NaN for a blank map."""
    heat = np.asarray(heatmaps, np.float64).reshape(len(heatmaps), -1)
    inside = (heat * masks.reshape(len(masks), -1)).sum(axis=1)
    total = heat.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, inside / np.where(total > 0, total, 1.0), np.nan)


def ink_share(heatmap: np.ndarray, image: np.ndarray) -> float:
    """Share of one map's heat (H, W) on its sketch's ink (model-input pixels above
    ``INK_THRESHOLD``); NaN for a blank map."""
    heat = np.asarray(heatmap)
    masks = near_ink_masks(np.reshape(image, (1, *heat.shape)), radius=0)
    return float(ink_shares(heat[np.newaxis], masks)[0])


def resize_maps(heatmaps: np.ndarray, size: int) -> np.ndarray:
    """Maps (N, H, W) brought to (N, size, size) with bilinear resampling (a no-op at the size).

    Models with different input sizes see the same sketch fitted to the same relative frame
    (``to_model_input``), so resizing their maps to one grid lines them up pixel for pixel.
    """
    maps = np.asarray(heatmaps, np.float32)
    if maps.shape[1:] == (size, size):
        return maps
    return np.stack(
        [
            np.asarray(
                Image.fromarray(heatmap, mode="F").resize((size, size), Image.Resampling.BILINEAR),
                np.float32,
            )
            for heatmap in maps
        ]
    )
