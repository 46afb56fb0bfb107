"""The drawing page's words, contrast and small controls, in headless Chromium."""

from __future__ import annotations

import re

import pytest

from tests.conftest import TINY_CLASSES
from tests.test_web_browser import draw_circle, draw_line
from tests.test_web_page_use import ANSWER_SHOWN, answers_with, open_page

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def relative_luminance(css_colour: str) -> float:
    """WCAG 2 relative luminance of an ``rgb(r, g, b)`` colour."""
    channels = [int(value) / 255 for value in re.findall(r"\d+", css_colour)[:3]]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(first: str, second: str) -> float:
    lighter, darker = sorted([relative_luminance(first), relative_luminance(second)], reverse=True)
    return (lighter + 0.05) / (darker + 0.05)


def colours_of(page, selector: str) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    return tuple(
        page.evaluate(
            "s => { const style = getComputedStyle(document.querySelector(s));"
            " return [style.color, style.backgroundColor]; }",
            selector,
        )
    )


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        ({"prediction": "airplane", "recognised": False}, "Not sure - is it an airplane?"),
        ({"prediction": "house", "recognised": False}, "Not sure - is it a house?"),
        ({"prediction": "smiley face", "recognised": True}, "smiley face"),
    ],
)
def test_the_guess_reads_as_written(browser, server_url: str, fields: dict, shown: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    answers_with(page, "/predict_with_gradcam", **fields)
    assert not page.locator("#model-input-caption").is_visible()  # no thumbnail, no "this is it"
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    page.wait_for_timeout(300)
    assert page.locator("#prediction-name").inner_text() == shown
    assert fields["prediction"] in page.locator("#heatmap-layer").get_attribute("alt")
    assert fields["prediction"] in page.locator("#input-layer").get_attribute("alt")
    assert page.locator("#model-input-caption").is_visible()
    page.context.close()


def test_captions_name_the_method(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    page.wait_for_timeout(300)
    guess = page.locator("#top-list .name").first.text_content()
    assert page.locator("#cam-caption").inner_text().startswith(f"Grad-CAM map for {guess}")
    with page.expect_response("**/predict_with_gradcam"):
        page.locator("#method-select").select_option("eigencam")
    page.wait_for_function(
        "document.getElementById('cam-caption').textContent.startsWith('Eigen-CAM')"
    )
    assert "class-agnostic" in page.locator("#cam-caption").inner_text()
    page.context.close()


def test_selected_view_and_replay_step_are_readable(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    assert contrast_ratio(*colours_of(page, ".segmented label:has(input:checked)")) >= 4.5
    page.locator("#replay-button").click()
    page.wait_for_function("document.querySelectorAll('#timeline-steps li').length === 1")
    current = '#timeline-steps button[aria-current="true"]'
    assert contrast_ratio(*colours_of(page, current)) >= 4.5
    page.context.close()


COLOURED_PIXELS = """() => {
    const canvas = document.getElementById('importance-canvas');
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let count = 0;
    for (let index = 3; index < pixels.length; index += 4) count += pixels[index] > 0;
    return count;
}"""


def test_the_brush_widens_the_coloured_strokes_too(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    draw_line(page)
    page.wait_for_function("document.getElementById('importance-canvas').dataset.painted === '1'")
    thin = page.evaluate(COLOURED_PIXELS)
    page.locator("#brush-size").fill("24")  # from 8: three times the width
    assert page.evaluate(COLOURED_PIXELS) > 2 * thin
    page.context.close()


def test_comparing_a_class_with_itself_says_so(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    draw_circle(page)
    page.wait_for_function("document.getElementById('compare-a').options[0].text.includes(':')")
    page.locator("#compare-button").click()
    page.wait_for_function(
        "document.getElementById('compare-caption').textContent.startsWith('Why')"
    )
    assert page.locator("#compare-view").is_visible()
    page.locator("#compare-a").select_option(label=TINY_CLASSES[1])
    page.locator("#compare-b").select_option(label=TINY_CLASSES[1])
    page.wait_for_function(
        "document.getElementById('compare-caption').textContent.startsWith('Pick')"
    )
    assert page.locator("#compare-caption").inner_text() == (
        "Pick two different classes: A and B are the same class."
    )
    assert not page.locator("#compare-view").is_visible()
    assert page.locator("#compare-for").get_attribute("src") is None
    page.context.close()
