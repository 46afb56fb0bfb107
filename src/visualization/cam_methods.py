"""Class activation map formulas, batched over (N, h, w, K) activations and gradients.

Each function returns the raw (N, h, w) map before ReLU and normalisation. They are TensorFlow
ops so the engine can fuse them into its one compiled call.
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

GRADIENT_METHODS = ("gradcam", "gradcam++", "hirescam", "layercam", "xgradcam")
FORWARD_METHODS = ("scorecam", "eigencam")
METHODS = GRADIENT_METHODS + FORWARD_METHODS
# Guards divisions whose denominators can be exactly zero (dead channels, blank canvases).
EPSILON = 1e-7


def _safe_divide(numerator: Any, denominator: Any) -> Any:
    """numerator / denominator, and 0 where the denominator is exactly 0."""
    nonzero = denominator != 0.0
    safe = tf.where(nonzero, denominator, tf.ones_like(denominator))
    return tf.where(nonzero, numerator / safe, tf.zeros_like(numerator * safe))


def gradcam(activations: Any, gradients: Any) -> Any:
    """Grad-CAM: channel weights are the spatially averaged gradients."""
    # This is a vector where each entry is the mean intensity of the gradient over a channel.
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    # Weight every channel by how much it matters for the class, then sum the channels.
    return tf.reduce_sum(activations * weights, axis=-1)


def gradcam_plus_plus(activations: Any, gradients: Any) -> Any:
    """Grad-CAM++: per-position weights alpha, so several instances of a part all count."""
    squared = tf.square(gradients)
    cubed = squared * gradients
    # sum_ab A^k_ab, the channel's total activation, from the closed-form alpha of the paper.
    total = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
    denominator = 2.0 * squared + total * cubed
    # alpha is 0/0 where the gradient vanishes; define it as 0 there instead of adding an
    # epsilon, which would bias every weight whose gradients are small.
    alpha = _safe_divide(squared, denominator)
    # Only positive gradients count as evidence for the class.
    weights = tf.reduce_sum(alpha * tf.nn.relu(gradients), axis=(1, 2), keepdims=True)
    return tf.reduce_sum(activations * weights, axis=-1)


def hirescam(activations: Any, gradients: Any) -> Any:
    """HiResCAM: element-wise gradient times activation, so the map is faithful to the score."""
    return tf.reduce_sum(activations * gradients, axis=-1)


def layercam(activations: Any, gradients: Any) -> Any:
    """Layer-CAM: positive gradients weight each position separately (sharper in early layers)."""
    return tf.reduce_sum(activations * tf.nn.relu(gradients), axis=-1)


def xgradcam(activations: Any, gradients: Any) -> Any:
    """XGrad-CAM: gradients weighted by normalised activations (the axiom-derived weights)."""
    total = tf.reduce_sum(activations, axis=(1, 2), keepdims=True)
    # A dead channel (total activation 0) gets weight 0.
    weights = _safe_divide(
        tf.reduce_sum(gradients * activations, axis=(1, 2), keepdims=True), total
    )
    return tf.reduce_sum(activations * weights, axis=-1)


def eigencam(activations: Any) -> Any:
    """Eigen-CAM: projection of the activations on their first principal component.

    The sign of a singular vector is arbitrary, so it is chosen to agree with the summed
    activation (positive where the layer fires), which makes the map comparable across images.
    """
    shape = tf.shape(activations)
    flat = tf.reshape(activations, (shape[0], shape[1] * shape[2], shape[3]))
    centred = flat - tf.reduce_mean(flat, axis=1, keepdims=True)
    _, _, right = tf.linalg.svd(centred)
    projection = tf.linalg.matvec(centred, right[:, :, 0])
    agreement = tf.reduce_sum(projection * tf.reduce_sum(flat, axis=-1), axis=1, keepdims=True)
    projection = projection * tf.where(agreement < 0.0, -1.0, 1.0)
    return tf.reshape(projection, shape[:3])


GRADIENT_FORMULAS = {
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "hirescam": hirescam,
    "layercam": layercam,
    "xgradcam": xgradcam,
}


def normalise(raw_maps: Any, size: Any) -> Any:
    """ReLU, bilinear upsampling to ``size`` (height, width), per-image scaling to [0, 1].

    A map whose maximum is zero (blank canvas, all-negative evidence) stays all zeros, never NaN.
    """
    positive = tf.nn.relu(raw_maps)[..., tf.newaxis]
    upsampled = tf.image.resize(positive, size, method="bilinear")[..., 0]
    peak = tf.reduce_max(upsampled, axis=(1, 2), keepdims=True)
    safe_peak = tf.where(peak > EPSILON, peak, tf.ones_like(peak))
    return tf.where(peak > EPSILON, upsampled / safe_peak, tf.zeros_like(upsampled))
