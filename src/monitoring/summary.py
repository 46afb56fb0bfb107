"""Summarise an attention log: counts over time, the most frequent low-confidence classes and
their mean maps, as JSON (the HTML page is src.reports.monitor_summary)."""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from src.data.json_input import JSONInputError, parse_json
from src.errors import DataFormatError

logger = logging.getLogger(__name__)

# Time bucket -> how many characters of the ISO timestamp identify it.
BUCKET_WIDTHS = {"minute": 16, "hour": 13, "day": 10}


def log_files(log_path: str | Path) -> list[Path]:
    """The log and its rotated files, oldest first (``log.N`` ... ``log.1``, ``log``)."""
    path = Path(log_path)
    rotated = sorted(
        (file for file in path.parent.glob(path.name + ".*") if file.suffix[1:].isdigit()),
        key=lambda file: -int(file.suffix[1:]),
    )
    return [*rotated, path] if path.exists() else rotated


def read_records(log_path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield the records of a log and its rotated files; malformed lines are logged and skipped.

    Raises:
        DataFormatError: if there is no log at ``log_path``.
    """
    files = log_files(log_path)
    if not files:
        raise DataFormatError(
            f"attention log not found: {log_path} (start the server with a "
            "confidence threshold, or pass the log's path)"
        )
    for file in files:
        with file.open("r", encoding="utf-8", errors="replace") as stream:
            for number, line in enumerate(stream, start=1):
                try:
                    record = parse_json(line)
                except JSONInputError:
                    logger.warning("%s:%d: skipped a malformed line", file, number)
                    continue
                if isinstance(record, dict) and record.get("top"):
                    yield record


def summarise_log(
    records: Any, bucket: str = "hour", top_classes: int = 10, threshold: float = 1.0
) -> dict[str, Any]:
    """Counts per time bucket, most frequent low-confidence classes and their mean 8x8 maps.

    Args:
        records: iterable of log records.
        bucket: "minute", "hour" or "day".
        top_classes: how many classes to report.
        threshold: only records whose top confidence is below this count as low-confidence
            (the logger already filters; 1.0 keeps every record).
    """
    if bucket not in BUCKET_WIDTHS:
        raise ValueError(f"bucket must be one of {', '.join(BUCKET_WIDTHS)}, got {bucket!r}")
    width = BUCKET_WIDTHS[bucket]
    over_time: Counter[str] = Counter()
    classes: Counter[str] = Counter()
    grids: dict[str, list[np.ndarray]] = defaultdict(list)
    confidences: dict[str, list[float]] = defaultdict(list)
    total = 0
    for record in records:
        top = record["top"][0]
        if top["confidence"] >= threshold:
            continue
        total += 1
        over_time[str(record.get("timestamp", ""))[:width]] += 1
        classes[top["class_name"]] += 1
        confidences[top["class_name"]].append(float(top["confidence"]))
        grid = record.get("map", {}).get("grid")
        if grid is not None:
            grids[top["class_name"]].append(np.asarray(grid, dtype=np.float64))
    return {
        "records": total,
        "bucket": bucket,
        "counts_over_time": dict(sorted(over_time.items())),
        "low_confidence_classes": [
            {
                "class_name": name,
                "count": count,
                "mean_confidence": round(float(np.mean(confidences[name])), 4),
                "mean_grid": np.round(np.mean(grids[name], axis=0), 3).tolist()
                if grids[name]
                else None,
            }
            for name, count in classes.most_common(top_classes)
        ],
    }
