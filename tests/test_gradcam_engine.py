"""The Grad-CAM engine against definitions written here, independently of src/visualization.

Every expectation is computed in this file: a textbook per-image ``tf.GradientTape`` loop, numpy
formulas for each method, a numpy bilinear upsampler and numpy SVD. Nothing is compared with the
engine's own output except where the property itself is "the same as" (batch vs single image).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from src.errors import InvalidImageError, LayerNotFoundError, ModelLoadError, UnknownClassError
from src.visualization.gradcam import GradCAM, load_model_for_gradcam


def documented_methods() -> tuple[str, ...]:
    """The methods the README promises (its "Methods: ..." sentence), in its order."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    sentence = re.search(r"Methods: (.*?)\.\n", readme, re.DOTALL)
    assert sentence, "README has no 'Methods: ...' sentence"
    return tuple(re.findall(r"`([^`]+)`", sentence.group(1)))


METHODS = documented_methods()
MAP_TOLERANCE = 1e-5  # max abs difference allowed between normalised [0, 1] maps


# ----------------------------------------------------------------------------------------------
# Independent reference implementation
# ----------------------------------------------------------------------------------------------


def bilinear_upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(h, w) or (h, w, K) -> size, bilinear with half-pixel centres and edge clamping."""

    def axis_weights(source: int, target: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        position = (np.arange(target) + 0.5) * source / target - 0.5
        position = np.clip(position, 0.0, source - 1)
        lower = np.floor(position).astype(int)
        upper = np.minimum(lower + 1, source - 1)
        return lower, upper, position - lower

    rows_low, rows_high, row_frac = axis_weights(maps.shape[0], size[0])
    cols_low, cols_high, col_frac = axis_weights(maps.shape[1], size[1])
    row_frac = row_frac.reshape(-1, 1, *([1] * (maps.ndim - 2)))
    col_frac = col_frac.reshape(1, -1, *([1] * (maps.ndim - 2)))
    top = maps[rows_low][:, cols_low] * (1 - col_frac) + maps[rows_low][:, cols_high] * col_frac
    bottom = (
        maps[rows_high][:, cols_low] * (1 - col_frac) + maps[rows_high][:, cols_high] * col_frac
    )
    return top * (1 - row_frac) + bottom * row_frac


def normalised(raw: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """ReLU, upsample, divide by the maximum (zeros when the maximum is zero)."""
    upsampled = bilinear_upsample(np.maximum(raw, 0.0), size)
    peak = upsampled.max()
    return upsampled / peak if peak > 0 else np.zeros_like(upsampled)


def tape_reference(
    model: Any, layer: Any, logits_layer: Any, images: np.ndarray, classes: list[int] | None
) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """The textbook loop: one GradientTape per image, gradient of the class logit."""
    import keras
    import tensorflow as tf

    grad_model = keras.Model(model.inputs, [layer.output, logits_layer.output])
    activations, gradients, chosen = [], [], []
    for index, image in enumerate(images):
        with tf.GradientTape() as tape:
            activation, logits = grad_model([image[np.newaxis]], training=False)
            class_index = int(np.argmax(logits[0])) if classes is None else classes[index]
            score = logits[0, class_index]
        gradients.append(tape.gradient(score, activation).numpy()[0].astype(np.float64))
        activations.append(activation.numpy()[0].astype(np.float64))
        chosen.append(class_index)
    return activations, gradients, chosen


def reference_raw_map(method: str, activation: np.ndarray, gradient: np.ndarray) -> np.ndarray:
    """Each gradient method's raw (h, w) map, from its paper's definition."""
    if method == "gradcam":
        return activation @ gradient.mean(axis=(0, 1))
    if method == "hirescam":
        return (activation * gradient).sum(axis=-1)
    if method == "layercam":
        return (activation * np.maximum(gradient, 0.0)).sum(axis=-1)
    if method == "xgradcam":
        totals = activation.sum(axis=(0, 1))
        weighted = (gradient * activation).sum(axis=(0, 1))
        return activation @ np.divide(
            weighted, totals, out=np.zeros_like(totals), where=totals != 0
        )
    if method == "gradcam++":
        totals = activation.sum(axis=(0, 1))
        denominator = 2 * gradient**2 + totals * gradient**3
        alpha = np.divide(
            gradient**2, denominator, out=np.zeros_like(gradient), where=denominator != 0
        )
        return activation @ (alpha * np.maximum(gradient, 0.0)).sum(axis=(0, 1))
    raise ValueError(method)


def reference_eigencam(activation: np.ndarray) -> np.ndarray:
    """First principal component projection; sign chosen to agree with the summed activation."""
    flat = activation.reshape(-1, activation.shape[-1])
    centred = flat - flat.mean(axis=0)
    _, _, right = np.linalg.svd(centred, full_matrices=False)
    projection = centred @ right[0]
    if (projection * flat.sum(axis=-1)).sum() < 0:
        projection = -projection
    return projection.reshape(activation.shape[:2])


def reference_scorecam(
    logits_model: Any, image: np.ndarray, activation: np.ndarray, class_index: int
) -> np.ndarray:
    """Score-CAM: mask the input by each min-max scaled channel; softmax of the masked logits."""
    upsampled = bilinear_upsample(activation, image.shape[:2])
    low = upsampled.min(axis=(0, 1))
    span = upsampled.max(axis=(0, 1)) - low
    masks = np.divide(upsampled - low, span, out=np.zeros_like(upsampled), where=span > 0)
    masked = image[np.newaxis] * np.moveaxis(masks, -1, 0)[..., np.newaxis]
    scores = logits_model.predict(masked.astype(np.float32), verbose=0)[:, class_index]
    weights = np.exp(scores - scores.max())
    return activation @ (weights / weights.sum())


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


def tiny_sequential(tiny_model: Any) -> Any:
    """The tiny model's layers and weights as a Sequential built with keras.Input."""
    import keras
    from keras import layers

    model = keras.Sequential(
        [
            keras.Input((8, 8, 1)),
            layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
            layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv"),
            layers.GlobalAveragePooling2D(name="global_pool"),
            layers.Dense(3, name="logits"),
            layers.Activation("softmax", name="predictions"),
        ],
        name="tiny_sequential",
    )
    model.set_weights(tiny_model.get_weights())
    return model


def wrapped(inner: Any, outer_kind: str) -> Any:
    """``inner`` nested inside a Functional or Sequential outer model."""
    import keras

    if outer_kind == "sequential":
        return keras.Sequential([keras.Input((8, 8, 1)), inner], name="outer_sequential")
    inputs = keras.Input((8, 8, 1), name="outer_input")
    return keras.Model(inputs, inner(inputs), name="outer_functional")


@pytest.fixture(scope="module")
def tiny_reference(tiny_model: Any, tiny_images: np.ndarray) -> dict[str, Any]:
    """Reference activations, gradients and Grad-CAM maps of the tiny model (predicted classes)."""
    activations, gradients, chosen = tape_reference(
        tiny_model,
        tiny_model.get_layer("last_conv"),
        tiny_model.get_layer("logits"),
        tiny_images,
        None,
    )
    maps = [
        normalised(reference_raw_map("gradcam", a, g), (8, 8))
        for a, g in zip(activations, gradients)
    ]
    return {"activations": activations, "gradients": gradients, "classes": chosen, "maps": maps}


@pytest.fixture(scope="module")
def model_variants(tiny_model: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The tiny network as every kind of model a user may bring (same weights throughout)."""
    directory = tmp_path_factory.mktemp("variants")
    frozen = tiny_sequential(tiny_model)
    frozen.trainable = False
    sequential = tiny_sequential(tiny_model)
    sequential.save(directory / "sequential.h5")
    tiny_model.save(directory / "functional.keras")
    return {
        "functional": tiny_model,
        "sequential_with_input": sequential,
        "frozen_sequential": frozen,
        "sequential_from_legacy_h5": load_model_for_gradcam(directory / "sequential.h5"),
        "functional_keras_round_trip": load_model_for_gradcam(directory / "functional.keras"),
        "nested_in_functional": wrapped(tiny_model, "functional"),
        "nested_in_sequential": wrapped(tiny_model, "sequential"),
        "sequential_nested_in_functional": wrapped(tiny_sequential(tiny_model), "functional"),
    }


# ----------------------------------------------------------------------------------------------
# Against the naive loop
# ----------------------------------------------------------------------------------------------


def test_matches_naive_tape_loop_on_sketch_model(sketch_model_path: Path) -> None:
    """The 64x64 project model: engine maps equal the per-image tape loop to 1e-5."""
    model = load_model_for_gradcam(sketch_model_path)
    images = np.random.default_rng(3).random((5, 64, 64, 1)).astype(np.float32)
    images[0] = 1.0  # a blank sheet of paper
    activations, gradients, chosen = tape_reference(
        model, model.get_layer("last_conv"), model.get_layer("logits"), images, None
    )
    result = GradCAM(model).explain(images)
    assert result.layer_name == "last_conv"
    assert result.class_indices.tolist() == chosen
    for index, (activation, gradient) in enumerate(zip(activations, gradients)):
        expected = normalised(reference_raw_map("gradcam", activation, gradient), (64, 64))
        assert np.abs(result.heatmaps[index] - expected).max() <= MAP_TOLERANCE
    np.testing.assert_allclose(
        result.probabilities, model.predict(images, verbose=0), rtol=1e-4, atol=1e-6
    )


def test_a_branch_bypassing_the_target_layer() -> None:
    """target + skip(input) -> pool -> logits: the head also takes the images, and the map
    is still of the target's own gradient, W[:, c] / (h w) at every position (by hand)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(9)
    inputs = keras.Input((6, 6, 1))
    target = layers.Conv2D(3, 3, padding="same", activation="relu", name="target")(inputs)
    skip = layers.Conv2D(3, 1, name="skip")(inputs)
    pooled = layers.GlobalAveragePooling2D()(layers.Add()([target, skip]))
    model = keras.Model(inputs, layers.Dense(2, name="logits")(pooled))
    images = np.random.default_rng(2).random((3, 6, 6, 1)).astype(np.float32)
    activations = keras.Model(inputs, target).predict(images, verbose=0).astype(np.float64)
    kernel = model.get_layer("logits").get_weights()[0].astype(np.float64)
    result = GradCAM(model, layer_name="target", method="hirescam").explain(images, 1)
    for index, activation in enumerate(activations):
        expected = activation @ (kernel[:, 1] / 36.0)
        np.testing.assert_allclose(result.raw_maps[index], expected, rtol=1e-5, atol=1e-7)


def test_batch_equals_single_images(tiny_model: Any, tiny_images: np.ndarray) -> None:
    """One batched call gives each image the map it gets alone."""
    engine = GradCAM(tiny_model)
    batch = engine.explain(tiny_images, class_indices=[2, 1, 0, 1])
    for index, image in enumerate(tiny_images):
        single = engine.explain(image, class_indices=[2, 1, 0, 1][index])
        assert np.abs(batch.heatmaps[index] - single.heatmaps[0]).max() <= MAP_TOLERANCE
        np.testing.assert_allclose(batch.raw_maps[index], single.raw_maps[0], atol=1e-6)


@pytest.mark.parametrize("classes", [[2, 0, 1, 2], [1, 1, 1, 1]])
def test_explicit_class_targets(
    tiny_model: Any, tiny_images: np.ndarray, classes: list[int]
) -> None:
    """Per-image targets (a list, or one int for all) explain those classes' logits."""
    activations, gradients, _ = tape_reference(
        tiny_model,
        tiny_model.get_layer("last_conv"),
        tiny_model.get_layer("logits"),
        tiny_images,
        classes,
    )
    target = classes[0] if len(set(classes)) == 1 else classes
    result = GradCAM(tiny_model).explain(tiny_images, class_indices=target)
    assert result.class_indices.tolist() == classes
    for index, (activation, gradient) in enumerate(zip(activations, gradients)):
        expected = normalised(reference_raw_map("gradcam", activation, gradient), (8, 8))
        assert np.abs(result.heatmaps[index] - expected).max() <= MAP_TOLERANCE


@pytest.mark.parametrize(
    ("class_indices", "error"),
    [(0, None), ([0, 1, 2, 0], None), (3, "out of range"), (-1, "out of range"), ([0, 1], "4")],
)
def test_class_index_validation(
    tiny_model: Any, tiny_images: np.ndarray, class_indices: Any, error: str | None
) -> None:
    """Class indices outside 0..C-1, or the wrong count, raise UnknownClassError."""
    engine = GradCAM(tiny_model)
    if error is None:
        assert engine.explain(tiny_images, class_indices).heatmaps.shape == (4, 8, 8)
    else:
        with pytest.raises(UnknownClassError, match=error):
            engine.explain(tiny_images, class_indices)


# ----------------------------------------------------------------------------------------------
# Each method against its definition
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "hirescam", "layercam", "xgradcam"])
def test_gradient_methods_match_definitions(
    method: str, tiny_model: Any, tiny_images: np.ndarray, tiny_reference: dict[str, Any]
) -> None:
    """Raw and normalised maps equal the numpy formula on the tape's activations/gradients."""
    result = GradCAM(tiny_model, method=method).explain(tiny_images)
    assert result.method == method
    for index in range(len(tiny_images)):
        activation = tiny_reference["activations"][index]
        raw = reference_raw_map(method, activation, tiny_reference["gradients"][index])
        scale = max(np.abs(raw).max(), 1e-12)
        assert np.abs(result.raw_maps[index] - raw).max() <= 1e-5 * scale
        expected = normalised(raw, (8, 8))
        assert np.abs(result.heatmaps[index] - expected).max() <= MAP_TOLERANCE


def test_eigencam_matches_numpy_svd(
    tiny_model: Any, tiny_images: np.ndarray, tiny_reference: dict[str, Any]
) -> None:
    """Eigen-CAM equals the first principal component projection with the same sign rule."""
    result = GradCAM(tiny_model, method="eigencam").explain(tiny_images)
    for index, activation in enumerate(tiny_reference["activations"]):
        raw = reference_eigencam(activation)
        np.testing.assert_allclose(result.raw_maps[index], raw, atol=1e-5 * (np.abs(raw).max() + 1))
        assert np.abs(result.heatmaps[index] - normalised(raw, (8, 8))).max() <= MAP_TOLERANCE


def test_scorecam_matches_masked_forwards(
    tiny_model: Any, tiny_images: np.ndarray, tiny_reference: dict[str, Any]
) -> None:
    """Score-CAM equals numpy masking + softmax over channel logits, in chunks of 4 channels."""
    import keras

    logits_model = keras.Model(tiny_model.inputs, tiny_model.get_layer("logits").output)
    result = GradCAM(tiny_model, method="scorecam", score_cam_batch_size=4).explain(tiny_images)
    for index, image in enumerate(tiny_images.astype(np.float64)):
        activation = tiny_reference["activations"][index]
        raw = reference_scorecam(logits_model, image, activation, tiny_reference["classes"][index])
        np.testing.assert_allclose(result.raw_maps[index], raw, atol=1e-5 * (np.abs(raw).max() + 1))
        assert np.abs(result.heatmaps[index] - normalised(raw, (8, 8))).max() <= MAP_TOLERANCE


def test_engine_offers_exactly_the_documented_methods() -> None:
    from src.visualization.cam_methods import METHODS as ENGINE_METHODS

    assert METHODS[0] == "gradcam" and len(METHODS) == 7
    assert sorted(ENGINE_METHODS) == sorted(METHODS)


@pytest.mark.parametrize("method", METHODS)
def test_heatmaps_are_float32_in_unit_range(
    method: str, tiny_model: Any, tiny_images: np.ndarray
) -> None:
    """(N, H, W) float32 in [0, 1]; raw maps at the layer's resolution; blank canvas -> zeros."""
    result = GradCAM(tiny_model, method=method).explain(tiny_images)
    assert result.heatmaps.dtype == np.float32 and result.heatmaps.shape == (4, 8, 8)
    assert result.raw_maps.dtype == np.float32 and result.raw_maps.shape == (4, 8, 8)
    assert np.all(np.isfinite(result.heatmaps)) and np.all(np.isfinite(result.raw_maps))
    assert result.heatmaps.min() >= 0.0 and result.heatmaps.max() <= 1.0
    assert not np.any(result.heatmaps[3]), "tiny_images[3] is blank: its map must be all zeros"


# ----------------------------------------------------------------------------------------------
# Logits, not softmax; the caller's model is untouched
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fused_softmax_model() -> Any:
    """conv -> global average pool -> Dense(3, softmax) with fixed weights (no logits layer)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(5)
    inputs = keras.Input((6, 6, 1))
    features = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    pooled = layers.GlobalAveragePooling2D()(features)
    outputs = layers.Dense(3, activation="softmax", name="head")(pooled)
    model = keras.Model(inputs, outputs)
    kernel = np.array([[1.0, -2.0, 0.5], [0.3, 1.5, -1.0], [-0.7, 0.2, 2.0], [0.9, -0.4, 0.1]])
    model.get_layer("head").set_weights([kernel.astype(np.float32), np.zeros(3, np.float32)])
    return model


def test_gradients_are_of_logits_in_fused_softmax_dense(fused_softmax_model: Any) -> None:
    """With Dense(softmax) fused, d logit_c / dA_abk = W[k, c] / (h w), computed by hand."""
    import keras

    model = fused_softmax_model
    images = np.random.default_rng(4).random((3, 6, 6, 1)).astype(np.float32)
    activations = keras.Model(model.inputs, model.get_layer("conv").output).predict(
        images, verbose=0
    )
    kernel = model.get_layer("head").get_weights()[0]
    probabilities = model.predict(images, verbose=0)
    result = GradCAM(model, method="hirescam").explain(images, class_indices=1)
    for index, activation in enumerate(activations.astype(np.float64)):
        logit_gradient = kernel[:, 1] / 36.0
        expected = activation @ logit_gradient
        np.testing.assert_allclose(result.raw_maps[index], expected, rtol=1e-5, atol=1e-7)
        # The softmax gradient would be p1 (W[:, 1] - sum_j p_j W[:, j]) / 36: a different map.
        softmax_gradient = probabilities[index, 1] * (kernel[:, 1] - kernel @ probabilities[index])
        assert not np.allclose(result.raw_maps[index], activation @ (softmax_gradient / 36.0))


def test_callers_model_is_unchanged(fused_softmax_model: Any, sketch_model_path: Path) -> None:
    """Weights, activations and every layer's activation function are the same afterwards."""
    import keras

    model = load_model_for_gradcam(sketch_model_path)
    images = np.random.default_rng(6).random((4, 64, 64, 1)).astype(np.float32)
    for subject, batch in ((model, images), (fused_softmax_model, images[:, :6, :6])):
        probe = keras.Model(subject.inputs, [layer.output for layer in subject.layers[1:]])
        weights_before = [weight.copy() for weight in subject.get_weights()]
        outputs_before = probe.predict(batch, verbose=0)
        activations_before = [getattr(layer, "activation", None) for layer in subject.layers]
        for method in ("gradcam", "scorecam"):
            GradCAM(subject, method=method).explain(batch)
        for before, after in zip(weights_before, subject.get_weights()):
            np.testing.assert_array_equal(before, after)
        for before, after in zip(outputs_before, probe.predict(batch, verbose=0)):
            np.testing.assert_array_equal(before, after)
        assert activations_before == [
            getattr(layer, "activation", None) for layer in subject.layers
        ]
    assert fused_softmax_model.get_layer("head").activation is keras.activations.softmax


def test_all_negative_map_gives_zeros_not_nan() -> None:
    """Positive activations and a class whose weights are all negative: zeros, finite."""
    import keras
    from keras import layers

    inputs = keras.Input((4, 4, 1))
    features = layers.Conv2D(2, 1, activation="relu", name="conv")(inputs)
    logits = layers.Dense(2, name="logits")(layers.GlobalAveragePooling2D()(features))
    model = keras.Model(inputs, layers.Activation("softmax")(logits))
    model.get_layer("conv").set_weights([np.ones((1, 1, 1, 2), np.float32), np.ones(2, np.float32)])
    model.get_layer("logits").set_weights(
        [np.array([[1.0, -1.0], [1.0, -2.0]], np.float32), np.zeros(2, np.float32)]
    )
    image = np.random.default_rng(7).random((1, 4, 4, 1)).astype(np.float32)
    result = GradCAM(model).explain(image, class_indices=1)
    assert np.all(result.raw_maps < 0)
    assert np.all(np.isfinite(result.heatmaps)) and not np.any(result.heatmaps)


# ----------------------------------------------------------------------------------------------
# Target layers and model kinds
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "layer_name", "expected"),
    [
        ("functional", "last_conv", "last_conv"),
        ("functional", "conv_a", "conv_a"),
        ("functional", None, "last_conv"),
        ("nested_in_functional", "tiny/last_conv", "tiny/last_conv"),
        ("nested_in_functional", "conv_a", "tiny/conv_a"),
        ("nested_in_sequential", None, "tiny/last_conv"),
        ("functional", "conv_b", LayerNotFoundError("not in the model.*conv_a, last_conv")),
        ("functional", "logits", LayerNotFoundError("not a spatial.*conv_a, last_conv")),
        ("nested_in_functional", "tiny/nope", LayerNotFoundError("tiny/conv_a, tiny/last_conv")),
    ],
)
def test_target_layer_resolution(
    model_variants: dict[str, Any], variant: str, layer_name: str | None, expected: Any
) -> None:
    """By name, by nested path, a plain name inside a nested model, automatic; bad names list
    the candidates."""
    model = model_variants[variant]
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=str(expected)):
            GradCAM(model, layer_name=layer_name)
    else:
        assert GradCAM(model, layer_name=layer_name).layer_name == expected


def test_automatic_choice_skips_one_by_one_maps(caplog: pytest.LogCaptureFixture) -> None:
    """The default is the last layer whose output is spatial and larger than 1x1 (logged)."""
    import keras
    from keras import layers

    inputs = keras.Input((5, 5, 1))
    wide = layers.Conv2D(3, 3, activation="relu", name="wide")(inputs)  # 3x3
    point = layers.Conv2D(3, 3, activation="relu", name="point")(wide)  # 1x1
    outputs = layers.Dense(2, name="logits")(layers.Flatten()(point))
    with caplog.at_level(logging.INFO):
        engine = GradCAM(keras.Model(inputs, outputs))
    assert engine.layer_name == "wide"
    assert "wide" in caplog.text


@pytest.mark.parametrize(
    "variant",
    [
        "functional",
        "sequential_with_input",
        "frozen_sequential",
        "sequential_from_legacy_h5",
        "functional_keras_round_trip",
        "nested_in_functional",
        "nested_in_sequential",
        "sequential_nested_in_functional",
    ],
)
def test_every_model_kind_matches_the_reference(
    model_variants: dict[str, Any],
    variant: str,
    tiny_images: np.ndarray,
    tiny_reference: dict[str, Any],
) -> None:
    """Same network, any packaging: the maps of the tiny model's logits, layer last_conv."""
    result = GradCAM(model_variants[variant], layer_name="last_conv").explain(tiny_images)
    assert result.class_indices.tolist() == tiny_reference["classes"]
    for heatmap, expected in zip(result.heatmaps, tiny_reference["maps"]):
        assert np.abs(heatmap - expected).max() <= MAP_TOLERANCE


def test_unbuilt_sequential_gets_a_clear_error() -> None:
    """A Sequential without an input shape has no graph yet: say how to build it."""
    import keras
    from keras import layers

    model = keras.Sequential([layers.Conv2D(2, 3), layers.Flatten(), layers.Dense(2)])
    with pytest.raises(ModelLoadError, match="never been built.*keras.Input"):
        GradCAM(model)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def save_lambda_model(path: Path) -> None:
    """A model with a Lambda layer (arbitrary code) saved to ``path``."""
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 1))
    doubled = layers.Lambda(lambda tensor: tensor * 2.0)(inputs)
    outputs = layers.Dense(2)(layers.Flatten()(layers.Conv2D(2, 3)(doubled)))
    keras.Model(inputs, outputs).save(path)


@pytest.mark.parametrize(
    ("file_name", "content", "error"),
    [
        ("good.h5", "model", None),
        ("missing.h5", None, "not found"),
        ("notes.h5", "text", "not a valid Keras model file"),
        ("weights.txt", "text", "not a Keras model file: use a .h5 or .keras"),
        ("lambda.keras", "lambda", "Lambda layer.*refused.*safe_mode=False"),
        ("lambda.h5", "lambda", "Lambda layer.*refused"),
    ],
)
def test_load_model_for_gradcam_errors(
    tmp_path: Path, tiny_model: Any, file_name: str, content: str | None, error: str | None
) -> None:
    """Missing, not a model, or unsafe: a ModelLoadError that says what to do."""
    path = tmp_path / file_name
    if content == "model":
        tiny_model.save(path)
    elif content == "text":
        path.write_text("this is not a model")
    elif content == "lambda":
        save_lambda_model(path)
    if error is None:
        assert load_model_for_gradcam(path).count_params() == tiny_model.count_params()
    else:
        with pytest.raises(ModelLoadError, match=error):
            load_model_for_gradcam(str(path))


# ----------------------------------------------------------------------------------------------
# Input shapes on the 64x64 project model
# ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sketch_engine(sketch_model_path: Path) -> GradCAM:
    """One GradCAM on the 64x64 fixture model (compiled once for all shape cases)."""
    return GradCAM(load_model_for_gradcam(sketch_model_path))


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((64, 64), (64, 64)),
        ((64, 64, 1), (64, 64)),
        ((1, 64, 64, 1), (64, 64)),
        ((3, 64, 64, 1), (3, 64, 64)),
        ((32, 32), InvalidImageError("expects")),
        ((2, 64, 64, 1, 1), InvalidImageError("expected")),
    ],
)
def test_input_shapes(sketch_engine: GradCAM, shape: tuple[int, ...], expected: Any) -> None:
    """(H, W), (H, W, 1), (1, H, W, 1) give one (H, W) map; (N, H, W, 1) gives N maps."""
    engine = sketch_engine
    images = np.random.default_rng(8).random(shape).astype(np.float32)
    if isinstance(expected, Exception):
        with pytest.raises(type(expected), match=str(expected)):
            engine.generate_gradcam(images)
        return
    heatmap = engine.generate_gradcam(images)
    assert heatmap.shape == expected and heatmap.dtype == np.float32
    first = images.reshape(-1, 64, 64, 1)[0]
    single = engine.generate_gradcam(first[np.newaxis])
    assert np.abs((heatmap if heatmap.ndim == 2 else heatmap[0]) - single).max() <= MAP_TOLERANCE


# ----------------------------------------------------------------------------------------------
# Target objects
# ----------------------------------------------------------------------------------------------


def test_class_sum_target_is_the_sum_of_the_class_gradients(
    tiny_model: Any, tiny_images: np.ndarray
) -> None:
    """ClassSum((0, 2)): HiResCAM is linear in the gradient, so its raw map is the sum of the
    tape reference's maps of class 0 and class 2."""
    from src.visualization.targets import ClassSum

    per_class = {}
    for class_index in (0, 2):
        activations, gradients, _ = tape_reference(
            tiny_model,
            tiny_model.get_layer("last_conv"),
            tiny_model.get_layer("logits"),
            tiny_images,
            [class_index] * len(tiny_images),
        )
        per_class[class_index] = [
            reference_raw_map("hirescam", a, g) for a, g in zip(activations, gradients)
        ]
    result = GradCAM(tiny_model, method="hirescam").explain(tiny_images, ClassSum((0, 2)))
    for index in range(len(tiny_images)):
        expected = per_class[0][index] + per_class[2][index]
        np.testing.assert_allclose(result.raw_maps[index], expected, atol=1e-5)


def test_predicted_target_is_not_a_sentinel(tiny_model: Any, tiny_images: np.ndarray) -> None:
    """Predicted() explains the top class; -1 is an out-of-range class, not "predicted"."""
    from src.visualization.targets import Predicted

    engine = GradCAM(tiny_model)
    expected = np.argmax(tiny_model.predict(tiny_images, verbose=0), axis=1)
    assert engine.explain(tiny_images, Predicted()).class_indices.tolist() == expected.tolist()
    with pytest.raises(UnknownClassError, match="out of range"):
        engine.explain(tiny_images, [-1, 0, 0, 0])
