"""Gradients of class scores with respect to a layer's activations, on the running Keras backend.

Each backend has one small function that compiles the same computation with its own autodiff:
TensorFlow ``GradientTape`` inside ``tf.function``, JAX ``jax.grad`` under ``jax.jit`` over
``stateless_call``, PyTorch autograd. ``compile_cam`` picks one by ``keras.backend.backend()``.
Everything they share is written with ``keras.ops``; everything above them is NumPy.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from src.visualization.capture import SlicedModel


@dataclass(frozen=True)
class CompiledCam:
    """The compiled computations a CAM needs, NumPy in and out.

    ``attributions(images, coefficients, predicted)`` returns (activations, gradients, scores,
    outputs): the gradient is of ``sum(scores * coefficients)`` per image, with the row of an
    image whose ``predicted`` flag is set replaced by the one-hot of its top score.
    ``forward(images)`` returns (activations, scores, outputs) without gradients.
    """

    attributions: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, ...]]
    forward: Callable[[np.ndarray], tuple[np.ndarray, ...]]


def _logits(raw_scores: Any, affine: tuple[Any, Any | None] | None) -> Any:
    """The class scores; for a Dense layer with fused softmax, its affine part redone."""
    from keras import ops

    if affine is None:
        return raw_scores
    kernel, bias = affine
    scores = ops.matmul(raw_scores, kernel)
    return scores if bias is None else scores + bias


def _selected(scores: Any, coefficients: Any, predicted: Any) -> Any:
    """Each image's target score: its scores weighted by its target's coefficients."""
    from keras import ops

    top = ops.one_hot(ops.argmax(scores, axis=-1), ops.shape(scores)[-1], dtype=scores.dtype)
    weights = ops.where(ops.expand_dims(predicted, -1), top, coefficients)
    # One sum over the batch: images are independent, so each image's gradient is its own.
    return ops.sum(scores * weights)


def _pad(array: np.ndarray) -> np.ndarray:
    """``array`` padded with zero rows to the next power of two.

    ``jax.jit`` compiles once per input shape; a server's batches take every size from 1 to
    its maximum, and buckets keep that to a handful of compilations. Images are independent
    (inference mode), so the padding rows change nothing in the real ones.
    """
    count = len(array)
    size = 1 << max(count - 1, 0).bit_length()
    if size == count:
        return array
    return np.concatenate([array, np.zeros((size - count, *array.shape[1:]), array.dtype)])


def _tensorflow(sliced: SlicedModel, input_shape: tuple[Any, ...], classes: int) -> CompiledCam:
    """TensorFlow: ``GradientTape`` inside one ``tf.function`` per computation."""
    import tensorflow as tf

    def call(model: Any, tensor: Any) -> Any:
        return model(tensor, training=False)

    image_spec = tf.TensorSpec((None, *input_shape), tf.float32)
    coefficient_spec = tf.TensorSpec((None, classes), tf.float32)
    flag_spec = tf.TensorSpec((None,), tf.bool)

    @tf.function(input_signature=[image_spec, coefficient_spec, flag_spec])
    def attributions(images: Any, coefficients: Any, predicted: Any) -> tuple[Any, ...]:
        activations = sliced.activations(images, call)
        with tf.GradientTape() as tape:
            # Watching the activations keeps them on the tape whatever the weights' trainable
            # flags (a frozen backbone's variables are not watched).
            tape.watch(activations)
            raw, outputs = sliced.scores_and_outputs(activations, images, call)
            scores = _logits(raw, sliced.affine)
            selected = _selected(scores, coefficients, predicted)
        return activations, tape.gradient(selected, activations), scores, outputs

    @tf.function(input_signature=[image_spec])
    def forward(images: Any) -> tuple[Any, ...]:
        activations = sliced.activations(images, call)
        raw, outputs = sliced.scores_and_outputs(activations, images, call)
        return activations, _logits(raw, sliced.affine), outputs

    def to_numpy(function: Callable[..., Any]) -> Callable[..., tuple[np.ndarray, ...]]:
        return lambda *arrays: tuple(tensor.numpy() for tensor in function(*arrays))

    return CompiledCam(to_numpy(attributions), to_numpy(forward))


def _jax(sliced: SlicedModel) -> CompiledCam:
    """JAX: ``jax.grad`` of a pure function of the weights, ``jax.jit`` compiled."""
    import jax

    models = sliced.models

    def weights() -> tuple[Any, Any]:
        # Read on every call, so weights set after compiling are the ones used.
        values = [
            (
                [variable.value for variable in model.trainable_variables],
                [variable.value for variable in model.non_trainable_variables],
            )
            for model in models
        ]
        affine = None
        if sliced.affine is not None:
            kernel, bias = sliced.affine
            affine = (kernel.value, None if bias is None else bias.value)
        return values, affine

    # stateless_call hands its keywords straight to ``call``: only layers whose ``call`` takes
    # ``training`` (Dropout, BatchNorm, models) may be given it.
    takes_training = {
        id(model): "training" in inspect.signature(model.call).parameters for model in models
    }

    def caller(values: list[Any]) -> Callable[[Any, Any], Any]:
        by_model = {id(model): value for model, value in zip(models, values)}

        def call(model: Any, tensor: Any) -> Any:
            trainable, non_trainable = by_model[id(model)]
            options = {"training": False} if takes_training[id(model)] else {}
            outputs, _ = model.stateless_call(trainable, non_trainable, tensor, **options)
            return outputs

        return call

    def attributions(
        values: Any, affine: Any, images: Any, coefficients: Any, predicted: Any
    ) -> tuple[Any, ...]:
        call = caller(values)
        activations = sliced.activations(images, call)

        def objective(tensor: Any) -> tuple[Any, tuple[Any, Any]]:
            raw, outputs = sliced.scores_and_outputs(tensor, images, call)
            scores = _logits(raw, affine)
            return _selected(scores, coefficients, predicted), (scores, outputs)

        gradients, (scores, outputs) = jax.grad(objective, has_aux=True)(activations)
        return activations, gradients, scores, outputs

    def forward(values: Any, affine: Any, images: Any) -> tuple[Any, ...]:
        call = caller(values)
        activations = sliced.activations(images, call)
        raw, outputs = sliced.scores_and_outputs(activations, images, call)
        return activations, _logits(raw, affine), outputs

    compiled_attributions = jax.jit(attributions)
    compiled_forward = jax.jit(forward)

    def run_attributions(images: Any, coefficients: Any, predicted: Any) -> tuple[np.ndarray, ...]:
        values, affine = weights()
        count = len(images)
        padded = (_pad(images), _pad(coefficients), _pad(predicted))
        results = compiled_attributions(values, affine, *padded)
        return tuple(np.asarray(result)[:count] for result in results)

    def run_forward(images: Any) -> tuple[np.ndarray, ...]:
        values, affine = weights()
        results = compiled_forward(values, affine, _pad(images))
        return tuple(np.asarray(result)[: len(images)] for result in results)

    return CompiledCam(run_attributions, run_forward)


def _torch(sliced: SlicedModel) -> CompiledCam:
    """PyTorch: the stem without a graph, autograd through the head only."""
    import torch
    from keras import ops

    def call(model: Any, tensor: Any) -> Any:
        return model(tensor, training=False)

    def to_numpy(tensors: tuple[Any, ...]) -> tuple[np.ndarray, ...]:
        return tuple(tensor.detach().cpu().numpy() for tensor in tensors)

    def attributions(images: Any, coefficients: Any, predicted: Any) -> tuple[np.ndarray, ...]:
        images = ops.convert_to_tensor(images)
        with torch.no_grad():
            activations = sliced.activations(images, call)
        activations = activations.detach().requires_grad_(True)
        with torch.enable_grad():
            raw, outputs = sliced.scores_and_outputs(activations, images, call)
            scores = _logits(raw, sliced.affine)
            selected = _selected(
                scores, ops.convert_to_tensor(coefficients), ops.convert_to_tensor(predicted)
            )
            (gradients,) = torch.autograd.grad(selected, activations)
        return to_numpy((activations, gradients, scores, outputs))

    def forward(images: Any) -> tuple[np.ndarray, ...]:
        images = ops.convert_to_tensor(images)
        with torch.no_grad():
            activations = sliced.activations(images, call)
            raw, outputs = sliced.scores_and_outputs(activations, images, call)
            return to_numpy((activations, _logits(raw, sliced.affine), outputs))

    return CompiledCam(attributions, forward)


def compile_cam(sliced: SlicedModel, input_shape: tuple[Any, ...], classes: int) -> CompiledCam:
    """The CAM computations for ``sliced`` on the backend Keras runs on.

    Args:
        sliced: the model cut at its target layer (``capture.slice_model``).
        input_shape: one image's shape (H, W, C).
        classes: number of class scores.

    Raises:
        NotImplementedError: for a backend other than tensorflow, jax or torch.
    """
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(sliced, tuple(input_shape), classes)
    if backend == "jax":
        return _jax(sliced)
    if backend == "torch":
        return _torch(sliced)
    raise NotImplementedError(f"Keras backend {backend!r}: use tensorflow, jax or torch")
