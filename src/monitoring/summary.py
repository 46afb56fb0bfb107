"""Summarise an attention log: counts over time, the most frequent low-confidence classes and
their mean maps, as JSON and as a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import logging
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from src.data.json_input import JSONInputError, parse_json
from src.data.quickdraw import ReadReport
from src.errors import DataFormatError
from src.monitoring.log_records import DEFAULT_MAX_READ_BYTES, bounded_lines, record_problem

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


def read_records(
    log_path: str | Path,
    report: ReadReport | None = None,
    max_bytes: int = DEFAULT_MAX_READ_BYTES,
) -> Iterator[dict[str, Any]]:
    """Yield the well-formed records of a log and its rotated files, oldest first.

    A line that is not JSON, or whose record has the wrong shape (``record_problem``), is
    skipped, counted in ``report`` and logged; at most ``max_bytes`` are read in all.

    Raises:
        DataFormatError: if there is no log at ``log_path``, or it is not a regular file.
    """
    files = log_files(log_path)
    if not files:
        raise DataFormatError(
            f"attention log not found: {log_path} (start the server with a "
            "confidence threshold, or pass the log's path)"
        )
    report = report if report is not None else ReadReport()
    for _file, number, line in bounded_lines(files, report, max_bytes):
        if not line.strip():
            continue
        try:
            record = parse_json(line)
        except JSONInputError as error:
            report.add_problem(f"line {number}", str(error))
            continue
        problem = record_problem(record)
        if problem is not None:
            report.add_problem(f"line {number}", problem)
            continue
        report.read += 1
        yield record  # type: ignore[misc]


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


def _grid_image_tag(grid: list[list[float]] | None) -> str:
    """An inline PNG <img> of a mean 8x8 map (the project's one colormap), or a dash."""
    if grid is None:
        return "&ndash;"
    from src.visualization.overlay import heatmap_to_rgb, to_png_bytes

    values = np.asarray(grid, dtype=np.float64)
    peak = values.max()
    png = to_png_bytes(heatmap_to_rgb(values / peak if peak > 0 else values), scale=12)
    return f'<img alt="mean map" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def summary_to_html(summary: dict[str, Any], title: str = "Attention log summary") -> str:
    """A self-contained HTML page (no scripts, images inlined) for a log summary."""
    peak = max(summary["counts_over_time"].values(), default=1)
    time_rows = "".join(
        f"<tr><td>{html.escape(when)}</td><td>{count}</td>"
        f'<td><div class="bar" style="width:{200 * count // peak}px"></div></td></tr>'
        for when, count in summary["counts_over_time"].items()
    )
    class_rows = "".join(
        f"<tr><td>{html.escape(entry['class_name'])}</td><td>{entry['count']}</td>"
        f"<td>{entry['mean_confidence']:.1%}</td><td>{_grid_image_tag(entry['mean_grid'])}</td></tr>"
        for entry in summary["low_confidence_classes"]
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin-bottom:2em}}
td,th{{border:1px solid #ccc;padding:4px 8px}} .bar{{background:#c33;height:12px}}
img{{image-rendering:pixelated}}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>{summary["records"]} low-confidence records.</p>
<h2>Records per {html.escape(summary["bucket"])}</h2>
<table><tr><th>{html.escape(summary["bucket"])}</th><th>count</th><th></th></tr>{time_rows}</table>
<h2>Most frequent low-confidence classes</h2>
<table><tr><th>top class</th><th>count</th><th>mean confidence</th><th>mean map (8x8)</th></tr>
{class_rows}</table>
</body></html>
"""
