"""A wider sketch CNN with residual blocks: the same input, polarity block, head and layer names.

Each stage is one residual block (two 3x3 convolutions with batch norm, plus a shortcut that is
a 1x1 convolution where the width changes), then a 2x2 max pool except after the last stage.
The shortcut lets a wider network train from scratch in few epochs, and the last block's
activation stays at 8x8 (like ``build_cnn``), so Grad-CAM maps keep their resolution.
"""

from __future__ import annotations

from src.config import ModelConfig
from src.models.cnn import INPUT, LAST_CONV, _polarity_block, classifier_head

# Stage widths when the caller keeps ModelConfig's default (build_cnn's) widths.
RESIDUAL_FILTERS = (48, 96, 192)


def _residual_block(x, filters: int, stage: int, config: ModelConfig, last: bool):  # type: ignore[no-untyped-def]
    """conv-bn-relu-conv-bn added to the (projected) input, then ReLU."""
    from keras import layers

    shortcut = x
    if x.shape[-1] != filters:
        # A 1x1 projection so the sum has the block's width.
        shortcut = layers.Conv2D(filters, 1, use_bias=False, name=f"shortcut{stage}")(x)
        shortcut = layers.BatchNormalization(
            momentum=config.batch_norm_momentum, name=f"shortcut_bn{stage}"
        )(shortcut)
    for repeat in (1, 2):
        x = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{stage}_{repeat}")(
            x
        )
        x = layers.BatchNormalization(
            momentum=config.batch_norm_momentum, name=f"bn{stage}_{repeat}"
        )(x)
        if repeat == 1:
            x = layers.Activation("relu", name=f"relu{stage}_1")(x)
    x = layers.Add(name=f"add{stage}")([x, shortcut])
    return layers.Activation("relu", name=LAST_CONV if last else f"relu{stage}_2")(x)


def build_residual_cnn(config: ModelConfig = ModelConfig(filters=RESIDUAL_FILTERS)):  # type: ignore[no-untyped-def]
    """Build the residual sketch CNN as a Functional Keras model.

    Layout: polarity normalisation and 2x average-pool to 32x32 (as ``build_cnn``), one residual
    block per entry of ``config.filters`` with a max pool between stages, global average pooling,
    dropout, a dense layer, the ``logits`` Dense layer and a separate softmax ``predictions``.

    Args:
        config: number of classes, input size, stage widths, dense width, dropout.

    Returns:
        An uncompiled ``keras.Model`` with input ``(size, size, 1)``, a ``last_conv`` activation
        and a ``logits`` layer, like ``build_cnn``.

    Raises:
        ValueError: if ``config`` asks for fewer than two classes or no stage.
    """
    import keras
    from keras import layers

    if config.num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {config.num_classes}")
    if not config.filters:
        raise ValueError("the residual CNN needs at least one stage width in filters")
    inputs = keras.Input((config.image_size, config.image_size, 1), name=INPUT)
    x = _polarity_block(inputs)
    x = layers.AveragePooling2D(2, name="downsample")(x)
    for stage, filters in enumerate(config.filters, start=1):
        last_stage = stage == len(config.filters)
        x = _residual_block(x, filters, stage, config, last_stage)
        if not last_stage:
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    outputs = classifier_head(x, config)
    return keras.Model(inputs, outputs, name="sketch_residual_cnn")
