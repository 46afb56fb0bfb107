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


def test_model_input_is_at_the_models_size(tiny_model) -> None:  # type: ignore[no-untyped-def]
    """Strokes and images both come out at the model's 8x8, the same picture either way."""
    from src.data.preprocess import strokes_to_model_input, to_model_input
    from src.errors import InvalidImageError
    from src.service.explainer import Explainer

    explainer = Explainer(tiny_model)
    strokes = draw_square_strokes()
    from_strokes = explainer.model_input(strokes=strokes)
    np.testing.assert_array_equal(from_strokes, strokes_to_model_input(strokes, size=8))
    bitmap = strokes_to_model_input(strokes, size=64)[..., 0]
    np.testing.assert_array_equal(explainer.model_input(bitmap), to_model_input(bitmap, size=8))
    with pytest.raises(InvalidImageError, match="pass an image or strokes"):
        explainer.model_input()


def test_model_input_reads_a_file(tiny_model, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from src.data.preprocess import image_file_to_model_input
    from src.service.explainer import Explainer

    canvas = np.full((40, 40), 255, np.uint8)
    canvas[10:30, 18:22] = 0  # a dark bar on white paper
    path = tmp_path / "bar.png"
    Image.fromarray(canvas).save(path)
    explainer = Explainer(tiny_model)
    np.testing.assert_array_equal(
        explainer.model_input(path), image_file_to_model_input(path, size=8)
    )
