"""Contrastive maps: the oracle (linearity of the gradient), errors, confused pairs."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("method", ["gradcam", "hirescam"])
def test_contrast_equals_difference_of_class_maps(tiny_model, tiny_images, method) -> None:  # type: ignore[no-untyped-def]
    from src.explain.contrast import ContrastiveCAM
    from src.visualization.gradcam import GradCAM

    gradcam = GradCAM(tiny_model, method=method)
    images = tiny_images[:3]
    result = ContrastiveCAM(gradcam).explain(images, 0, 2)
    # For these methods the raw map is linear in the gradient, so d(A - B) maps to map_A - map_B.
    expected = gradcam.explain(images, 0).raw_maps - gradcam.explain(images, 2).raw_maps
    np.testing.assert_allclose(result.raw_maps, expected, rtol=1e-4, atol=1e-6)
    assert result.heatmaps.shape == (3, 8, 8) and result.heatmaps.max() <= 1.0
    scores = np.log(result.probabilities)
    np.testing.assert_allclose(result.logit_margin, scores[:, 0] - scores[:, 2], rtol=1e-4)


def test_contrast_of_the_top_half_model_lives_in_the_top_half() -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.explain.contrast import ContrastiveCAM
    from src.visualization.gradcam import GradCAM
    from tests.test_explain_strokes import BOTTOM_STROKE, TOP_STROKE, build_top_half_model

    image = strokes_to_model_input([TOP_STROKE, BOTTOM_STROKE])
    result = ContrastiveCAM(GradCAM(build_top_half_model())).explain(image, 0, 1)
    assert result.heatmaps[0][:32].sum() > 0.98 * result.heatmaps[0].sum() > 0
    assert result.against.max() == 0.0  # nothing in the sketch argues for class 1


@pytest.mark.parametrize(
    ("class_a", "class_b", "method", "error", "match"),
    [
        (1, 1, "gradcam", "UnknownClassError", "two different"),
        (0, 5, "gradcam", "UnknownClassError", "out of range"),
        (0, 1, "eigencam", "SketchError", "gradient method"),
    ],
)
def test_contrast_errors(tiny_model, tiny_images, class_a, class_b, method, error, match) -> None:  # type: ignore[no-untyped-def]
    from src import errors
    from src.explain.contrast import ContrastiveCAM
    from src.visualization.gradcam import GradCAM

    with pytest.raises(getattr(errors, error), match=match):
        ContrastiveCAM(GradCAM(tiny_model, method=method)).explain(tiny_images, class_a, class_b)


@pytest.mark.parametrize(
    ("first", "second", "expected"),
    [
        (None, None, (1, 2)),  # the two most likely
        (0, None, (0, 1)),  # B: the most likely other than A
        (None, 1, (2, 1)),  # A: the most likely other than B
        (0, 3, (0, 3)),  # both given
    ],
)
def test_pick_pair(first: int | None, second: int | None, expected: tuple[int, int]) -> None:
    from src.explain.contrast import pick_pair

    assert pick_pair(np.array([0.1, 0.6, 0.3, 0.0]), first, second) == expected


def test_pick_pair_breaks_ties_by_index() -> None:
    from src.explain.contrast import pick_pair

    assert pick_pair(np.array([0.25, 0.25, 0.25, 0.25])) == (0, 1)
