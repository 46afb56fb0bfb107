"""The batch report and the model comparison page read well: checked on hand-made summaries.

Batch report: an overlay opens enlarged on the page (not as a bare 64x64 PNG), inputs with
nothing drawn get their own section. Comparison page: card figures rounded, no "differs most"
gallery when the models agree, links to its files.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import numpy as np

from tests.conftest import TINY_CLASSES, build_tiny_model


class Elements(HTMLParser):
    """Every start tag with its attributes, in document order."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def ids(self) -> list[str]:
        return [attrs["id"] for _, attrs in self.tags if attrs.get("id")]  # type: ignore[misc]

    def inside(self, page: str, element_id: str) -> Elements:
        """The tags of the element with ``element_id`` (a div), parsed on their own."""
        start = page.index(f"id='{element_id}'")
        return Elements(page[start : page.index("</div>", start)])


def batch_summary(**extra: Any) -> dict[str, Any]:
    image = {
        "source": "cat/1.png", "overlay": "overlays/cat_1.png", "true_class": "cat",
        "predicted_class": "cat", "confidence": 0.3, "correct": True, "recognised": True,
        "second_class": "dog", "second_confidence": 0.2, "margin": 0.1,
    }  # fmt: skip
    return {
        "images_dir": "sketches", "model_path": "model.h5", "layer": "last_conv",
        "method": "gradcam", "total": 1, "succeeded": 1, "failed": 0, "images": [image],
        "failures": [], "mean_maps": {"cat": {"file": "mean_maps/predicted_cat.png", "count": 1}},
        "class_metrics": None, **extra,
    }  # fmt: skip


def test_an_overlay_opens_enlarged_on_the_page_in_every_section() -> None:
    from src.reports.batch_report import render_report

    # Confidence 0.3 puts the one overlay in the low-confidence section and the gallery.
    page = render_report(batch_summary(), 0.5)
    elements = Elements(page)
    ids = elements.ids()
    assert len(ids) == len(set(ids))
    targets = [
        attrs["href"][1:]  # type: ignore[index]
        for tag, attrs in elements.tags
        if tag == "a" and (attrs.get("href") or "").startswith("#zoom-")
    ]
    assert len(targets) == 3  # low confidence, gallery, mean map
    for target in targets:
        assert target in ids
        zoomed = elements.inside(page, target)
        images = [attrs for tag, attrs in zoomed.tags if tag == "img"]
        assert len(images) == 1 and images[0]["width"] == "512"
        links = {attrs.get("href") for tag, attrs in zoomed.tags if tag == "a"}
        assert images[0]["src"] in links  # the PNG file itself, one link away
    assert "overlays/cat_1.png" in {attrs.get("src") for tag, attrs in elements.tags}
    # Hidden until targeted, enlarged without smoothing.
    assert ".zoom{display:none}" in page and ".zoom:target{display:flex" in page
    assert "image-rendering:pixelated" in page
    assert ("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}) in [
        (tag, attrs) for tag, attrs in elements.tags if tag == "meta" and "name" in attrs
    ]


def test_a_wide_table_scrolls_in_its_own_box_on_every_page() -> None:
    from src.reports.batch_report import render_report
    from src.reports.model_comparison import render_comparison

    rule = (
        "table{border-collapse:collapse;margin:8px 0;display:block;max-width:100%;overflow-x:auto}"
    )
    assert rule in render_report(batch_summary(), 0.5)
    assert rule in render_comparison(comparison_summary([]), {}, None)


def test_inputs_with_nothing_drawn_have_their_own_section() -> None:
    from src.reports.batch_report import render_report

    empty = [
        {"source": "cat/blank.png", "true_class": "cat"},
        {"source": "x.png", "true_class": None},
    ]
    page = render_report(batch_summary(empty=2, empty_inputs=empty), 0.5)
    assert "<h2>Nothing drawn (2)</h2>" in page
    assert "<li><code>cat/blank.png</code> (labelled cat)</li><li><code>x.png</code></li>" in page
    assert "<tr><th>Nothing drawn</th><td><code>2</code></td></tr>" in page
    assert "Nothing drawn (" not in render_report(batch_summary(), 0.5)


def comparison_summary(most_different: list[int]) -> dict[str, Any]:
    open_set = {
        "score": "energy", "temperature": 0.9999999999999998, "threshold": -2.0000000000000004,
        "test": {"auroc": 0.931249999, "false_positive_rate": 0.05000000000000001},
    }  # fmt: skip
    model = {
        "name": "a.h5", "input_size": 64, "layer": "last_conv", "top1": 0.5, "top3": 0.75,
        "ink": {"mean_share": 0.5, "chance_share": 0.2, "flagged": False}, "open_set": open_set,
    }  # fmt: skip
    record = {
        "source": "cat/1.png", "true_class": "cat",
        "answers": {
            name: {"class": "cat", "confidence": 0.9, "explained_class": "cat"}
            for name in ("a.h5", "b.h5")
        },
        "map_rank_correlation": {"a.h5 vs b.h5": 0.25},
    }  # fmt: skip
    pair = {
        "name": "a.h5 vs b.h5", "models": ["a.h5", "b.h5"],
        "agreement": {
            "both_right": 1, "first_only_right": 0, "second_only_right": 0, "both_wrong": 0,
            "mcnemar_p_value": 1.0, "mcnemar_test": "exact", "same_answer": 1.0,
        },
        "map_rank_correlation": {"mean": 0.25, "median": 0.25, "inputs": 1},
        "per_class": [], "different_below": 0.9, "most_different": most_different,
    }  # fmt: skip
    return {
        "models": [model, {**model, "name": "b.h5", "open_set": None}], "labelled_inputs": 1,
        "inputs": 1, "shared_classes": ["cat"], "pairs": [pair], "per_input": [record],
    }  # fmt: skip


def test_comparison_rounds_the_open_set_rule() -> None:
    from src.reports.model_comparison import render_comparison

    page = render_comparison(comparison_summary([]), {}, None)
    assert "score energy; temperature 1.0; threshold -2.0; auroc 0.9312; " in page
    assert "false_positive_rate 0.05" in page
    for raw in ("0.9999999999999998", "2.0000000000000004", "0.05000000000000001"):
        assert raw not in page


def test_comparison_says_the_models_agree_instead_of_listing_inputs() -> None:
    from src.reports.model_comparison import render_comparison

    agreeing = render_comparison(comparison_summary([]), {}, None)
    assert "Nowhere: the two models' maps agree on every input" in agreeing
    assert "r is 0.900 or more" in agreeing
    assert "class='case'" not in agreeing
    overlays = {0: {"a.h5": "data:a", "b.h5": "data:b"}}
    differing = render_comparison(comparison_summary([0]), overlays, None)
    assert "Nowhere" not in differing and differing.count("class='case'") == 1
    assert "r = 0.250" in differing


def test_comparison_links_its_files_and_sets_the_language() -> None:
    from src.reports.model_comparison import render_comparison

    page = render_comparison(comparison_summary([]), {}, "model_comparison.png", "model.json")
    elements = Elements(page)
    links = {attrs.get("href") for tag, attrs in elements.tags if tag == "a"}
    assert {"model.json", "model_comparison.png"} <= links
    assert ("html", {"lang": "en"}) in elements.tags
    assert "href='model.json'" not in render_comparison(comparison_summary([]), {}, None)


def test_only_inputs_below_the_agreement_threshold_count_as_differing() -> None:
    from src.explain.compare_models import ComparedModel, compare_models
    from src.explain.comparison_summary import DIFFERENT_BELOW

    sketches = list(np.random.default_rng(5).random((10, 8, 8)).astype(np.float32))
    inputs = [lambda size, image=image: image[..., None] for image in sketches]
    truths = [TINY_CLASSES[n % 3] for n in range(10)]
    model = build_tiny_model(0)
    same = compare_models(
        [ComparedModel(model, TINY_CLASSES, "a"), ComparedModel(model, TINY_CLASSES, "a")],
        inputs,
        truths,
    )
    assert same["pairs"][0]["most_different"] == []  # every r is 1.0

    other = compare_models(
        [
            ComparedModel(model, TINY_CLASSES, "a"),
            ComparedModel(build_tiny_model(7), TINY_CLASSES, "b"),
        ],
        inputs,
        truths,
    )
    pair = other["pairs"][0]
    correlations = [record["map_rank_correlation"][pair["name"]] for record in other["per_input"]]
    below = [
        n for n, value in enumerate(correlations) if value is not None and value < DIFFERENT_BELOW
    ]
    assert below, correlations  # two different models: some maps differ
    assert sorted(pair["most_different"]) == sorted(below)
    listed = [correlations[n] for n in pair["most_different"]]
    assert listed == sorted(listed)  # most different first
