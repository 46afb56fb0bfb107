"""Faithfulness and sanity checks for class activation maps on sketches.

Deletion and insertion curves use an ink-erase baseline: a sketch's evidence is its ink, so
pixels are removed by setting them to the background (no ink, whatever the model's input
convention: the curves work on ink intensities and encode them in the model's ``InputSpec``),
never by blurring. Pixels are taken highest heat first, and the x axis is the fraction of *ink* pixels
changed, since background pixels carry nothing to remove. The model-parameter randomisation
check re-initialises the top layers of a copy of the model and compares the maps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from src.data.input_spec import InputSpec
from src.data.preprocess import to_batch

logger = logging.getLogger(__name__)

# Pixels at or below this value are background; the rest are ink that can be erased.
INK_FLOOR = 0.0
RANDOM_METHOD = "random"
# Masked images per forward pass when scoring curves.
FORWARD_BATCH = 512


@dataclass(frozen=True)
class Curves:
    """Mean deletion and insertion curves of one method over a set of images."""

    method: str
    fractions: np.ndarray  # (T,) fraction of ink pixels erased / inserted
    deletion: np.ndarray  # (T,) mean probability of the original class
    insertion: np.ndarray  # (T,)
    deletion_auc: float  # lower is better: the map found the evidence first
    insertion_auc: float  # higher is better

    def to_dict(self) -> dict[str, Any]:
        """Plain dict for JSON (curves rounded)."""
        return {
            "method": self.method,
            "fractions": np.round(self.fractions, 4).tolist(),
            "deletion": np.round(self.deletion, 4).tolist(),
            "insertion": np.round(self.insertion, 4).tolist(),
            "deletion_auc": round(self.deletion_auc, 4),
            "insertion_auc": round(self.insertion_auc, 4),
        }


def _area(fractions: np.ndarray, values: np.ndarray) -> float:
    """Trapezoid area under a curve sampled at ``fractions``."""
    return float(np.sum((values[1:] + values[:-1]) * np.diff(fractions)) / 2.0)


def ink_order(image: np.ndarray, heatmap: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Flat indices of the ink pixels of one image, highest heat first (ties broken at random)."""
    flat_image = image.reshape(-1)
    flat_heat = heatmap.reshape(-1)
    ink = np.flatnonzero(flat_image > INK_FLOOR)
    jitter = rng.random(ink.size)
    return ink[np.lexsort((jitter, -flat_heat[ink]))]


def _perturbed(image: np.ndarray, order: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """Deletion then insertion images for every fraction: (2, T, H, W, 1)."""
    flat = image.reshape(-1)
    deleted, inserted = [], []
    for fraction in fractions:
        chosen = order[: int(round(fraction * order.size))]
        erased = flat.copy()
        erased[chosen] = 0.0
        grown = np.zeros_like(flat)
        grown[chosen] = flat[chosen]
        deleted.append(erased.reshape(image.shape))
        inserted.append(grown.reshape(image.shape))
    return np.stack([np.stack(deleted), np.stack(inserted)])


def probabilities_of(model: Any, images: np.ndarray) -> np.ndarray:
    """Model output probabilities in chunks of ``FORWARD_BATCH`` (inference mode)."""
    from keras import ops

    chunks = [
        ops.convert_to_numpy(model(images[start : start + FORWARD_BATCH], training=False))
        for start in range(0, len(images), FORWARD_BATCH)
    ]
    return np.concatenate(chunks).astype(np.float32)


def deletion_insertion(
    model: Any,
    images: np.ndarray,
    heatmaps: np.ndarray,
    class_indices: np.ndarray,
    method: str,
    steps: int = 20,
    seed: int = 0,
    spec: InputSpec | None = None,
) -> Curves:
    """Mean deletion and insertion curves and their AUCs for one method's maps.

    Args:
        model: the Keras model the maps explain.
        images: (N, H, W, 1) model inputs.
        heatmaps: (N, H, W) maps, any non-negative scale.
        class_indices: (N,) class whose probability is tracked.
        method: the name reported.
        steps: curve resolution (fractions 0, 1/steps, ..., 1).
        seed: tie-breaking seed.
        spec: the model's input convention; None: ``images`` are ink intensities already
            (light ink, 0-1).
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    batch = to_batch(images)
    if spec is not None:
        batch = spec.decode(batch)[..., np.newaxis]
    rng = np.random.default_rng(seed)
    fractions = np.linspace(0.0, 1.0, steps + 1)
    stacked = np.stack(
        [
            _perturbed(image, ink_order(image, heat, rng), fractions)
            for image, heat in zip(batch, heatmaps)
        ]
    )
    perturbed = stacked.reshape(-1, *batch.shape[1:])
    if spec is not None:
        perturbed = spec.encode(perturbed)
    probabilities = probabilities_of(model, perturbed)
    probabilities = probabilities.reshape(len(batch), 2, len(fractions), -1)
    picked = np.take_along_axis(
        probabilities, np.asarray(class_indices).reshape(-1, 1, 1, 1), axis=-1
    )[..., 0]
    deletion, insertion = picked[:, 0].mean(axis=0), picked[:, 1].mean(axis=0)
    return Curves(
        method,
        fractions,
        deletion,
        insertion,
        _area(fractions, deletion),
        _area(fractions, insertion),
    )


def random_maps(count: int, size: tuple[int, int], seed: int = 0) -> np.ndarray:
    """Uniform random maps: the baseline every method must beat."""
    return np.random.default_rng(seed).random((count, *size)).astype(np.float32)


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman rank correlation of two arrays (average ranks for ties; 0 if either is constant)."""
    ranks = [
        _average_ranks(np.asarray(values, dtype=np.float64).reshape(-1))
        for values in (first, second)
    ]
    centred = [rank - rank.mean() for rank in ranks]
    denominator = float(np.sqrt((centred[0] ** 2).sum() * (centred[1] ** 2).sum()))
    return float((centred[0] * centred[1]).sum() / denominator) if denominator > 0 else 0.0


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n with tied values sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.concatenate([[True], sorted_values[1:] != sorted_values[:-1]])
    group = np.cumsum(starts) - 1
    first_rank = np.flatnonzero(starts)
    counts = np.diff(np.append(first_rank, values.size))
    ranks = np.empty(values.size)
    ranks[order] = first_rank[group] + (counts[group] + 1) / 2.0
    return ranks


@dataclass(frozen=True)
class RandomisationCheck:
    """Mean Spearman correlation between trained and randomised maps, per cascade depth."""

    method: str
    randomised_layers: list[list[str]] = field(default_factory=list)  # cumulative, top first
    rank_correlations: list[float] = field(default_factory=list)


def randomised_copy(model: Any, layer_count: int, seed: int = 0) -> tuple[Any, list[str]]:
    """A copy of ``model`` with its top ``layer_count`` weighted layers re-initialised.

    The caller's model is never touched: the copy is built with ``clone_model`` and gets the
    trained weights first, then fresh initial values for the chosen layers.

    Returns:
        (copy, names of the re-initialised layers, top first).
    """
    steps = list(cascade_randomised(model, layer_count, seed))
    return steps[-1] if steps else (_trained_copy(model, seed), [])


def _trained_copy(model: Any, seed: int) -> Any:
    """A clone of ``model`` with its trained weights, after seeding Keras's random draws."""
    import keras

    keras.utils.set_random_seed(seed)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def cascade_randomised(model: Any, depth: int, seed: int = 0) -> Iterator[tuple[Any, list[str]]]:
    """One copy of ``model``, yielded after each of its top 1..depth weighted layers is reset.

    The same copy is reset one more layer at a time (in place), so a ``GradCAM`` built on it
    once serves every depth: its compiled function reads the copy's variables, whatever their
    values, instead of being traced again for a new model per depth.
    """
    import keras

    copy = _trained_copy(model, seed)
    weighted = [layer for layer in copy.layers if layer.weights][::-1][:depth]
    for count, layer in enumerate(weighted, start=1):
        for variable in layer.weights:
            attribute = variable.path.rsplit("/", 1)[-1]
            initializer = getattr(layer, f"{attribute}_initializer", None)
            if initializer is None:
                initializer = keras.initializers.GlorotUniform(seed=seed)
            variable.assign(initializer(variable.shape, dtype=variable.dtype))
        yield copy, [each.name for each in weighted[:count]]


def randomisation_check(
    gradcam: Any, images: np.ndarray, depth: int = 3, seed: int = 0
) -> RandomisationCheck:
    """Cascading randomisation: maps of copies with the top 1..depth weighted layers reset.

    Maps are compared for the trained model's predicted class, so only the weights differ.
    """
    return randomisation_checks([gradcam], images, depth, seed)[0]


def randomisation_checks(
    gradcams: list[Any], images: np.ndarray, depth: int = 3, seed: int = 0
) -> list[RandomisationCheck]:
    """``randomisation_check`` for several methods of one model and layer, on one copy.

    All methods read the same randomised copy through one engine, so the copy is sliced and
    compiled once for every method and depth rather than once per method (the cascade resets
    the copy's weights in place, and the compiled call reads them at each run).
    """
    from src.visualization.cam_engine import CamEngine
    from src.visualization.gradcam import GradCAM

    batch = to_batch(images)
    trained = [gradcam.explain(batch) for gradcam in gradcams]
    checks = [RandomisationCheck(gradcam.method) for gradcam in gradcams]
    copy_cams: list[Any] = []
    for copy, names in cascade_randomised(gradcams[0].model, depth, seed):
        if not copy_cams:
            engines = {each.layer_name: CamEngine(copy, each.layer_name) for each in gradcams}
            copy_cams = [
                GradCAM(copy, method=each.method, engine=engines[each.layer_name])
                for each in gradcams
            ]
        for copy_cam, reference, check in zip(copy_cams, trained, checks):
            maps = copy_cam.explain(batch, reference.class_indices).heatmaps
            correlations = [spearman(a, b) for a, b in zip(reference.heatmaps, maps)]
            check.randomised_layers.append(names)
            check.rank_correlations.append(float(np.mean(correlations)))
            logger.info(
                "%s, randomised %s: mean rank correlation %.3f",
                check.method,
                names,
                check.rank_correlations[-1],
            )
    return checks
