"""A batch's records: one ``ImageRecord`` per explained input, and the ``BatchAccumulator``
that collects them with the failures and the running mean maps (local and Ray runners alike).

Means are kept as running sums, so a batch of any size needs memory for one map per class and
per confused pair, not per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from src.batch.inputs import Failure
from src.utils.atomic_write import write_bytes_atomic
from src.utils.filenames import safe_filename

MEAN_MAPS_DIR = "mean_maps"
# Confused pairs shown in the report, most frequent first.
MOST_CONFUSED_COUNT = 10


@dataclass(frozen=True)
class ImageRecord:
    """One explained input, as written to batch_summary.json."""

    source: str
    overlay: str  # path of the overlay PNG relative to the output folder
    true_class: str | None
    predicted_class: str
    predicted_class_index: int
    confidence: float
    top_predictions: list[dict[str, Any]]
    second_class: str | None = None  # the runner-up (None for a one-class model)
    second_confidence: float | None = None
    # The open-set verdict (src.inference.open_set): False means "not sure".
    recognised: bool = True
    open_set_score: float | None = None

    @property
    def margin(self) -> float | None:
        """Top confidence minus the runner-up's: small means the model hesitated between two."""
        return None if self.second_confidence is None else self.confidence - self.second_confidence

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (a plain dict: dataclasses.asdict deep-copies, slowly, per image)."""
        return {
            "source": self.source,
            "overlay": self.overlay,
            "true_class": self.true_class,
            "predicted_class": self.predicted_class,
            "predicted_class_index": self.predicted_class_index,
            "confidence": self.confidence,
            "second_class": self.second_class,
            "second_confidence": self.second_confidence,
            "margin": self.margin,
            "correct": self.correct,
            "recognised": self.recognised,
            "open_set_score": self.open_set_score,
            "top_predictions": self.top_predictions,
        }

    @property
    def correct(self) -> bool | None:
        """Whether the prediction matches a known true class (None when unknown)."""
        return None if self.true_class is None else self.true_class == self.predicted_class


@dataclass(frozen=True)
class EmptyInput:
    """An input with no ink (``src.data.preprocess.is_empty``): nothing drawn, so no class,
    no map, and no part in accuracy or the mean maps."""

    source: str
    true_class: str | None


class MeanMap:
    """Running sums of heatmaps and inputs for one group of images."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.heatmap_sum = np.zeros(shape, np.float64)
        self.image_sum = np.zeros(shape, np.float64)
        self.count = 0

    def add(self, images: np.ndarray, heatmaps: np.ndarray) -> None:
        """Add a group of images (N, H, W[, 1]) and their maps (N, H, W)."""
        self.heatmap_sum += heatmaps.sum(axis=0, dtype=np.float64)
        self.image_sum += images.reshape(heatmaps.shape).sum(axis=0, dtype=np.float64)
        self.count += len(heatmaps)

    def overlay_png(self, alpha: float, colormap: str) -> bytes:
        """The mean map over the mean sketch, enlarged for the report."""
        from src.visualization.overlay import overlay_heatmap, to_png_bytes

        mean_image = self.image_sum / max(self.count, 1)
        mean_map = self.heatmap_sum / max(self.count, 1)
        return to_png_bytes(overlay_heatmap(mean_image, mean_map, alpha, colormap), scale=2)


class BatchAccumulator:
    """Collects records, failures and running mean maps while a batch runs."""

    def __init__(self, class_names: tuple[str, ...], image_shape: tuple[int, int]) -> None:
        self.class_names = class_names
        self.image_shape = image_shape
        self.records: list[ImageRecord] = []
        self.failures: list[Failure] = []
        self.empty: list[EmptyInput] = []
        self.by_predicted: dict[int, MeanMap] = {}
        self.by_pair: dict[tuple[str, str], MeanMap] = {}

    def add(self, records: list[ImageRecord], images: np.ndarray, heatmaps: np.ndarray) -> None:
        """Add explained inputs and fold their maps (N, H, W) into the means, a group at a time."""
        self.records.extend(records)
        predicted = np.array([record.predicted_class_index for record in records])
        for index in np.unique(predicted).tolist():
            if index not in self.by_predicted:
                self.by_predicted[index] = MeanMap(self.image_shape)
            rows = predicted == index
            self.by_predicted[index].add(images[rows], heatmaps[rows])
        pairs: dict[tuple[str, str], list[int]] = {}
        for row, record in enumerate(records):
            if record.correct is False and record.true_class is not None:
                pairs.setdefault((record.true_class, record.predicted_class), []).append(row)
        for pair, rows_of_pair in pairs.items():
            if pair not in self.by_pair:
                self.by_pair[pair] = MeanMap(self.image_shape)
            self.by_pair[pair].add(images[rows_of_pair], heatmaps[rows_of_pair])

    def output_failed(self, source: str, reason: str) -> None:
        """An explained input whose overlay could not be written: listed as a failure instead."""
        self.records = [record for record in self.records if record.source != source]
        self.failures.append(Failure(source, reason))

    def labelled(self) -> list[ImageRecord]:
        """Records whose true class is known."""
        return [record for record in self.records if record.true_class is not None]

    def class_metrics(self) -> dict[str, Any] | None:
        """Accuracy, per-class scores, confusion matrix and most confused pairs (None unlabelled)."""
        from src.evaluation.metrics import (
            confusion_matrix,
            most_confused_pairs,
            per_class_accuracy,
            precision_recall_f1,
        )

        labelled = self.labelled()
        if not labelled:
            return None
        index = {name: position for position, name in enumerate(self.class_names)}
        truth = np.array([index[record.true_class] for record in labelled])  # type: ignore[index]
        predicted = np.array([record.predicted_class_index for record in labelled])
        matrix = confusion_matrix(truth, predicted, len(self.class_names))
        return {
            "labelled": len(labelled),
            "accuracy": float(np.mean(truth == predicted)),
            "per_class_accuracy": per_class_accuracy(matrix, self.class_names),
            "per_class": precision_recall_f1(matrix, self.class_names),
            "confusion_matrix": {"classes": list(self.class_names), "matrix": matrix.tolist()},
            "most_confused": most_confused_pairs(matrix, self.class_names, MOST_CONFUSED_COUNT),
        }

    def write_mean_maps(self, output_dir: Path, alpha: float, colormap: str) -> dict[str, Any]:
        """Write one PNG per predicted class and per confused pair; return their relative paths."""
        per_class = {}
        for index, mean in sorted(self.by_predicted.items()):
            name = self.class_names[index]
            file = f"{MEAN_MAPS_DIR}/predicted_{safe_filename(name)}.png"
            write_bytes_atomic(output_dir / file, mean.overlay_png(alpha, colormap))
            per_class[name] = {"file": file, "count": mean.count}
        per_pair = {}
        for (true_class, predicted_class), mean in sorted(self.by_pair.items()):
            stem = safe_filename(f"{true_class}__as__{predicted_class}")
            file = f"{MEAN_MAPS_DIR}/confused_{stem}.png"
            write_bytes_atomic(output_dir / file, mean.overlay_png(alpha, colormap))
            per_pair[(true_class, predicted_class)] = file
        return {"per_class": per_class, "per_pair": per_pair}
