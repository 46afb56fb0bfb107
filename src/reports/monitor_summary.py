"""monitor_summary.html for ``monitor``: the attention log's summary as one self-contained page."""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from src.reports.page import render_page

MONITOR_TITLE = "Attention log summary"
# This page's own CSS, after the skeleton's (src.reports.page.BASE_STYLE).
_STYLE = """
table{margin-bottom:2em} .bar{background:#c33;height:12px}
img{image-rendering:pixelated}
"""


def _grid_image_tag(grid: list[list[float]] | None) -> str:
    """An inline PNG <img> of a mean 8x8 map (the project's one colormap), or a dash."""
    if grid is None:
        return "&ndash;"
    from src.visualization.overlay import heatmap_to_rgb, to_png_bytes

    values = np.asarray(grid, dtype=np.float64)
    peak = values.max()
    png = to_png_bytes(heatmap_to_rgb(values / peak if peak > 0 else values), scale=12)
    return f'<img alt="mean map" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def render_monitor_summary(summary: dict[str, Any], title: str = MONITOR_TITLE) -> str:
    """A self-contained HTML page (no scripts, images inlined) for a log summary.

    Args:
        summary: what ``src.monitoring.summary.summarise_log`` returns.
        title: the page's title and heading.
    """
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
    body = f"""<p>{summary["records"]} low-confidence records.</p>
<h2>Records per {html.escape(summary["bucket"])}</h2>
<table><tr><th>{html.escape(summary["bucket"])}</th><th>count</th><th></th></tr>{time_rows}</table>
<h2>Most frequent low-confidence classes</h2>
<table><tr><th>top class</th><th>count</th><th>mean confidence</th><th>mean map (8x8)</th></tr>
{class_rows}</table>"""
    return render_page(title, body, _STYLE)
