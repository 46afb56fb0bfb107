"""The three HTML pages (batch report, model comparison, monitor summary) share one skeleton:
an English page in UTF-8 with a viewport for phones, its title as the heading, one base CSS."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest


class HeadReader(HTMLParser):
    """The parts of a page the skeleton owns: <html> attributes, <meta> tags, title, first h1."""

    def __init__(self) -> None:
        super().__init__()
        self.html_attributes: dict[str, str | None] = {}
        self.metas: list[dict[str, str | None]] = []
        self.texts: dict[str, str] = {}
        self.styles: list[str] = []
        self._inside: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.html_attributes = dict(attrs)
        elif tag == "meta":
            self.metas.append(dict(attrs))
        self._inside = tag if tag in ("title", "h1", "style") else None

    def handle_data(self, data: str) -> None:
        if self._inside == "style":
            self.styles.append(data)
        elif self._inside is not None:
            self.texts.setdefault(self._inside, data)

    def handle_endtag(self, tag: str) -> None:
        self._inside = None


def batch_page() -> str:
    from src.reports.batch_report import render_report

    summary: dict[str, Any] = {
        "images_dir": "sketches",
        "model_path": "model.h5",
        "layer": "last_conv",
        "method": "gradcam",
        "total": 0,
        "succeeded": 0,
        "failed": 0,
        "images": [],
        "failures": [],
        "mean_maps": {},
        "class_metrics": None,
    }
    return render_report(summary, 0.5)


def comparison_page() -> str:
    from src.reports.model_comparison import render_comparison

    summary = {"models": [], "labelled_inputs": 0, "inputs": 0, "shared_classes": [], "pairs": []}
    return render_comparison(summary, {}, None)


def monitor_page() -> str:
    from src.reports.monitor_summary import render_monitor_summary

    summary = {"records": 0, "bucket": "day", "counts_over_time": {}, "low_confidence_classes": []}
    return render_monitor_summary(summary)


@pytest.mark.parametrize(
    ("render", "title"),
    [
        (batch_page, "Grad-CAM batch report"),
        (comparison_page, "Model comparison"),
        (monitor_page, "Attention log summary"),
    ],
)
def test_every_page_has_the_one_skeleton(render: Any, title: str) -> None:
    page = render()
    reader = HeadReader()
    reader.feed(page)
    assert page.startswith("<!doctype html>")
    assert page.endswith("</body></html>\n")
    assert reader.html_attributes == {"lang": "en"}
    assert {"charset": "utf-8"} in reader.metas
    assert {"name": "viewport", "content": "width=device-width, initial-scale=1"} in reader.metas
    assert (reader.texts["title"], reader.texts["h1"]) == (title, title)
    assert len(reader.styles) == 1
    # The shared rules open every page's CSS; the page's own rules follow them.
    assert reader.styles[0].startswith(
        "\nbody{font-family:system-ui,sans-serif;margin:2em;color:#1d2330}\n"
        "table{border-collapse:collapse;margin:8px 0;display:block;max-width:100%;overflow-x:auto}\n"
        "td,th{border:1px solid #ccc;padding:4px 8px}\n"
        "@media (max-width:600px){body{margin:1em}}\n"
    )
