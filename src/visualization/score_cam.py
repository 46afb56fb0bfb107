"""Score-CAM: channel weights from masked forward passes instead of gradients."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def score_cam_maps(
    class_scores: Callable[[np.ndarray, np.ndarray], Any],
    batch: np.ndarray,
    activations: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
) -> np.ndarray:
    """Raw Score-CAM maps: each channel weighted by the class logit of the image it masks.

    Args:
        class_scores: compiled (images, class_indices) -> logit of each image's class.
        batch: the inputs (N, H, W, C).
        activations: the target layer's activations (N, h, w, K).
        targets: the class explained for each image (N,).
        batch_size: masked images per forward pass (the memory knob).

    Returns:
        float32 (N, h, w) maps before ReLU and normalisation.
    """
    import tensorflow as tf

    channels = activations.shape[-1]
    upsampled = tf.image.resize(activations, batch.shape[1:3], method="bilinear").numpy()
    low = upsampled.min(axis=(1, 2), keepdims=True)
    high = upsampled.max(axis=(1, 2), keepdims=True)
    # Each channel, scaled to [0, 1], becomes a soft mask over the input.
    masks = (upsampled - low) / np.where(high - low > 0, high - low, 1.0)
    raw_maps = []
    for index in range(len(batch)):
        masked = batch[index][np.newaxis] * np.moveaxis(masks[index], -1, 0)[..., np.newaxis]
        scores = np.concatenate(
            [
                np.asarray(
                    class_scores(
                        masked[start : start + batch_size],
                        np.full(len(masked[start : start + batch_size]), targets[index], np.int64),
                    )
                )
                for start in range(0, channels, batch_size)
            ]
        )
        # A softmax over the channels' scores turns them into weights that sum to one.
        weights = np.exp(scores - scores.max())
        weights /= weights.sum()
        raw_maps.append(np.tensordot(activations[index], weights, axes=([-1], [0])))
    return np.stack(raw_maps).astype(np.float32)
