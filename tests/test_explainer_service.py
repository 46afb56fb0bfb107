"""The explainer service: one compiled forward shared by prediction and maps, one input method."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import draw_square_strokes


def test_predictions_share_the_cam_engines_forward(
    tiny_model,  # type: ignore[no-untyped-def]
    tiny_images: np.ndarray,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The service never compiles the model's separate forward pass, and its probabilities are
    the model's own (the reference: a plain Keras call)."""
    from src.models import forward
    from src.service.explainer import Explainer

    def refuse(model: object) -> object:
        raise AssertionError("the service compiled a second forward pass")

    monkeypatch.setattr(forward, "compile_forward", refuse)
    explainer = Explainer(tiny_model)
    expected = np.asarray(tiny_model(tiny_images, training=False))
    np.testing.assert_allclose(explainer.probabilities(tiny_images), expected, rtol=1e-5, atol=1e-6)
    ranked = explainer.predictor.predict(tiny_images, top_k=2)
    assert [p.class_index for p in ranked] == [int(row.argmax()) for row in expected]
    probabilities, verdicts = explainer.classify(tiny_images)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-5, atol=1e-6)
    assert len(verdicts) == len(tiny_images)


@pytest.fixture(scope="module")
def model_20():  # type: ignore[no-untyped-def]
    """A 20x20x1 classifier: big enough for an input convention (16 to 512 pixels a side)."""
    import keras

    inputs = keras.Input((20, 20, 1))
    features = keras.layers.Conv2D(2, 3, padding="same", name="last_conv")(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(pooled))


def test_model_input_is_at_the_models_size_in_its_convention(model_20) -> None:  # type: ignore[no-untyped-def]
    """Strokes and images come out at the model's 20x20 in its spec: light ink 0-1 is the
    canonical picture itself, dark ink -1..1 is ``2 * (1 - ink) - 1`` of it (by hand)."""
    from src.data.input_spec import InputSpec
    from src.data.preprocess import strokes_to_model_input, to_model_input
    from src.errors import InvalidImageError
    from src.service.explainer import Explainer

    strokes = draw_square_strokes()
    canonical = strokes_to_model_input(strokes, size=20)
    light = Explainer(model_20, input_spec=InputSpec(20, 20, 1, "light", "0-1"))
    np.testing.assert_array_equal(light.model_input(strokes=strokes), canonical)
    bitmap = strokes_to_model_input(strokes, size=64)[..., 0]
    np.testing.assert_array_equal(light.model_input(bitmap), to_model_input(bitmap, size=20))
    dark = Explainer(model_20, input_spec=InputSpec(20, 20, 1, "dark", "-1-1"))
    np.testing.assert_allclose(
        dark.model_input(strokes=strokes), 2.0 * (1.0 - canonical) - 1.0, atol=1e-6
    )
    with pytest.raises(InvalidImageError, match="pass an image or strokes"):
        light.model_input()


def test_model_input_reads_a_file(model_20, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from src.data.preprocess import image_file_to_model_input
    from src.service.explainer import Explainer

    canvas = np.full((40, 40), 255, np.uint8)
    canvas[10:30, 18:22] = 0  # a dark bar on white paper
    path = tmp_path / "bar.png"
    Image.fromarray(canvas).save(path)
    explainer = Explainer(model_20)
    # No card and no option: the default, dark ink on light paper in 0-1.
    np.testing.assert_allclose(
        explainer.model_input(path), 1.0 - image_file_to_model_input(path, size=20), atol=1e-6
    )
