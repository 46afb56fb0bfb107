"""Faithfulness: deletion/insertion with ink erasure, ranks, randomisation on a copy."""

from __future__ import annotations

import numpy as np
import pytest


def test_spearman_handles_ties_and_constants() -> None:
    from src.explain.faithfulness import spearman

    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3]), np.array([3, 2, 1])) == pytest.approx(-1.0)
    assert spearman(np.zeros(5), np.arange(5)) == 0.0
    import scipy.stats as scipy_stats  # a second, independent Spearman implementation

    rng = np.random.default_rng(0)
    first, second = rng.integers(0, 4, 50), rng.integers(0, 4, 50)
    expected = scipy_stats.spearmanr(first, second).statistic
    assert spearman(first, second) == pytest.approx(expected)


def test_gradcam_beats_random_maps_on_the_top_half_model() -> None:
    from src.data.preprocess import strokes_to_model_input
    from src.explain.faithfulness import deletion_insertion, random_maps
    from src.visualization.gradcam import GradCAM
    from tests.test_explain_strokes import build_top_half_model

    model = build_top_half_model()
    images = np.stack(
        [strokes_to_model_input([[[0, 100], [y, y]], [[0, 100], [90, 95]]]) for y in (5, 15, 25)]
    )
    classes = np.zeros(3, np.int64)
    heatmaps = GradCAM(model).explain(images, classes).heatmaps
    cam = deletion_insertion(model, images, heatmaps, classes, "gradcam", steps=10)
    noise = deletion_insertion(model, images, random_maps(3, (64, 64)), classes, "random", steps=10)
    assert cam.fractions[0] == 0.0 and cam.fractions[-1] == 1.0
    # Nothing erased = the full image; everything erased = a blank canvas (logits 0, p = 0.5).
    assert cam.deletion[-1] == pytest.approx(0.5, abs=1e-4)
    assert cam.insertion[0] == pytest.approx(0.5, abs=1e-4)
    assert cam.deletion[0] == pytest.approx(cam.insertion[-1], abs=1e-5)
    assert cam.deletion_auc < noise.deletion_auc
    assert cam.insertion_auc > noise.insertion_auc


def test_randomisation_uses_a_copy_and_changes_the_maps(tiny_model, tiny_images) -> None:  # type: ignore[no-untyped-def]
    from src.explain.faithfulness import randomisation_check, randomised_copy
    from src.visualization.gradcam import GradCAM

    before = [weights.copy() for weights in tiny_model.get_weights()]
    copy, names = randomised_copy(tiny_model, 2, seed=3)
    assert names == ["logits", "last_conv"]
    assert copy is not tiny_model
    for original, kept in zip(before, tiny_model.get_weights()):
        np.testing.assert_array_equal(original, kept)
    check = randomisation_check(GradCAM(tiny_model), tiny_images[:3], depth=2, seed=3)
    assert check.randomised_layers == [["logits"], ["logits", "last_conv"]]
    assert all(-1.0 <= value < 0.99 for value in check.rank_correlations)
    for original, kept in zip(before, tiny_model.get_weights()):
        np.testing.assert_array_equal(original, kept)
