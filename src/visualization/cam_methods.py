"""Class activation map methods: one object per method, one formula each, in NumPy.

A method turns a layer's activations (N, h, w, K), and for gradient methods the gradients of
the target score with respect to them, into raw (N, h, w) maps before ReLU and scaling.
``normalise`` then makes the (N, H, W) heatmaps in [0, 1] every interface shows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

# Guards the scaling of maps whose peak is (numerically) zero: blank canvases, dead layers.
EPSILON = 1e-7


@dataclass(frozen=True)
class CamInputs:
    """Everything a method may use for one batch.

    ``coefficients`` are each image's resolved target weights over the classes (the predicted
    class already one-hot); ``class_scores`` runs a forward pass and returns logits (N, C).
    """

    images: np.ndarray
    activations: np.ndarray
    gradients: np.ndarray | None
    coefficients: np.ndarray
    class_scores: Callable[[np.ndarray], np.ndarray]


def _safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, and 0 where the denominator is exactly 0."""
    result = np.zeros(np.broadcast(numerator, denominator).shape, np.float32)
    np.divide(numerator, denominator, out=result, where=denominator != 0.0)
    return result


def _weighted_sum(activations: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Sum over channels of activations times per-channel (N, K) or per-position weights."""
    if weights.ndim == 2:
        # (N, h, w, K) @ (N, 1, K, 1): one small product per image and row.
        return np.matmul(activations, weights[:, np.newaxis, :, np.newaxis])[..., 0]
    return (activations * weights).sum(axis=-1)


class CamMethod:
    """A CAM method: per-channel (N, K) or per-position (N, h, w, K) weights for a layer's
    activations; the raw map is their weighted sum over channels.

    A new method is one subclass with a ``name``, a one-line ``summary`` and ``weights``,
    decorated with ``@register``: ``METHODS``, the CLI's ``--method`` help, the web schema and
    the README's list all come from the registry.
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    needs_gradients: ClassVar[bool] = True

    @classmethod
    def create(cls, score_cam_batch_size: int = 64) -> CamMethod:
        """The method with the options it uses (most use none)."""
        return cls()

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """Weights of the activations' channels, (N, K) or (N, h, w, K)."""
        raise NotImplementedError

    def raw_maps(self, inputs: CamInputs) -> np.ndarray:
        """Raw (N, h, w) maps before ReLU and scaling."""
        return _weighted_sum(inputs.activations, self.weights(inputs))


REGISTRY: dict[str, type[CamMethod]] = {}


def register(method: type[CamMethod]) -> type[CamMethod]:
    """Class decorator: make ``method`` available under its ``name`` (once).

    Raises:
        ValueError: the name is already taken.
    """
    if method.name in REGISTRY:
        raise ValueError(f"CAM method {method.name!r} is registered twice")
    REGISTRY[method.name] = method
    return method


@register
class GradCam(CamMethod):
    """Grad-CAM: channel weights are the spatially averaged gradients."""

    name = "gradcam"
    summary = "spatially averaged gradients weight each channel"

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, K) mean gradient of each channel."""
        return inputs.gradients.mean(axis=(1, 2))


@register
class GradCamPlusPlus(CamMethod):
    """Grad-CAM++: per-position weights alpha, so several instances of a part all count."""

    name = "gradcam++"
    summary = "positive gradients weighted by the closed-form alpha"

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, K) weights from the paper's closed-form alpha."""
        gradients = inputs.gradients
        squared = gradients * gradients
        total = inputs.activations.sum(axis=(1, 2), keepdims=True)
        # alpha is 0/0 where the gradient vanishes; it is defined as 0 there instead of adding
        # an epsilon, which would bias every weight whose gradients are small.
        alpha = _safe_divide(squared, 2.0 * squared + total * squared * gradients)
        # Only positive gradients count as evidence for the class.
        return (alpha * np.maximum(gradients, 0.0)).sum(axis=(1, 2))


@register
class HiResCam(CamMethod):
    """HiResCAM: element-wise gradient times activation, so the map is faithful to the score."""

    name = "hirescam"
    summary = "element-wise gradient times activation"

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, h, w, K) the gradients themselves."""
        return inputs.gradients


@register
class LayerCam(CamMethod):
    """Layer-CAM: positive gradients weight each position separately (sharper in early layers)."""

    name = "layercam"
    summary = "positive gradients weight each position"

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, h, w, K) positive gradients."""
        return np.maximum(inputs.gradients, 0.0)


@register
class XGradCam(CamMethod):
    """XGrad-CAM: gradients weighted by normalised activations (the axiom-derived weights)."""

    name = "xgradcam"
    summary = "gradients weighted by normalised activations"

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, K) weights; a dead channel (total activation 0) gets weight 0."""
        totals = inputs.activations.sum(axis=(1, 2))
        weighted = (inputs.gradients * inputs.activations).sum(axis=(1, 2))
        return _safe_divide(weighted, totals)


@register
@dataclass(frozen=True)
class ScoreCam(CamMethod):
    """Score-CAM: each channel, scaled to [0, 1], masks the input; the target's score on the
    masked image, softmaxed over the channels, is the channel's weight.

    ``batch_size`` masked images go through one forward pass (the memory knob).
    """

    batch_size: int = 64
    name = "scorecam"
    summary = "scores of the input masked by each channel (slow, no gradients)"
    needs_gradients = False

    @classmethod
    def create(cls, score_cam_batch_size: int = 64) -> CamMethod:
        """Score-CAM with its batch size.

        Raises:
            ValueError: a batch size below 1.
        """
        if score_cam_batch_size < 1:
            raise ValueError(f"score_cam_batch_size must be positive, got {score_cam_batch_size}")
        return cls(score_cam_batch_size)

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, K) weights from K masked forward passes per image."""
        if self.batch_size < 1:
            raise ValueError(f"score_cam_batch_size must be positive, got {self.batch_size}")
        activations = inputs.activations
        upsampled = upsample(np.moveaxis(activations, -1, 1), inputs.images.shape[1:3])
        low = upsampled.min(axis=(2, 3), keepdims=True)
        span = upsampled.max(axis=(2, 3), keepdims=True) - low
        masks = _safe_divide(upsampled - low, span)  # (N, K, H, W)
        weights = []
        for index in range(len(activations)):
            masked = inputs.images[index][np.newaxis] * masks[index][..., np.newaxis]
            scores = np.concatenate(
                [
                    inputs.class_scores(masked[start : start + self.batch_size])
                    for start in range(0, len(masked), self.batch_size)
                ]
            ) @ inputs.coefficients[index].astype(np.float64)
            # A softmax over the channels' scores turns them into weights that sum to one.
            softmax = np.exp(scores - scores.max())
            weights.append((softmax / softmax.sum()).astype(np.float32))
        return np.stack(weights)

    def raw_maps(self, inputs: CamInputs) -> np.ndarray:
        """Raw (N, h, w) maps, one image at a time (each image is K masked passes anyway)."""
        weights = self.weights(inputs)
        maps = [activations @ row for activations, row in zip(inputs.activations, weights)]
        return np.stack(maps).astype(np.float32)


@register
class EigenCam(CamMethod):
    """Eigen-CAM: projection of the activations on their first principal component.

    The sign of a singular vector is arbitrary, so it is chosen to agree with the summed
    activation (positive where the layer fires), which makes maps comparable across images.
    """

    name = "eigencam"
    summary = "first principal component of the activations (class-agnostic, no gradients)"
    needs_gradients = False

    def weights(self, inputs: CamInputs) -> np.ndarray:
        """(N, K) the signed first principal direction of each image's activations."""
        return self._projection(inputs)[1]

    def raw_maps(self, inputs: CamInputs) -> np.ndarray:
        """Raw (N, h, w) maps: the centred activations projected on ``weights``."""
        return self._projection(inputs)[0]

    @staticmethod
    def _projection(inputs: CamInputs) -> tuple[np.ndarray, np.ndarray]:
        """(maps (N, h, w), signed directions (N, K)) of the centred activations."""
        activations = inputs.activations.astype(np.float64)
        count, height, width, channels = activations.shape
        flat = activations.reshape(count, height * width, channels)
        centred = flat - flat.mean(axis=1, keepdims=True)
        _, _, right = np.linalg.svd(centred, full_matrices=False)
        direction = right[:, 0, :]
        projection = np.einsum("npk,nk->np", centred, direction)
        agreement = (projection * flat.sum(axis=-1)).sum(axis=1, keepdims=True)
        sign = np.where(agreement < 0.0, -1.0, 1.0)
        maps = (sign * projection).reshape(count, height, width).astype(np.float32)
        return maps, (sign * direction).astype(np.float32)


Method = CamMethod

DEFAULT_METHOD = "gradcam"
METHODS = tuple(REGISTRY)
GRADIENT_METHODS = tuple(name for name, method in REGISTRY.items() if method.needs_gradients)
FORWARD_METHODS = tuple(name for name, method in REGISTRY.items() if not method.needs_gradients)


def method_named(name: str, score_cam_batch_size: int = 64) -> CamMethod:
    """The method object for a name in ``METHODS``.

    Raises:
        ValueError: for an unknown name or a Score-CAM batch size below 1.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return REGISTRY[name].create(score_cam_batch_size)


def methods_help() -> str:
    """The methods as one sentence for help texts: the default first-marked, in order."""
    names = [f"{name} (default)" if name == DEFAULT_METHOD else name for name in METHODS]
    return ", ".join(names[:-1]) + " or " + names[-1]


@functools.lru_cache(maxsize=32)
def _resize_matrix(source: int, target: int) -> np.ndarray:
    """(target, source) linear interpolation weights with half-pixel centres, edges clamped
    (the convention of tf.image.resize, jax.image.resize and torch's align_corners=False)."""
    position = np.clip((np.arange(target) + 0.5) * source / target - 0.5, 0.0, source - 1)
    lower = np.floor(position).astype(np.intp)
    upper = np.minimum(lower + 1, source - 1)
    fraction = (position - lower).astype(np.float32)
    matrix = np.zeros((target, source), np.float32)
    np.add.at(matrix, (np.arange(target), lower), 1.0 - fraction)
    np.add.at(matrix, (np.arange(target), upper), fraction)
    matrix.setflags(write=False)  # shared through the cache
    return matrix


def upsample(maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """Bilinear resize of the last two axes of ``maps`` (..., h, w) to ``size`` (H, W)."""
    rows = _resize_matrix(maps.shape[-2], int(size[0]))
    columns = _resize_matrix(maps.shape[-1], int(size[1]))
    # Batched products of small matrices, one map at a time, not one contraction over the whole
    # batch: that one goes to the threaded BLAS, whose threads start while TensorFlow's pool
    # (which has just computed the maps) still spins, and the two fight over the cores.
    return rows @ (maps.astype(np.float32) @ columns.T)


def normalise(raw_maps: np.ndarray, size: tuple[int, ...]) -> np.ndarray:
    """ReLU, bilinear upsampling to ``size`` (height, width), per-image scaling to [0, 1].

    A map whose maximum is zero (blank canvas, all-negative evidence) stays all zeros, never NaN.
    """
    upsampled = upsample(np.maximum(raw_maps, 0.0), size)
    peak = upsampled.max(axis=(1, 2), keepdims=True)
    # One reciprocal per map, then one in-place multiply over the pixels (a division per pixel
    # costs more at large batches); a flat map gets the factor 0.
    upsampled *= np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > EPSILON)
    return upsampled
