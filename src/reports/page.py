"""The one page skeleton every HTML report shares: the head (language, charset, viewport,
title) and the base CSS, with each page's own CSS after it."""

from __future__ import annotations

from html import escape

# What every page has in common; a page's own rules come after and win over these. A table
# wider than the screen (a 24-class confusion matrix on a phone) scrolls inside its own box,
# so the page itself never scrolls sideways.
BASE_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#1d2330}
table{border-collapse:collapse;margin:8px 0;display:block;max-width:100%;overflow-x:auto}
td,th{border:1px solid #ccc;padding:4px 8px}
@media (max-width:600px){body{margin:1em}}
"""


def render_page(title: str, body: str, style: str = "") -> str:
    """A whole self-contained HTML page.

    Args:
        title: the page's title, also its ``<h1>`` (escaped here).
        body: the page's HTML after the heading (already escaped by the caller).
        style: the page's own CSS, added after ``BASE_STYLE``.

    Returns:
        The page, ending with a newline.
    """
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>\n"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>\n"
        f"<title>{escape(title)}</title>\n"
        f"<style>{BASE_STYLE}{style}</style></head><body>\n"
        f"<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )
