"""model_comparison.html for ``compare-models``: one self-contained page (overlays inlined).

Sections: the models (accuracy, open set, ink share), then per pair of models: agreement and
McNemar's test, map correlation per class, the inputs where attention differs most (both
overlays, both answers) and, when both were audited, the audit deltas. Every text is escaped.
"""

from __future__ import annotations

from html import escape
from typing import Any

from src.reports.page import render_page

COMPARISON_TITLE = "Model comparison"

# This page's own CSS, after the skeleton's (src.reports.page.BASE_STYLE).
_STYLE = """
body{color:#222;max-width:1400px}
.grid{display:flex;flex-wrap:wrap;gap:16px}
.case{border:1px solid #ddd;padding:6px;font-size:12px}
.case figure{display:inline-block;margin:0 4px;width:136px;text-align:center}
.case img{width:128px;height:128px;image-rendering:pixelated;border:1px solid #ccc}
.flag{color:#b00;font-weight:bold}.wrong{color:#b00}
table{margin:0.5em 0}
td{text-align:right}img.figure{max-width:100%}
"""


def _number(value: Any, percent: bool = False) -> str:
    """A figure for a table cell: percentages, 3 decimals, or "-" when missing."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1%}" if percent else f"{value:.3f}"
    return escape(str(value))


def _plain(value: Any) -> str:
    """A card figure for people: floats to at most 4 decimals (a temperature stored as
    0.9999999999999998 reads 1.0), everything else as it is."""
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    if value != 0 and abs(value) < 1e-3:
        return f"{value:.2e}"
    text = f"{value:.4f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def _table(header: list[str], rows: list[list[str]]) -> str:
    """A table; cells are already escaped."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _open_set(block: dict[str, Any] | None) -> str:
    """The card's open-set rule and test figures in one cell."""
    if not block:
        return "-"
    keys = ("score", "temperature", "threshold")
    parts = [f"{key} {_plain(block[key])}" for key in keys if key in block]
    test = block.get("test")
    if isinstance(test, dict):
        parts += [
            f"{key} {_plain(value)}"
            for key, value in test.items()
            if isinstance(value, int | float)
        ]
    return escape("; ".join(parts))


def _models(summary: dict[str, Any]) -> str:
    """One row per model."""
    rows = []
    for model in summary["models"]:
        ink = model["ink"]
        flag = " <span class='flag'>mostly off the drawing</span>" if ink["flagged"] else ""
        rows.append(
            [
                escape(model["name"]),
                _number(model["input_size"]),
                escape(str(model["layer"])),
                _number(model["top1"], percent=True),
                _number(model["top3"], percent=True),
                f"{_number(ink['mean_share'], True)} (chance {_number(ink['chance_share'], True)})"
                + flag,
                _open_set(model["open_set"]),
            ]
        )
    header = ["model", "input", "layer", "top-1", "top-3", "heat near ink", "open set (card)"]
    return (
        "<h2>Models</h2>"
        + _table(header, rows)
        + (
            f"<p>{summary['labelled_inputs']} of {summary['inputs']} inputs labelled with one of the "
            f"{len(summary['shared_classes'])} shared classes. Heat near ink: share of each map's "
            "heat on the strokes (or touching them); chance is the share a uniform map would put "
            "there. Below chance is flagged (attention on blank canvas: background artifacts).</p>"
        )
    )


def _agreement(pair: dict[str, Any]) -> str:
    """The 2x2 right/wrong table and McNemar's p-value."""
    first, second = (escape(name) for name in pair["models"])
    agreement = pair["agreement"]
    rows = [
        [
            f"{second} right",
            _number(agreement["both_right"]),
            _number(agreement["second_only_right"]),
        ],
        [
            f"{second} wrong",
            _number(agreement["first_only_right"]),
            _number(agreement["both_wrong"]),
        ],
    ]
    return (
        _table(["", f"{first} right", f"{first} wrong"], rows)
        + f"<p>McNemar p = {agreement['mcnemar_p_value']:.3g} "
        f"({escape(agreement['mcnemar_test'])}); same top-1 answer on "
        f"{_number(agreement['same_answer'], True)} of all inputs.</p>"
    )


def _per_class(pair: dict[str, Any]) -> str:
    """Rank correlation of the mean maps and mean per-input correlation, per class."""
    correlation = pair["map_rank_correlation"]
    rows = [
        [
            escape(entry["class"]),
            _number(entry["inputs"]),
            _number(entry["mean_map_rank_correlation"]),
            _number(entry["mean_input_rank_correlation"]),
        ]
        for entry in pair["per_class"]
    ]
    return (
        f"<p>Map rank correlation per input: mean {_number(correlation['mean'])}, median "
        f"{_number(correlation['median'])} over {correlation['inputs']} inputs.</p>"
        + _table(["class", "inputs", "mean maps r", "mean r per input"], rows)
    )


def _gallery(summary: dict[str, Any], pair: dict[str, Any], overlays: dict[int, dict]) -> str:
    """The inputs whose maps differ most (below the summary's agreement threshold): each
    model's overlay and answer; a sentence instead when the models agree everywhere."""
    if not pair["most_different"]:
        below = pair.get("different_below")
        bound = f" (every input's r is {_number(below)} or more)" if below is not None else ""
        return (
            "<h3>Where attention differs most</h3>"
            f"<p>Nowhere: the two models' maps agree on every input{bound}.</p>"
        )
    cases = []
    for number in pair["most_different"]:
        record = summary["per_input"][number]
        figures = []
        for name in pair["models"]:
            answer = record["answers"][name]
            wrong = record["true_class"] is not None and answer["class"] != record["true_class"]
            figures.append(
                f"<figure><img alt='{escape(name)} overlay' src='{overlays[number][name]}'>"
                f"<figcaption>{escape(name)}: <span class='{'wrong' if wrong else ''}'>"
                f"{escape(answer['class'])} {_number(answer['confidence'], True)}</span>"
                "</figcaption></figure>"
            )
        correlation = record["map_rank_correlation"][pair["name"]]
        cases.append(
            f"<div class='case'><div>{escape(record['source'])} (true: "
            f"{escape(str(record['true_class']))}; explained: "
            f"{escape(record['answers'][pair['models'][0]]['explained_class'])}; r = "
            f"{_number(correlation)})</div>{''.join(figures)}</div>"
        )
    return "<h3>Where attention differs most</h3><div class='grid'>" + "".join(cases) + "</div>"


def _audit(pair: dict[str, Any]) -> str:
    """Audit deltas per factor and path (second model minus first)."""
    deltas = pair.get("audit_deltas")
    if not deltas:
        return ""
    rows = []
    for factor, entry in deltas.items():
        for path, figures in entry.items():
            if path == "flagged":
                continue
            rows.append(
                [
                    escape(factor),
                    escape(path),
                    " / ".join("flagged" if flag else "ok" for flag in entry["flagged"]),
                    *(
                        f"{_number(figures['first'][key])} &rarr; {_number(figures['second'][key])}"
                        for key in ("spread_points", "worst_top1", "mean_map_rank_correlation")
                    ),
                ]
            )
    header = ["factor", "path", "flag", "top-1 spread (points)", "worst top-1", "map r"]
    return "<h3>Audit, first &rarr; second</h3>" + _table(header, rows)


def _files(json_name: str | None, figure_name: str | None) -> str:
    """Links to the comparison's JSON and mean-map figure beside the page."""
    links = [
        f"<li><a href='{escape(name)}'>{escape(name)}</a>: {what}</li>"
        for name, what in (
            (json_name, "every figure on this page, per model, pair and input"),
            (figure_name, "the mean maps per class, full size"),
        )
        if name
    ]
    return f"<h2>Files</h2><ul>{''.join(links)}</ul>" if links else ""


def render_comparison(
    summary: dict[str, Any],
    overlays: dict[int, dict[str, str]],
    figure_name: str | None,
    json_name: str | None = None,
) -> str:
    """The whole page as a string.

    Args:
        summary: ``model_comparison.json``'s content.
        overlays: input index -> model name -> image URI, for every gallery input.
        figure_name: the mean-map figure's file name beside the page, or None.
        json_name: the summary's JSON file name beside the page, or None.
    """
    parts = [_files(json_name, figure_name), _models(summary)]
    for pair in summary["pairs"]:
        parts += [
            f"<h2>{escape(pair['name'])}</h2>",
            _agreement(pair),
            _per_class(pair),
            _gallery(summary, pair, overlays),
            _audit(pair),
        ]
    if figure_name:
        parts.append(
            "<h2>Mean maps per class</h2><p>Each class's mean Grad-CAM, one column per model; "
            "r is the rank correlation of the two mean maps. Open the image for full size.</p>"
            f"<a href='{escape(figure_name)}'><img class='figure' "
            f"alt='mean Grad-CAM per class, models side by side' src='{escape(figure_name)}'></a>"
        )
    return render_page(COMPARISON_TITLE, "\n".join(parts), _STYLE)
