"""A model's forward pass compiled on the running Keras backend (no gradients, no slicing).

Prediction without maps runs this; an explainer service shares its CAM engine's forward
instead, so one model is compiled once whatever the interface asks of it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np


def compile_forward(model: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The model's output for a batch, compiled on the running backend (no gradients)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
        graph = tf.function(lambda images: model(images, training=False), input_signature=[spec])
        return lambda images: graph(images).numpy()
    if backend == "jax":
        import jax

        def pure(trainable: Any, non_trainable: Any, images: Any) -> Any:
            return model.stateless_call(trainable, non_trainable, images, training=False)[0]

        compiled = jax.jit(pure)
        return lambda images: np.asarray(
            compiled(
                [variable.value for variable in model.trainable_variables],
                [variable.value for variable in model.non_trainable_variables],
                images,
            )
        )
    if backend == "torch":
        import torch

        def run(images: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                return keras.ops.convert_to_numpy(model(images, training=False))

        return run
    raise NotImplementedError(f"Keras backend {backend!r}: use tensorflow, jax or torch")
