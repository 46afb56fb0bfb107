"""Stroke attribution: masks in the model's frame, a known answer by construction, JSON, deletion."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import light_ink

TOP_STROKE = [[0, 100], [10, 10]]
BOTTOM_STROKE = [[0, 100], [90, 90]]


def build_top_half_model():  # type: ignore[no-untyped-def]
    """64x64 model whose logits see only the top half: the bottom is cropped then zero-padded.

    ``last_conv`` has a positive kernel and no bias, so bottom activations are exactly zero;
    logit 0 is the mean activation and logit 1 its negative.
    """
    import keras
    from keras import layers

    inputs = keras.Input((64, 64, 1), name="sketch")
    x = layers.Cropping2D(((0, 32), (0, 0)), name="crop_bottom")(inputs)
    x = layers.ZeroPadding2D(((0, 32), (0, 0)), name="pad_bottom")(x)
    conv = layers.Conv2D(2, 3, padding="same", use_bias=False, activation="relu", name="last_conv")
    x = conv(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    dense = layers.Dense(2, name="logits")
    logits = dense(x)
    outputs = layers.Activation("softmax", name="predictions")(logits)
    model = keras.Model(inputs, outputs, name="top_half")
    conv.set_weights([np.full((3, 3, 1, 2), 1.0 / 9, np.float32)])
    dense.set_weights([np.array([[4.0, -4.0], [4.0, -4.0]], np.float32), np.zeros(2, np.float32)])
    return model


@pytest.fixture(scope="module")
def top_half_gradcam():  # type: ignore[no-untyped-def]
    from src.visualization.gradcam import GradCAM

    model = build_top_half_model()
    return GradCAM(model, input_spec=light_ink(model))


def test_render_stroke_masks_share_the_whole_drawings_frame() -> None:
    from src.data.raster import render_stroke_masks, render_strokes

    strokes = [TOP_STROKE, BOTTOM_STROKE]
    masks = render_stroke_masks(strokes)
    whole = render_strokes(strokes)
    assert masks.shape == (2, 64, 64)
    np.testing.assert_array_equal(np.maximum(masks[0], masks[1]), whole)
    assert masks[0][:32].sum() > 0 and masks[0][32:].sum() == 0


def test_stroke_masks_follow_the_model_input_fit() -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.explain.strokes import stroke_masks

    strokes = [[[0, 50, 100], [0, 60, 20]], [[10, 90], [100, 95]]]
    masks = stroke_masks(strokes, 64)
    image = strokes_to_model_input(strokes)[..., 0]
    # Where strokes do not overlap, each pixel belongs to one mask and matches the input.
    np.testing.assert_allclose(masks.max(axis=0), image, atol=0.26)
    assert np.abs(masks.max(axis=0) - image).mean() < 0.005


def test_top_half_model_puts_the_mass_on_the_top_stroke(top_half_gradcam) -> None:  # type: ignore[no-untyped-def]
    from src.explain.strokes import attribute_strokes, attribution_to_dict

    attribution = attribute_strokes([BOTTOM_STROKE, TOP_STROKE], top_half_gradcam, class_index=0)
    assert attribution.heatmap[34:].sum() < 0.02 * attribution.heatmap.sum()
    assert attribution.shares[1] > 0.97
    assert attribution.ranking.tolist() == [1, 0]
    summary = attribution_to_dict(attribution, ["top", "other"])
    assert summary["class_name"] == "top"
    assert [stroke["rank"] for stroke in summary["strokes"]] == [2, 1]


def test_deleting_the_top_stroke_hurts_more_than_a_random_one(top_half_gradcam) -> None:  # type: ignore[no-untyped-def]
    from src.explain.strokes import stroke_deletion_check

    rng = np.random.default_rng(0)
    drawings = []
    for _ in range(6):
        # One stroke high up, two low down: only the first can move the top-half model.
        y = int(rng.integers(0, 20))
        drawings.append([[[0, 100], [y, y + 5]], [[0, 100], [95, 100]], [[10, 80], [90, 99]]])
    check = stroke_deletion_check(drawings, top_half_gradcam, seed=1)
    assert check.drawings == 6
    assert check.mean_drop_top > check.mean_drop_random
    assert check.top_beats_random >= 0.5


def test_deletion_check_needs_multi_stroke_drawings(top_half_gradcam) -> None:  # type: ignore[no-untyped-def]
    from src.errors import InvalidImageError
    from src.explain.strokes import stroke_deletion_check

    with pytest.raises(InvalidImageError, match="at least two strokes"):
        stroke_deletion_check([[TOP_STROKE]], top_half_gradcam)
