"""report.html for ``batch``: a self-contained page that links only files the batch wrote.

Sections: the run (folder, model and its SHA-256, when it ran, downloads); a warning when the
label check finds the mapping out of order (``src.evaluation.label_check``); for labelled inputs,
accuracy, precision/recall/F1 per class, the confusion matrix and the most confused pairs; the
faithfulness and audit results when ``faithfulness.json`` / ``audit.json`` lie in the output
folder; mean Grad-CAM per predicted class; low-confidence cases; the gallery (least confident
first by default) with each input's runner-up and margin; the inputs that could not be read.
Every text is HTML-escaped.
"""

from __future__ import annotations

import hashlib
import json
from html import escape
from pathlib import Path
from typing import Any

from src.audit import AUDIT_FIGURE, AUDIT_JSON
from src.reports.page import render_page

# The gallery shows at most this many images (the JSON and CSV list all of them).
REPORT_TITLE = "Grad-CAM batch report"
GALLERY_LIMIT = 1000
LOW_CONFIDENCE_LIMIT = 60
# Gallery orders: key function and the heading's words.
GALLERY_ORDERS = ("least_confident", "most_confident", "smallest_margin", "name")
_ORDER_TITLES = {
    "least_confident": "least confident first",
    "most_confident": "most confident first",
    "smallest_margin": "smallest margin over the runner-up first",
    "name": "by input name",
}
FAITHFULNESS_FILE = "faithfulness.json"
DOWNLOADS = (
    ("batch_summary.csv", "one row per input"),
    ("batch_summary.json", "everything on this page"),
    ("overlays/", "every overlay PNG"),
)
# An overlay opened from the gallery is shown this many CSS pixels wide, at most (the PNG is the
# model's 64x64 input, enlarged without smoothing so each input pixel stays a crisp square);
# _STYLE's ".zoom img" rule says the same for the page's CSS.
ZOOM_WIDTH = 512
# Confusion-matrix cells shade from white to this colour; the text switches to white where
# black would fall below WCAG's 4.5:1 contrast.
_CELL_RGB = (29, 78, 216)

# This page's own CSS, after the skeleton's (src.reports.page.BASE_STYLE).
_STYLE = """
body{max-width:1200px}
.grid{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0;width:148px;font-size:12px;text-align:center}
figure img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
figcaption .second{color:#555}
.wrong{color:#b00}
td,th{text-align:right}
th{background:#f5f6f8}
.overview td{text-align:left}
.legend{display:flex;align-items:center;gap:8px;font-size:13px;margin:6px 0 12px}
.legend .bar{width:220px;height:12px;border-radius:6px;border:1px solid #ccc}
code{word-break:break-all}
.zoom{display:none}
.zoom:target{display:flex;position:fixed;inset:0;z-index:10;align-items:center;
justify-content:center;background:rgba(0,0,0,.82)}
.zoom .panel{max-width:94vw;background:#fff;padding:12px;border-radius:6px;font-size:15px}
.zoom img{display:block;width:min(512px,88vw);height:auto;image-rendering:pixelated}
.zoom .close{display:block;text-align:right;margin-bottom:6px}
"""


def render_report(
    summary: dict[str, Any],
    low_confidence: float,
    audit_files: list[str] | None = None,
    output_dir: Path | None = None,
    order: str = "least_confident",
) -> str:
    """The whole page as a string (the caller writes it atomically).

    Args:
        summary: what batch_summary.json holds.
        low_confidence: the low-confidence threshold.
        audit_files: names of an ``audit`` run's files in the same folder, shown when given.
        output_dir: the report's folder, read for faithfulness.json and audit.json's figures.
        order: one of ``GALLERY_ORDERS``.
    """
    if order not in GALLERY_ORDERS:
        raise ValueError(f"unknown gallery order {order!r}; choose {', '.join(GALLERY_ORDERS)}")
    images = sort_images(summary["images"], order)
    low = sorted(
        (image for image in summary["images"] if image["confidence"] < low_confidence),
        key=lambda image: image["confidence"],
    )
    parts = [
        _overview(summary),
        _downloads(output_dir),
        _label_check(summary.get("label_check")),
        _class_metrics(summary.get("class_metrics")),
        _faithfulness(output_dir),
        _audit(audit_files or [], output_dir),
        "<h2>Mean Grad-CAM per predicted class</h2>",
        _legend(summary.get("colormap", "jet")),
        _mean_maps(summary["mean_maps"]),
        f"<h2>Low-confidence cases (below {low_confidence:.0%}), least confident first</h2>",
        _gallery(low[:LOW_CONFIDENCE_LIMIT], "low") if low else "<p>None.</p>",
        f"<h2>Gallery, {_ORDER_TITLES[order]}</h2>",
        _legend(summary.get("colormap", "jet")),
        _gallery(images[:GALLERY_LIMIT], "gallery"),
        _nothing_drawn(summary.get("empty_inputs", [])),
        _failures(summary["failures"]),
    ]
    return render_page(REPORT_TITLE, "\n".join(part for part in parts if part), _STYLE)


def sort_images(images: list[dict[str, Any]], order: str) -> list[dict[str, Any]]:
    """The gallery's images in ``order`` (ties keep the input order)."""
    keys = {
        "least_confident": lambda image: image["confidence"],
        "most_confident": lambda image: -image["confidence"],
        "smallest_margin": lambda image: image.get("margin") or 0.0,
        "name": lambda image: image["source"],
    }
    return sorted(images, key=keys[order])


def _overview(summary: dict[str, Any]) -> str:
    """The run: folder, model, its hash, when, layer, method and counts."""
    duration = summary.get("duration_s")
    rows = [
        ("Folder", summary["images_dir"]),
        ("Model", summary["model_path"]),
        ("Model SHA-256", summary.get("model_sha256") or "unknown"),
        ("Run", f"{summary.get('started_at', 'unknown')} (UTC), {duration} s"),
        ("Layer", summary["layer"]),
        ("Method", summary["method"]),
        ("Inputs", summary["total"]),
        ("Explained", summary["succeeded"]),
        # Explained inputs whose answer the open-set rule does not trust.
        ("Not sure", summary.get("not_sure", 0)),
        # Inputs with no ink: no class, no map, outside accuracy and the mean maps.
        ("Nothing drawn", summary.get("empty", 0)),
        ("Could not be read", summary["failed"]),
    ]
    cells = "".join(
        f"<tr><th>{escape(name)}</th><td><code>{escape(str(value))}</code></td></tr>"
        for name, value in rows
    )
    return f"<table class='overview'>{cells}</table>"


def _downloads(output_dir: Path | None) -> str:
    """Links to the summary files and the overlays folder (only those that exist)."""
    items = [
        f"<li><a href='{escape(name)}'>{escape(name)}</a>: {escape(what)}</li>"
        for name, what in DOWNLOADS
        if output_dir is None or (output_dir / name).exists()
    ]
    return f"<h2>Results</h2><ul>{''.join(items)}</ul>" if items else ""


def _legend(colormap: str) -> str:
    """What the overlay colours mean, drawn with the same colormap."""
    import numpy as np

    from src.visualization.overlay import heatmap_to_rgb

    stops = heatmap_to_rgb(np.linspace(0.0, 1.0, 9), colormap)
    gradient = ", ".join(f"rgb({r},{g},{b})" for r, g, b in stops.tolist())
    return (
        "<div class='legend'><span>Overlay colours: little attention</span>"
        f"<span class='bar' style='background:linear-gradient(90deg, {gradient})'></span>"
        "<span>most attention (Grad-CAM, scaled per image)</span></div>"
    )


def _figure(
    file: str, caption: str, wrong: bool = False, detail: str = "", section: str = "gallery"
) -> str:
    """One image with a caption (and an optional second, quieter line); a click opens it at a
    readable size on this page (``_zoom``) rather than as a bare 64x64 PNG."""
    css = " class='wrong'" if wrong else ""
    extra = f"<br><span class='second'>{escape(detail)}</span>" if detail else ""
    key = f"{section}-{hashlib.sha1(file.encode('utf-8')).hexdigest()[:12]}"
    return (
        f"<figure id='figure-{key}'><a href='#zoom-{key}'>"
        f"<img src='{escape(file)}' alt='{escape(caption)}'></a>"
        f"<figcaption{css}>{escape(caption)}{extra}</figcaption></figure>"
        + _zoom(file, caption, key)
    )


def _zoom(file: str, caption: str, key: str) -> str:
    """The image enlarged over the page while its anchor is the URL's target (CSS only);
    "close" goes back to the figure, and the PNG file stays one link away."""
    return (
        f"<div class='zoom' id='zoom-{key}'><div class='panel'>"
        f"<a class='close' href='#figure-{key}'>Close</a>"
        f"<img src='{escape(file)}' alt='{escape(caption)}' width='{ZOOM_WIDTH}' "
        f"height='{ZOOM_WIDTH}' loading='lazy'>"
        f"<p>{escape(caption)} (<a href='{escape(file)}'>PNG file</a>)</p></div></div>"
    )


def _gallery(images: list[dict[str, Any]], section: str) -> str:
    """Overlays with source, prediction, confidence, runner-up, margin and the true class."""
    figures = []
    for image in images:
        caption = f"{image['source']}: {image['predicted_class']} {image['confidence']:.0%}"
        if image.get("recognised") is False:
            caption = (
                f"{image['source']}: not sure (closest: {image['predicted_class']} "
                f"{image['confidence']:.0%})"
            )
        if image["true_class"] is not None:
            caption += f" (true {image['true_class']})"
        detail = ""
        if image.get("second_class") is not None:
            detail = (
                f"then {image['second_class']} {image['second_confidence']:.0%}, "
                f"margin {image['margin']:.2f}"
            )
        wrong = image["correct"] is False
        figures.append(_figure(image["overlay"], caption, wrong, detail, section))
    return f"<div class='grid'>{''.join(figures)}</div>"


def _mean_maps(per_class: dict[str, Any]) -> str:
    """One mean overlay per predicted class."""
    figures = [
        _figure(entry["file"], f"{name} ({entry['count']} images)", section="mean")
        for name, entry in per_class.items()
    ]
    return f"<div class='grid'>{''.join(figures)}</div>" if figures else "<p>None.</p>"


def _label_check(check: dict[str, Any] | None) -> str:
    """A warning section when the label mapping looks written in another order than the model's."""
    if not check or not check.get("suspect"):
        return ""
    rows = "".join(
        f"<tr><td>{escape(true_name)}</td><td>{escape(answer)}</td></tr>"
        for true_name, answer in check.get("answered_as", {}).items()
    )
    fix = check.get("suggested_labels")
    suggestion = (
        f"<p>Label mapping that would fit, in output order: <code>{escape(json.dumps(fix))}</code></p>"
        if fix
        else ""
    )
    return (
        "<h2 class='wrong'>Label check: the mapping looks out of order</h2>"
        f"<p>{escape(check.get('reason', ''))}.</p>"
        f"<table><tr><th>true class</th><th>mostly answered as</th></tr>{rows}</table>" + suggestion
    )


def _class_metrics(metrics: dict[str, Any] | None) -> str:
    """Accuracy, per-class scores, the confusion matrix and the confused pairs."""
    if metrics is None:
        return (
            "<p>No input is labelled, so accuracy is not measured: put inputs in folders named "
            "after their class (<code>apple/x.png</code>) or name them after it "
            "(<code>apple.png</code>, <code>apple_2.png</code>).</p>"
        )
    pairs = [
        _figure(
            pair["mean_map"],
            f"{pair['true']} taken for {pair['predicted']} x{pair['count']}",
            section="pair",
        )
        for pair in metrics["most_confused"]
        if pair.get("mean_map")
    ]
    return (
        f"<h2>Accuracy: {metrics['accuracy']:.1%} of {metrics['labelled']} labelled</h2>"
        + _per_class_table(metrics.get("per_class", {}))
        + "<h3>Confusion matrix (rows: true class, columns: predicted; shade: share of the row)</h3>"
        + _confusion_table(metrics["confusion_matrix"])
        + _confusion_figure(metrics["confusion_matrix"].get("figure"))
        + "<h3>Most confused pairs, with their mean Grad-CAM</h3>"
        + (f"<div class='grid'>{''.join(pairs)}</div>" if pairs else "<p>None.</p>")
    )


def _per_class_table(per_class: dict[str, dict[str, Any]]) -> str:
    """Precision, recall, F1 and support per class ("-" where undefined)."""
    if not per_class:
        return ""

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    rows = "".join(
        f"<tr><th>{escape(name)}</th><td>{cell(scores['precision'])}</td>"
        f"<td>{cell(scores['recall'])}</td><td>{cell(scores['f1'])}</td>"
        f"<td>{scores['support']}</td></tr>"
        for name, scores in per_class.items()
    )
    return (
        "<h3>Per class</h3><table><tr><th>class</th><th>precision</th><th>recall</th>"
        f"<th>F1</th><th>labelled</th></tr>{rows}</table>"
    )


def _confusion_table(confusion: dict[str, Any]) -> str:
    """The matrix as a table over the classes that occur, each cell shaded by its row share."""
    classes, matrix = confusion["classes"], confusion["matrix"]
    used = [i for i in range(len(classes)) if sum(matrix[i]) or sum(row[i] for row in matrix)]
    header = "".join(f"<th>{escape(classes[i])}</th>" for i in used)
    rows = []
    for i in used:
        total = max(sum(matrix[i]), 1)
        cells = "".join(
            f"<td style='{cell_style(matrix[i][j] / total)}'>{matrix[i][j]}</td>" for j in used
        )
        rows.append(f"<tr><th>{escape(classes[i])}</th>{cells}</tr>")
    return f"<table><tr><th></th>{header}</tr>{''.join(rows)}</table>"


def cell_style(share: float) -> str:
    """Background shaded by ``share`` in [0, 1], with black or white text, whichever reads
    better (WCAG contrast: black wins while the background's luminance is above 0.179)."""
    background = [round(255 + (channel - 255) * share) for channel in _CELL_RGB]
    text = "#000" if relative_luminance(background) > 0.179 else "#fff"
    red, green, blue = background
    return f"background:rgb({red},{green},{blue});color:{text}"


def relative_luminance(rgb: list[int]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with 0-255 channels."""
    linear = [
        value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
        for value in (channel / 255 for channel in rgb)
    ]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def _confusion_figure(file: str | None) -> str:
    """The row-normalised confusion matrix figure, when it was written."""
    if not file:
        return ""
    return f"<p><a href='{escape(file)}'><img src='{escape(file)}' alt='confusion matrix' width='480'></a></p>"


def _read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``, or None when it is missing or unreadable."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _faithfulness(output_dir: Path | None) -> str:
    """Deletion/insertion AUC per method from ``evaluate-explanations``, when it ran here."""
    report = _read_json(output_dir / FAITHFULNESS_FILE) if output_dir else None
    if report is None:
        return ""
    rows = "".join(
        f"<tr><th>{escape(str(curve.get('method')))}</th>"
        f"<td>{curve.get('deletion_auc', float('nan')):.3f}</td>"
        f"<td>{curve.get('insertion_auc', float('nan')):.3f}</td></tr>"
        for curve in report.get("curves", [])
        if isinstance(curve, dict)
    )
    figure = "faithfulness.png"
    image = (
        f"<p><img src='{figure}' alt='deletion and insertion curves' width='640'></p>"
        if output_dir is not None and (output_dir / figure).is_file()
        else ""
    )
    return (
        f"<h2>Faithfulness (<a href='{FAITHFULNESS_FILE}'>{FAITHFULNESS_FILE}</a>)</h2>"
        "<p>Deletion AUC: lower is better (erasing the hottest ink first drops the class fast). "
        "Insertion AUC: higher is better.</p>"
        "<table><tr><th>method</th><th>deletion AUC</th><th>insertion AUC</th></tr>"
        f"{rows}</table>{image}"
    )


def _audit(files: list[str], output_dir: Path | None) -> str:
    """The invariance audit written into the same folder: links, headline figures (its
    top-level numbers and words) and its figure."""
    if not files:
        return ""
    links = ", ".join(f"<a href='{escape(name)}'>{escape(name)}</a>" for name in files)
    report = _read_json(output_dir / AUDIT_JSON) if output_dir and AUDIT_JSON in files else None
    rows = "".join(
        f"<tr><th>{escape(str(key))}</th><td>{escape(_short(value))}</td></tr>"
        for key, value in (report or {}).items()
        if isinstance(value, str | int | float | bool) or value is None
    )
    table = f"<table>{rows}</table>" if rows else ""
    image = (
        f"<p><img src='{escape(AUDIT_FIGURE)}' alt='audit figure' width='640'></p>"
        if AUDIT_FIGURE in files
        else ""
    )
    return f"<h2>Invariance audit of this model</h2><p>Files: {links}</p>{table}{image}"


def _short(value: object) -> str:
    """A JSON scalar for the audit table (floats to 4 significant digits)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _nothing_drawn(entries: list[dict[str, Any]]) -> str:
    """The inputs with no ink: listed apart, since they have no class and no map."""
    if not entries:
        return ""
    items = "".join(
        f"<li><code>{escape(entry['source'])}</code>"
        + (f" (labelled {escape(entry['true_class'])})" if entry.get("true_class") else "")
        + "</li>"
        for entry in entries
    )
    return (
        f"<h2>Nothing drawn ({len(entries)})</h2><p>These inputs hold no ink after "
        "preprocessing, so the model was not asked: they have no class and no map, and "
        f"accuracy leaves them out.</p><ul>{items}</ul>"
    )


def _failures(failures: list[dict[str, str]]) -> str:
    """The inputs that could not be read, with reasons."""
    if not failures:
        return ""
    items = "".join(
        f"<li><code>{escape(failure['source'])}</code>: {escape(failure['reason'])}</li>"
        for failure in failures
    )
    return f"<h2>Could not be read ({len(failures)})</h2><ul>{items}</ul>"
