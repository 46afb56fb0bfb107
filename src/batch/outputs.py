"""A finished batch's files: mean maps, batch_summary.json/.csv, the optional confusion figure
and report.html, the same for the local and the Ray runner."""

from __future__ import annotations

import csv
import hashlib
import io
import time
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from src.audit import AUDIT_FIGURE, AUDIT_JSON
from src.batch.inputs import Discovery
from src.batch.options import BatchOptions
from src.batch.records import BatchAccumulator
from src.evaluation.label_check import check_labels
from src.utils.atomic_write import write_json_atomic, write_text_atomic

if TYPE_CHECKING:
    from src.service.explainer import Explainer

CONFUSION_FIGURE = "confusion_matrix.png"
REPORT_NAME = "report.html"
CSV_COLUMNS = (
    "source",
    "status",
    "true_class",
    "predicted_class",
    "predicted_class_index",
    "confidence",
    "second_class",
    "second_confidence",
    "margin",
    "correct",
    "recognised",
    "open_set_score",
    "overlay",
    "reason",
)


def write_batch_outputs(
    engine: Explainer,
    accumulator: BatchAccumulator,
    discovery: Discovery,
    images_dir: Path,
    output_dir: Path,
    options: BatchOptions,
    started: datetime,
    clock: float,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Mean maps, batch_summary.json/.csv, the confusion figure and report.html of a finished
    batch (local or on Ray); ``extra`` adds fields to the summary.

    Returns:
        The summary written to batch_summary.json.
    """
    from src.reports.batch_report import render_report

    mean_maps = accumulator.write_mean_maps(output_dir, options.alpha, options.colormap)
    header = {
        "images_dir": str(images_dir),
        "model_path": str(engine.model_path) if engine.model_path is not None else None,
        "model_sha256": file_sha256(engine.model_path),
        "started_at": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - clock, 3),
        "layer": engine.gradcam.layer_name,
        "method": engine.gradcam.method,
        "colormap": options.colormap,
        "ignored": discovery.ignored,
        "truncated_files": discovery.truncated,
        **(extra or {}),
    }
    summary = build_summary(accumulator, mean_maps, header)
    if options.confusion_figure and summary["class_metrics"] is not None:
        _write_confusion_figure(summary["class_metrics"]["confusion_matrix"], output_dir)
    write_summary_files(summary, output_dir)
    audit_files = [name for name in (AUDIT_JSON, AUDIT_FIGURE) if (output_dir / name).is_file()]
    report = render_report(summary, options.low_confidence, audit_files, output_dir, options.order)
    write_text_atomic(output_dir / REPORT_NAME, report)
    return summary


def build_summary(
    accumulator: BatchAccumulator, mean_maps: dict[str, Any], header: dict[str, Any]
) -> dict[str, Any]:
    """Everything batch_summary.json holds, in one JSON-ready dict."""
    metrics = accumulator.class_metrics()
    if metrics is not None:
        for pair in metrics["most_confused"]:
            pair["mean_map"] = mean_maps["per_pair"].get((pair["true"], pair["predicted"]))
    records = accumulator.records
    return {
        **header,
        "total": len(records) + len(accumulator.failures) + len(accumulator.empty),
        "succeeded": len(records),
        "failed": len(accumulator.failures),
        # Inputs with no ink: no class, no map, outside accuracy and the mean maps.
        "empty": len(accumulator.empty),
        "empty_inputs": [asdict(entry) for entry in accumulator.empty],
        "not_sure": sum(not record.recognised for record in records),
        "accuracy": metrics["accuracy"] if metrics else None,
        "class_metrics": metrics,
        "label_check": _label_check(metrics),
        "mean_maps": mean_maps["per_class"],
        "images": [record.to_dict() for record in records],
        "failures": [asdict(failure) for failure in accumulator.failures],
    }


def _label_check(metrics: dict[str, Any] | None) -> dict[str, Any]:
    """Whether the label mapping fits the model, from the labelled inputs' confusion matrix."""
    if metrics is None:
        return {"suspect": False, "reason": "no labelled inputs"}
    confusion = metrics["confusion_matrix"]
    return check_labels(confusion["matrix"], confusion["classes"])


def write_summary_files(summary: dict[str, Any], output_dir: Path) -> None:
    """batch_summary.json and batch_summary.csv (one row per input, failures included)."""
    write_json_atomic(output_dir / "batch_summary.json", summary)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for image in summary["images"]:
        row = {column: image.get(column) for column in CSV_COLUMNS}
        numbers = {
            column: f"{image[column]:.6f}"
            for column in ("confidence", "second_confidence", "margin", "open_set_score")
            if image.get(column) is not None
        }
        writer.writerow({**row, **numbers, "status": "ok"})
    for entry in summary.get("empty_inputs", []):
        writer.writerow({**entry, "status": "empty", "reason": "nothing drawn"})
    for failure in summary["failures"]:
        writer.writerow(
            {"source": failure["source"], "status": "failed", "reason": failure["reason"]}
        )
    write_text_atomic(output_dir / "batch_summary.csv", buffer.getvalue())


def file_sha256(path: Path | None) -> str | None:
    """The SHA-256 of a file in hex (None when it cannot be read, or for an in-memory model)."""
    if path is None:
        return None
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _write_confusion_figure(confusion: dict[str, Any], output_dir: Path) -> None:
    """confusion_matrix.png beside the report; its name is added to the summary's entry."""
    from src.visualization.figures import save_confusion_matrix

    save_confusion_matrix(confusion["matrix"], confusion["classes"], output_dir / CONFUSION_FIGURE)
    confusion["figure"] = CONFUSION_FIGURE
