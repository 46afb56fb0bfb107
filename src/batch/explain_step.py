"""The one explain-a-chunk step every runner shares: a compiled Grad-CAM call, the records, the
mean-map sums and the overlays to write."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from src.batch.inputs import BatchInput, Failure
from src.batch.options import BatchOptions
from src.batch.overlays import OVERLAYS_DIR
from src.batch.records import BatchAccumulator, EmptyInput, ImageRecord

if TYPE_CHECKING:
    from src.service.explainer import Explainer


class OverlayPaths(Protocol):
    """Where each input's overlay goes (``OverlayNamer`` locally, the driver's names on Ray)."""

    def path_for(self, source: str) -> Path:
        """The overlay path of ``source``."""
        ...


def explain_chunk(
    engine: Explainer,
    chunk: list[BatchInput],
    decoded: list[np.ndarray | Failure],
    accumulator: BatchAccumulator,
    namer: OverlayPaths,
    options: BatchOptions,
) -> list[tuple[str, Path, np.ndarray]]:
    """One compiled Grad-CAM call for the chunk's readable inputs; inputs with no ink are
    counted apart (``accumulator.empty``) and never explained.

    Returns:
        (source, overlay path, overlay RGB) for each readable input, to be written.
    """
    from src.inference.predictor import rank_classes
    from src.visualization.overlay import overlay_heatmaps

    readable = [
        (item, array) for item, array in zip(chunk, decoded) if not isinstance(array, Failure)
    ]
    accumulator.failures.extend(array for array in decoded if isinstance(array, Failure))
    if not readable:
        return []
    images = np.stack([array for _, array in readable])
    empty = engine.empty_inputs(images)
    accumulator.empty.extend(
        EmptyInput(item.source, item.true_class)
        for (item, _), blank in zip(readable, empty)
        if blank
    )
    readable = [pair for pair, blank in zip(readable, empty) if not blank]
    if not readable:
        return []
    images = images[~empty]
    result = engine.gradcam.explain(images)
    records, paths = [], []
    verdicts = engine.open_set(result)
    for (item, _), probabilities, verdict in zip(readable, result.probabilities, verdicts):
        # At least two ranked, for the runner-up and the margin, whatever --top_k asks.
        ranked = rank_classes(probabilities, engine.labels, max(options.top_k, 2))
        second = ranked[1] if len(ranked) > 1 else None
        paths.append(namer.path_for(item.source))
        records.append(
            ImageRecord(
                source=item.source,
                overlay=f"{OVERLAYS_DIR}/{paths[-1].name}",
                true_class=item.true_class,
                predicted_class=ranked[0].class_name,
                predicted_class_index=ranked[0].class_index,
                confidence=ranked[0].confidence,
                top_predictions=[
                    {
                        "rank": entry.rank,
                        "class_name": entry.class_name,
                        "class_index": entry.class_index,
                        "confidence": entry.confidence,
                    }
                    for entry in ranked[: options.top_k]
                ],
                second_class=second.class_name if second else None,
                second_confidence=second.confidence if second else None,
                recognised=verdict.recognised,
                open_set_score=verdict.score,
            )
        )
    # Mean inputs and overlays show what the model sees, whatever its convention.
    seen = engine.seen(images)
    accumulator.add(records, seen, result.heatmaps)
    # The whole chunk's overlays in one vectorised pass; only the PNG encoding is per image.
    overlays = overlay_heatmaps(seen, result.heatmaps, options.alpha, options.colormap)
    return [
        (record.source, path, overlay) for record, path, overlay in zip(records, paths, overlays)
    ]
