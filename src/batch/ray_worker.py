"""The Ray side of ``batch --ray``: one stateful actor per model replica, and its part files.

Each actor loads the model once into an ``Explainer`` and explains the batches Ray Data hands
it with the local runner's own steps (``InputOrigin.decode``, ``explain_chunk``,
``write_overlays``), so overlays and
records are the local run's. For every batch it writes, atomically:
    results.parquet/part-<key>.parquet   one row per explained input (``RESULT_COLUMNS``)
    mean_map_sums/part-<key>.npz         that batch's per-class and per-pair map sums
``<key>`` is a hash of the batch's (source, content hash) pairs, so a batch retried after its
actor died rewrites the same files instead of adding a second copy. The npz is written first:
a parquet part present means its sums are too. To the driver it returns only a small status row
per input (``STATUS_COLUMNS``); no map or image travels back.

This module imports ray only inside the actor: the driver (``src.batch.ray_runner``) does.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from src.batch.explain_step import explain_chunk
from src.batch.inputs import BatchInput, Failure, InputOrigin, failure_reason
from src.batch.overlays import OVERLAYS_DIR, write_overlays
from src.batch.records import BatchAccumulator, ImageRecord, MeanMap
from src.batch.run_folder import RESULTS_DIR, SUMS_DIR
from src.data.input_spec import InputSpec
from src.data.labels import LabelMap
from src.errors import SketchError
from src.explain.map_agreement import ink_share
from src.utils.atomic_write import write_bytes_atomic

logger = logging.getLogger(__name__)

STATUS_COLUMNS = ("source", "sha256", "status", "reason")
RESULT_COLUMNS = (
    "path",
    "label",
    "sha256",
    "overlay",
    "predicted_class",
    "predicted_class_index",
    "confidence",
    "top_classes",
    "top_class_indices",
    "top_confidences",
    "second_class",
    "second_confidence",
    "recognised",
    "open_set_score",
    "peak_row",
    "peak_col",
    "map_mean",
    "ink_share",
    "settings",
)
# The arrays of a part's sums file (``sums_to_npz``).
SUMS_ARRAYS = ("class_indices", "class_heatmaps", "class_images", "class_counts")


def content_sha256(row: dict[str, Any]) -> str:
    """The SHA-256 of an input's content: an image file's bytes, a drawing's strokes as JSON,
    a bitmap's pixels (the resume key, with the source).

    Raises:
        OSError: an image file that cannot be read.
    """
    if row["kind"] == "image":
        return hashlib.sha256(Path(row["path"]).read_bytes()).hexdigest()
    return hashlib.sha256(row["payload"]).hexdigest()


def origin_from_row(row: dict[str, Any]) -> InputOrigin:
    """The ``InputOrigin`` a dataset row was made from (the driver's ``_dataset_rows``), so the
    actor decodes it with the local runner's own step (``InputOrigin.decode``)."""
    path = Path(row["path"])
    if row["kind"] == "image":
        return InputOrigin("image", path)
    if row["kind"] == "drawing":
        return InputOrigin("drawing", path, json.loads(row["payload"]))
    side = int(round(len(row["payload"]) ** 0.5))
    return InputOrigin("bitmap", path, np.frombuffer(row["payload"], np.uint8).reshape(side, side))


def part_key(keys: list[tuple[str, ...]]) -> str:
    """A name for a batch's part files that depends only on the rows' keys (input and
    settings), so a retried batch rewrites its own files."""
    digest = hashlib.sha256()
    for key in sorted(keys):
        digest.update(("\0".join(key) + "\n").encode())
    return digest.hexdigest()[:32]


class _FixedNamer:
    """Overlay paths chosen by the driver (``OverlayNamer`` in input order, as a local run)."""

    def __init__(self, directory: Path, names: dict[str, str]) -> None:
        self.directory = directory
        self.names = names

    def path_for(self, source: str) -> Path:
        """The overlay path the driver gave ``source``."""
        return self.directory / self.names[source]


class _MapSummaries(BatchAccumulator):
    """A BatchAccumulator that also keeps each explained input's map summary."""

    def __init__(self, class_names: tuple[str, ...], image_shape: tuple[int, int]) -> None:
        super().__init__(class_names, image_shape)
        self.map_summary: dict[str, dict[str, Any]] = {}

    def add(self, records: list[ImageRecord], images: np.ndarray, heatmaps: np.ndarray) -> None:
        """Fold the maps into the sums, and summarise each map for results.parquet."""
        super().add(records, images, heatmaps)
        for record, image, heatmap in zip(records, images, heatmaps):
            self.map_summary[record.source] = map_summary(image, heatmap)


def map_summary(image: np.ndarray, heatmap: np.ndarray) -> dict[str, Any]:
    """Peak location, mean, and the share of the map's mass on the sketch's ink (None for an
    all-zero map)."""
    peak_row, peak_col = np.unravel_index(int(np.argmax(heatmap)), heatmap.shape)
    share = ink_share(heatmap, image)
    return {
        "peak_row": int(peak_row),
        "peak_col": int(peak_col),
        "map_mean": float(heatmap.mean(dtype=np.float64)),
        "ink_share": None if np.isnan(share) else share,
    }


def sums_to_npz(accumulator: BatchAccumulator) -> bytes:
    """The accumulator's per-class and per-pair running sums as npz bytes."""
    shape = (0, *accumulator.image_shape)

    def stack(means: list[MeanMap], part: str) -> np.ndarray:
        return np.stack([getattr(mean, part) for mean in means]) if means else np.zeros(shape)

    classes = sorted(accumulator.by_predicted)
    pairs = sorted(accumulator.by_pair)
    class_means = [accumulator.by_predicted[index] for index in classes]
    pair_means = [accumulator.by_pair[pair] for pair in pairs]
    buffer = io.BytesIO()
    np.savez(
        buffer,
        class_indices=np.array(classes, np.int64),
        class_heatmaps=stack(class_means, "heatmap_sum"),
        class_images=stack(class_means, "image_sum"),
        class_counts=np.array([mean.count for mean in class_means], np.int64),
        pair_names=np.array(pairs, dtype=str).reshape(-1, 2),
        pair_heatmaps=stack(pair_means, "heatmap_sum"),
        pair_images=stack(pair_means, "image_sum"),
        pair_counts=np.array([mean.count for mean in pair_means], np.int64),
    )
    return buffer.getvalue()


def sums_row_count(npz_path: Path) -> int:
    """The number of inputs a part's sums file counts (its per-class counts added up).

    Raises:
        OSError, ValueError, KeyError: a missing, truncated or foreign sums file.
    """
    with np.load(npz_path, allow_pickle=False) as sums:
        arrays = {name: sums[name] for name in SUMS_ARRAYS}
    length = len(arrays["class_indices"])
    if any(len(array) != length for array in arrays.values()):
        raise ValueError(f"{npz_path.name}: arrays of different lengths")
    return int(arrays["class_counts"].sum())


def add_sums(accumulator: BatchAccumulator, npz_path: Path) -> None:
    """Fold a part's sums (``sums_to_npz``) into the driver's accumulator."""
    with np.load(npz_path, allow_pickle=False) as sums:
        groups = [
            (accumulator.by_predicted, [int(i) for i in sums["class_indices"]], "class"),
            (accumulator.by_pair, [tuple(pair) for pair in sums["pair_names"].tolist()], "pair"),
        ]
        for target, keys, prefix in groups:
            heatmaps, images = sums[f"{prefix}_heatmaps"], sums[f"{prefix}_images"]
            counts = sums[f"{prefix}_counts"]
            for position, key in enumerate(keys):
                mean = target.setdefault(key, MeanMap(accumulator.image_shape))  # type: ignore[arg-type]
                mean.heatmap_sum += heatmaps[position]
                mean.image_sum += images[position]
                mean.count += int(counts[position])


def result_row(
    record: ImageRecord, sha: str, summary: dict[str, Any], settings: str
) -> dict[str, Any]:
    """One results.parquet row (``settings``: the run's ``settings_key``)."""
    top = record.top_predictions
    return {
        "path": record.source,
        "label": record.true_class,
        "sha256": sha,
        "overlay": record.overlay,
        "predicted_class": record.predicted_class,
        "predicted_class_index": record.predicted_class_index,
        "confidence": record.confidence,
        "top_classes": [entry["class_name"] for entry in top],
        "top_class_indices": [entry["class_index"] for entry in top],
        "top_confidences": [entry["confidence"] for entry in top],
        "second_class": record.second_class,
        "second_confidence": record.second_confidence,
        "recognised": record.recognised,
        "open_set_score": record.open_set_score,
        **summary,
        "settings": settings,
    }


def record_from_row(row: dict[str, Any]) -> ImageRecord:
    """The ImageRecord of a results.parquet row (for batch_summary.json and report.html)."""
    top = [
        {"rank": rank, "class_name": name, "class_index": index, "confidence": confidence}
        for rank, (name, index, confidence) in enumerate(
            zip(row["top_classes"], row["top_class_indices"], row["top_confidences"]), start=1
        )
    ]
    return ImageRecord(
        source=row["path"],
        overlay=row["overlay"],
        true_class=row["label"],
        predicted_class=row["predicted_class"],
        predicted_class_index=row["predicted_class_index"],
        confidence=row["confidence"],
        top_predictions=top,
        second_class=row["second_class"],
        second_confidence=row["second_confidence"],
        recognised=row["recognised"],
        open_set_score=row["open_set_score"],
    )


def limit_tensorflow_threads(cpus: int) -> None:
    """Size TensorFlow's thread pools to the CPUs Ray reserved for this actor, so replicas on
    one machine do not each spread over every core and fight over them."""
    from src.utils.tensorflow_logging import configure_tensorflow_logging

    os.environ["OMP_NUM_THREADS"] = str(cpus)
    configure_tensorflow_logging()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(cpus)
        tf.config.threading.set_inter_op_parallelism_threads(max(1, min(2, cpus)))
    except RuntimeError:
        # TensorFlow was already initialised in this process; its pools stay as they are.
        logger.warning("TensorFlow threads already set in this process; not resized to %d", cpus)


class ExplainActor:
    """A model replica: ``map_batches`` calls it with a pyarrow batch of dataset rows.

    Args:
        model_path, class_names, method, layer: the model and how to explain it.
        input_spec: the driver's input convention for the model (``InputSpec``), so every
            replica feeds it exactly as the driver resolved it (options, card, defaults).
        options: the run's ``BatchOptions`` (top-k, colours, overlay scale).
        output_dir: where overlays and part files go (shared storage on a cluster).
        overlay_names: source -> overlay file name, chosen by the driver.
        done: a one-element list holding the ObjectRef of the row keys (source, sha256, label,
            settings) already explained in this output folder (a list, so Ray passes the ref,
            not its value).
        cpus: CPUs reserved for the actor (TensorFlow's threads).
        settings: the run's ``settings_key``, stored with every row.
    """

    def __init__(
        self,
        model_path: str,
        class_names: tuple[str, ...],
        method: str,
        layer: str | None,
        options: Any,
        output_dir: str,
        overlay_names: list[Any],
        done: list[Any],
        cpus: int,
        settings: str,
        input_spec: InputSpec | None = None,
    ) -> None:
        import ray

        # What loading the model needs, kept until the first batch that needs the model.
        self._model = (model_path, tuple(class_names), method, layer, cpus)
        # The driver always resolves the convention; decoding an input needs no model then.
        self.input_spec = input_spec
        self._explainer: Any = None
        self.options = options
        self.output_dir = Path(output_dir)
        self.namer = _FixedNamer(self.output_dir / OVERLAYS_DIR, ray.get(overlay_names[0]))
        self.done: frozenset[tuple[str, str, str, str]] = ray.get(done[0])
        self.settings = settings

    @property
    def explainer(self) -> Any:
        """The replica's ``Explainer``, loaded on the first batch with something to explain.

        Loading waits for that batch because a resumed run often finds every input of an
        actor's batches done: such an actor then never imports TensorFlow or reads the model.
        """
        if self._explainer is None:
            model_path, class_names, method, layer, cpus = self._model
            limit_tensorflow_threads(cpus)
            from src.inference.predictor import load_model_and_labels
            from src.service.explainer import Explainer

            model, labels = load_model_and_labels(model_path, LabelMap(class_names))
            self._explainer = Explainer(model, labels, method, layer, model_path, self.input_spec)
            self._explainer.cam()
        return self._explainer

    def __call__(self, batch: Any) -> Any:
        """Explain a batch's new inputs; return one status row per input."""
        import pyarrow as pa

        statuses: list[dict[str, Any]] = []
        chunk: list[BatchInput] = []
        decoded: list[np.ndarray | Failure] = []
        hashes: dict[str, str] = {}
        for row in batch.to_pylist():
            source = row["source"]
            try:
                sha = content_sha256(row)
            except OSError as error:
                statuses.append(_status(source, "", "failed", failure_reason(error)))
                continue
            if (source, sha, row["true_class"] or "", self.settings) in self.done:
                statuses.append(_status(source, sha, "skipped"))
                continue
            hashes[source] = sha
            item = BatchInput(source, row["true_class"], origin_from_row(row))
            chunk.append(item)
            try:
                decoded.append(item.load(self.input_spec or self.explainer.input_spec))
            except (SketchError, OSError, ValueError) as error:
                decoded.append(Failure(source, failure_reason(error)))
        if not chunk:  # every input done or unreadable: nothing needs the model
            return pa.Table.from_pylist(statuses, schema=status_schema())
        accumulator = _MapSummaries(self.explainer.class_names, self.explainer.gradcam.input_size)
        written = explain_chunk(
            self.explainer, chunk, decoded, accumulator, self.namer, self.options
        )
        for failure in write_overlays(written, self.options.overlay_scale):
            accumulator.output_failed(failure.source, failure.reason)
        if accumulator.records:
            self._write_part(accumulator, hashes)
        statuses.extend(
            _status(record.source, hashes[record.source], "explained")
            for record in accumulator.records
        )
        statuses.extend(
            _status(entry.source, hashes[entry.source], "empty") for entry in accumulator.empty
        )
        statuses.extend(
            _status(failure.source, hashes.get(failure.source, ""), "failed", failure.reason)
            for failure in accumulator.failures
        )
        return pa.Table.from_pylist(statuses, schema=status_schema())

    def _write_part(self, accumulator: _MapSummaries, hashes: dict[str, str]) -> None:
        """The batch's sums, then its results part (the part's presence marks it done)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        key = part_key(
            [
                (record.source, hashes[record.source], record.true_class or "", self.settings)
                for record in accumulator.records
            ]
        )
        write_bytes_atomic(self.output_dir / SUMS_DIR / f"part-{key}.npz", sums_to_npz(accumulator))
        rows = [
            result_row(
                record,
                hashes[record.source],
                accumulator.map_summary[record.source],
                self.settings,
            )
            for record in accumulator.records
        ]
        buffer = pa.BufferOutputStream()
        pq.write_table(pa.Table.from_pylist(rows, schema=result_schema()), buffer)
        path = self.output_dir / RESULTS_DIR / f"part-{key}.parquet"
        write_bytes_atomic(path, buffer.getvalue().to_pybytes())


def _status(source: str, sha: str, status: str, reason: str | None = None) -> dict[str, Any]:
    return {"source": source, "sha256": sha, "status": status, "reason": reason}


def status_schema() -> Any:
    """The pyarrow schema of the rows actors return to the driver."""
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in STATUS_COLUMNS])


def result_schema() -> Any:
    """The pyarrow schema of results.parquet."""
    import pyarrow as pa

    return pa.schema(
        [
            ("path", pa.string()),
            ("label", pa.string()),
            ("sha256", pa.string()),
            ("overlay", pa.string()),
            ("predicted_class", pa.string()),
            ("predicted_class_index", pa.int64()),
            ("confidence", pa.float64()),
            ("top_classes", pa.list_(pa.string())),
            ("top_class_indices", pa.list_(pa.int64())),
            ("top_confidences", pa.list_(pa.float64())),
            ("second_class", pa.string()),
            ("second_confidence", pa.float64()),
            ("recognised", pa.bool_()),
            ("open_set_score", pa.float64()),
            ("peak_row", pa.int64()),
            ("peak_col", pa.int64()),
            ("map_mean", pa.float64()),
            ("ink_share", pa.float64()),
            ("settings", pa.string()),
        ]
    )
