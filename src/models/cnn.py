"""The project's sketch CNN: named layers, a separate logits layer, polarity handled inside."""

from __future__ import annotations

from src.config import ModelConfig
from src.data.polarity import LIGHT_PAPER

INPUT = "sketch"
# The last convolutional block's activation: the default Grad-CAM target layer.
LAST_CONV = "last_conv"
LOGITS = "logits"
PREDICTIONS = "predictions"


def _polarity_block(image):  # type: ignore[no-untyped-def]
    """Flip black-on-white input to white-on-black, with built-in layers only (safe to load).

    The project's polarity rule (``src.data.polarity``) with the mean brightness standing in for
    the border median, which built-in layers cannot compute: a sketch is mostly paper, so a mean
    above ``LIGHT_PAPER`` (one half) means dark ink on light paper.
    ``s = sigmoid(40 (mean - 0.5))`` is ~1 then and ~0 otherwise, and
    ``x * (1 - 2 s) + s`` equals ``1 - x`` when s = 1 and ``x`` when s = 0. This keeps the plain
    ``convert('L') / 255`` snippet of docs/usage_guide.md working on PNG sketches.
    """
    from keras import layers

    mean = layers.GlobalAveragePooling2D(keepdims=True, name="polarity_mean")(image)
    flip = layers.Rescaling(40.0, offset=-40.0 * LIGHT_PAPER, name="polarity_logit")(mean)
    flip = layers.Activation("sigmoid", name="polarity_flip")(flip)
    scale = layers.Rescaling(-2.0, offset=1.0, name="polarity_scale")(flip)
    scaled = layers.Multiply(name="polarity_multiply")([image, scale])
    return layers.Add(name="polarity_normalised")([scaled, flip])


def classifier_head(features, config: ModelConfig):  # type: ignore[no-untyped-def]
    """Global average pool, dropout, dense, dropout, the ``logits`` layer and its softmax.

    Shared by every architecture, so each ends in the layers the engine looks up by name.
    """
    from keras import layers

    x = layers.GlobalAveragePooling2D(name="global_pool")(features)
    x = layers.Dropout(config.dropout, name="dropout1")(x)
    x = layers.Dense(config.dense_units, activation="relu", name="dense")(x)
    x = layers.Dropout(config.dropout, name="dropout2")(x)
    logits = layers.Dense(config.num_classes, name=LOGITS)(x)
    outputs = layers.Activation("softmax", name=PREDICTIONS)(logits)
    return outputs


def build_cnn(config: ModelConfig = ModelConfig()):  # type: ignore[no-untyped-def]
    """Build the sketch CNN as a Functional Keras model.

    Layout: polarity normalisation, 2x average-pool to 32x32 (Google's bitmaps carry ~28x28 of
    detail, so full 64x64 convolutions spend 4x the compute on nothing), then stages of two
    3x3 conv + batch-norm + ReLU and a max-pool, global average pooling, a dense layer, the
    ``logits`` Dense layer and a separate softmax ``predictions`` layer.

    Args:
        config: number of classes, input size and widths.

    Returns:
        An uncompiled ``keras.Model`` with input ``(size, size, 1)`` and softmax output.
    """
    import keras
    from keras import layers

    if config.num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {config.num_classes}")
    inputs = keras.Input((config.image_size, config.image_size, 1), name=INPUT)
    x = _polarity_block(inputs)
    x = layers.AveragePooling2D(2, name="downsample")(x)
    for stage, filters in enumerate(config.filters, start=1):
        last_stage = stage == len(config.filters)
        for repeat in (1, 2):
            x = layers.Conv2D(
                filters, 3, padding="same", use_bias=False, name=f"conv{stage}_{repeat}"
            )(x)
            x = layers.BatchNormalization(
                momentum=config.batch_norm_momentum, name=f"bn{stage}_{repeat}"
            )(x)
            name = LAST_CONV if (last_stage and repeat == 2) else f"relu{stage}_{repeat}"
            x = layers.Activation("relu", name=name)(x)
        if not last_stage:
            x = layers.MaxPooling2D(2, name=f"pool{stage}")(x)
    outputs = classifier_head(x, config)
    return keras.Model(inputs, outputs, name="sketch_cnn")


def build_reference_cnn(num_classes: int, image_size: int = 64):  # type: ignore[no-untyped-def]
    """The plain reference CNN the benchmarks compare against.

    conv32x2-pool-conv64x2-pool-conv128x2-pool-global average pool-dense256-dense N, at full
    input resolution.
    """
    import keras
    from keras import layers

    inputs = keras.Input((image_size, image_size, 1))
    x = inputs
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D(2)(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(256, activation="relu")(x)
    outputs = layers.Dense(num_classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="reference_cnn")
