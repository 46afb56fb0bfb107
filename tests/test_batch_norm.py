"""Batch-norm recalibration: moving statistics become the mean of the batches' statistics."""

from __future__ import annotations

import numpy as np


def _bn_model():  # type: ignore[no-untyped-def]
    """conv -> batch norm -> pool -> dense, on 8x8 inputs."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    conv = layers.Conv2D(3, 3, padding="same", name="conv")(inputs)
    normalised = layers.BatchNormalization(momentum=0.99, name="bn")(conv)
    pooled = layers.GlobalAveragePooling2D()(normalised)
    return keras.Model(inputs, layers.Dense(2)(pooled))


def test_moving_statistics_become_the_batch_average() -> None:
    import keras

    from src.training.batch_norm import recalibrate_batch_norm

    model = _bn_model()
    layer = model.get_layer("bn")
    # Stale statistics, as after fast early training.
    layer.moving_mean.assign(np.full(3, 5.0, np.float32))
    layer.moving_variance.assign(np.full(3, 9.0, np.float32))
    batches = [np.random.default_rng(seed).random((16, 8, 8, 1)) * (seed + 1) for seed in range(3)]
    assert recalibrate_batch_norm(model, batches) == 3
    conv = keras.Model(model.inputs, model.get_layer("conv").output)
    activations = [np.asarray(conv(batch.astype(np.float32))) for batch in batches]
    # By hand: per batch, the channel mean and (biased) variance over N, H, W; then their mean.
    means = np.mean([a.mean(axis=(0, 1, 2)) for a in activations], axis=0)
    variances = np.mean([a.var(axis=(0, 1, 2)) for a in activations], axis=0)
    np.testing.assert_allclose(np.asarray(layer.moving_mean), means, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(layer.moving_variance), variances, rtol=1e-4, atol=1e-5)
    assert layer.momentum == 0.99


def test_callback_recalibrates_before_validation_in_fit() -> None:
    from src.training.batch_norm import recalibration_callback

    model = _bn_model()
    model.compile(optimizer="sgd", loss="mse")
    images = np.random.default_rng(0).random((16, 8, 8, 1)).astype(np.float32)
    targets = np.zeros((16, 2), np.float32)
    callback = recalibration_callback(lambda index: images[index * 8 : (index + 1) * 8], 2)
    model.fit(
        images,
        targets,
        validation_data=(images, targets),
        epochs=2,
        callbacks=[callback],
        verbose=0,
    )
    assert callback.calls == 2
