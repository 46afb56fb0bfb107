"""Batch-norm statistics that match the weights: recompute them from training batches.

During ``fit`` a BatchNormalization layer keeps an exponential moving average (momentum 0.99,
about the last 100 steps) of its batch statistics, computed with weights that were still
changing. Early in training from scratch the weights move fast, so the averages describe older
weights and inference-mode outputs can fall apart while training-mode accuracy is fine. The fix
("precise BN"): with the weights frozen, average the statistics of a few training batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

# Training batches averaged per recalibration: 8 x 256 images give stable statistics.
RECALIBRATION_BATCHES = 8


def batch_norm_layers(model: Any) -> list[Any]:
    """Every BatchNormalization layer of ``model``, nested models included."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(batch_norm_layers(layer))
    return found


def recalibrate_batch_norm(model: Any, batches: Iterable[np.ndarray]) -> int:
    """Set every BatchNormalization layer's moving statistics to their mean over ``batches``.

    Only the moving mean and variance change (no weight is trained): batch k is run in training
    mode with momentum ``1 - 1/k``, which makes each moving statistic the running mean of the
    batches' statistics. Momentum is restored afterwards.

    Args:
        model: a Keras model.
        batches: model inputs (N, H, W, C), e.g. the training sequence's images.

    Returns:
        How many batches were used (0 leaves the model untouched).
    """
    layers = batch_norm_layers(model)
    momenta = [layer.momentum for layer in layers]
    count = 0
    try:
        for count, batch in enumerate(batches, start=1):
            for layer in layers:
                layer.momentum = 1.0 - 1.0 / count
            # Eager call: each BatchNormalization reads its momentum now and assigns its averages.
            model(np.asarray(batch, np.float32), training=True)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    return count


def recalibration_callback(training_batch: Callable[[int], np.ndarray], batch_count: int) -> Any:
    """A Keras callback that recalibrates batch norm before each validation.

    Validation, and the checkpoint it chooses (saved after validation, statistics included),
    then measure the weights as they will be used.

    Args:
        training_batch: returns the images of training batch ``index``.
        batch_count: batches available; the first ``RECALIBRATION_BATCHES`` of a fresh random
            pick are used each time.
    """
    import keras

    class RecalibrateBatchNorm(keras.callbacks.Callback):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.calls = 0

        def on_epoch_begin(self, epoch: int, logs=None) -> None:  # type: ignore[no-untyped-def]
            # The pick depends on the epoch only, so a resumed run picks what it would have.
            self.epoch = epoch

        def _recalibrate(self) -> None:
            self.calls += 1
            picks = np.random.default_rng(self.epoch + 1).permutation(batch_count)
            recalibrate_batch_norm(
                self.model, (training_batch(int(i)) for i in picks[:RECALIBRATION_BATCHES])
            )

        def on_test_begin(self, logs=None) -> None:  # type: ignore[no-untyped-def]
            self._recalibrate()

    return RecalibrateBatchNorm()
