"""report.html for ``batch``: a self-contained page that links only files the batch wrote.

Sections: counts; accuracy, confusion matrix and most confused pairs (when sub-folders name the
classes); mean Grad-CAM per predicted class; low-confidence cases; the gallery sorted by
confidence; the inputs that could not be read. Every text is HTML-escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

# The gallery shows at most this many images (the JSON and CSV list all of them).
GALLERY_LIMIT = 1000
LOW_CONFIDENCE_LIMIT = 60

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222}
.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:140px;font-size:12px;text-align:center}
figure img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
.wrong{color:#b00}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
"""


def render_report(
    summary: dict[str, Any], low_confidence: float, audit_files: list[str] | None = None
) -> str:
    """The whole page as a string (the caller writes it atomically).

    ``audit_files``: names of an ``audit`` run's files in the same folder, linked when given.
    """
    images = sorted(summary["images"], key=lambda image: -image["confidence"])
    low = [image for image in images if image["confidence"] < low_confidence][::-1]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Grad-CAM batch report</title>",
        f"<style>{_STYLE}</style></head><body><h1>Grad-CAM batch report</h1>",
        _overview(summary),
        _audit_links(audit_files or []),
        _class_metrics(summary.get("class_metrics")),
        "<h2>Mean Grad-CAM per predicted class</h2>",
        _mean_maps(summary["mean_maps"]),
        f"<h2>Low-confidence cases (below {low_confidence:.0%})</h2>",
        _gallery(low[:LOW_CONFIDENCE_LIMIT]) if low else "<p>None.</p>",
        "<h2>Gallery, most confident first</h2>",
        _gallery(images[:GALLERY_LIMIT]),
        _failures(summary["failures"]),
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _overview(summary: dict[str, Any]) -> str:
    """Counts, model, layer and method."""
    rows = [
        ("Folder", summary["images_dir"]),
        ("Model", summary["model_path"]),
        ("Layer", summary["layer"]),
        ("Method", summary["method"]),
        ("Inputs", summary["total"]),
        ("Explained", summary["succeeded"]),
        ("Could not be read", summary["failed"]),
    ]
    cells = "".join(
        f"<tr><th>{escape(name)}</th><td>{escape(str(value))}</td></tr>" for name, value in rows
    )
    return f"<table>{cells}</table>"


def _audit_links(files: list[str]) -> str:
    """Links to the invariance audit written into the same folder, when there is one."""
    if not files:
        return ""
    links = ", ".join(f"<a href='{escape(name)}'>{escape(name)}</a>" for name in files)
    return f"<p>Invariance audit of this model: {links}</p>"


def _figure(file: str, caption: str, wrong: bool = False) -> str:
    """One image with a caption."""
    css = " class='wrong'" if wrong else ""
    return (
        f"<figure><a href='{escape(file)}'><img src='{escape(file)}' alt=''></a>"
        f"<figcaption{css}>{escape(caption)}</figcaption></figure>"
    )


def _gallery(images: list[dict[str, Any]]) -> str:
    """Overlays with source, prediction, confidence and the true class when known."""
    figures = []
    for image in images:
        caption = f"{image['source']}: {image['predicted_class']} {image['confidence']:.0%}"
        if image["true_class"] is not None:
            caption += f" (true {image['true_class']})"
        figures.append(_figure(image["overlay"], caption, image["correct"] is False))
    return f"<div class='grid'>{''.join(figures)}</div>"


def _mean_maps(per_class: dict[str, Any]) -> str:
    """One mean overlay per predicted class."""
    figures = [
        _figure(entry["file"], f"{name} ({entry['count']} images)")
        for name, entry in per_class.items()
    ]
    return f"<div class='grid'>{''.join(figures)}</div>" if figures else "<p>None.</p>"


def _class_metrics(metrics: dict[str, Any] | None) -> str:
    """Accuracy, the confusion matrix (rows true, columns predicted) and the confused pairs."""
    if metrics is None:
        return "<p>Sub-folder names are not class names, so accuracy is not measured.</p>"
    classes = metrics["confusion_matrix"]["classes"]
    matrix = metrics["confusion_matrix"]["matrix"]
    used = [i for i in range(len(classes)) if sum(matrix[i]) or sum(row[i] for row in matrix)]
    header = "".join(f"<th>{escape(classes[i])}</th>" for i in used)
    rows = []
    for i in used:
        total = max(sum(matrix[i]), 1)
        cells = "".join(
            f"<td style='background:rgba(200,40,40,{matrix[i][j] / total:.2f})'>{matrix[i][j]}</td>"
            for j in used
        )
        rows.append(f"<tr><th>{escape(classes[i])}</th>{cells}</tr>")
    pairs = [
        _figure(pair["mean_map"], f"{pair['true']} taken for {pair['predicted']} x{pair['count']}")
        for pair in metrics["most_confused"]
        if pair.get("mean_map")
    ]
    return (
        f"<h2>Accuracy: {metrics['accuracy']:.1%} of {metrics['labelled']} labelled</h2>"
        "<h3>Confusion matrix (rows: true class, columns: predicted)</h3>"
        f"<table><tr><th></th>{header}</tr>{''.join(rows)}</table>"
        + _confusion_figure(metrics["confusion_matrix"].get("figure"))
        + "<h3>Most confused pairs, with their mean Grad-CAM</h3>"
        + (f"<div class='grid'>{''.join(pairs)}</div>" if pairs else "<p>None.</p>")
    )


def _confusion_figure(file: str | None) -> str:
    """The row-normalised confusion matrix figure, when it was written."""
    if not file:
        return ""
    return f"<p><a href='{escape(file)}'><img src='{escape(file)}' alt='confusion matrix' width='480'></a></p>"


def _failures(failures: list[dict[str, str]]) -> str:
    """The inputs that could not be read, with reasons."""
    if not failures:
        return ""
    items = "".join(
        f"<li><code>{escape(failure['source'])}</code>: {escape(failure['reason'])}</li>"
        for failure in failures
    )
    return f"<h2>Could not be read ({len(failures)})</h2><ul>{items}</ul>"
