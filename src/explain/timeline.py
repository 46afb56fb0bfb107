"""Timelines: the prediction and its map after each stroke ("when did it become a cat?")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from src.data.preprocess import strokes_to_model_input
from src.data.raster import validate_strokes
from src.inference.ranking import top_classes


@dataclass(frozen=True)
class Timeline:
    """Step k shows the drawing made of its first k + 1 strokes, fitted as the model sees it."""

    images: np.ndarray  # (S, H, W, 1) model inputs of each prefix
    heatmaps: np.ndarray  # (S, H, W) map of each prefix's predicted class
    predicted: np.ndarray  # (S,) predicted class after each stroke
    probabilities: np.ndarray  # (S, C)

    @property
    def final_class(self) -> int:
        """The class predicted for the whole drawing."""
        return int(self.predicted[-1])

    @property
    def settled_at(self) -> int:
        """First stroke index (0-based) from which the prediction never changes again."""
        changes = np.flatnonzero(self.predicted != self.final_class)
        return int(changes[-1] + 1) if changes.size else 0


def build_timeline(strokes: object, gradcam: Any) -> Timeline:
    """Explain every prefix of a drawing in one batched call.

    Args:
        strokes: ``[[xs, ys], ...]`` in drawing order.
        gradcam: a ``GradCAM``; each prefix is fed in its ``input_spec``.

    Raises:
        InvalidImageError: malformed strokes.
    """
    arrays = validate_strokes(strokes)
    spec = gradcam.input_spec
    # Each prefix is rendered and fitted on its own, as the model would see the unfinished sketch.
    prefixes = [
        strokes_to_model_input([points.tolist() for points in arrays[:count]], spec=spec)
        for count in range(1, len(arrays) + 1)
    ]
    images = np.stack(prefixes)
    result = gradcam.explain(images)
    return Timeline(
        images=images,
        heatmaps=result.heatmaps,
        predicted=result.class_indices,
        probabilities=result.probabilities,
    )


def timeline_to_dict(timeline: Timeline, class_names: Any = None, top_k: int = 3) -> dict[str, Any]:
    """JSON-ready timeline: per step the top-k classes and the final class's confidence."""

    def name(index: int) -> str:
        return str(class_names[index]) if class_names is not None else str(index)

    final = timeline.final_class
    steps = []
    for step, row in enumerate(timeline.probabilities):
        order = top_classes(row, top_k)
        steps.append(
            {
                "strokes": step + 1,
                "predicted": name(int(timeline.predicted[step])),
                "confidence": round(float(row[timeline.predicted[step]]), 4),
                "final_class_confidence": round(float(row[final]), 4),
                "top": [
                    {"class_name": name(int(i)), "confidence": round(float(row[i]), 4)}
                    for i in order
                ],
            }
        )
    return {
        "final_class": name(final),
        "settled_after_strokes": timeline.settled_at + 1,
        "steps": steps,
    }
