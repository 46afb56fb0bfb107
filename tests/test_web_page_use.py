"""The drawing page as a person uses it: a steady layout, one verdict, errors in view (Chromium)."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.test_web_browser import answers_with, draw_circle, draw_line

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
ANSWER_SHOWN = "document.querySelectorAll('#top-list li').length > 0"
CLASSES_LOADED = "!document.getElementById('class-names').textContent.includes('loading')"


def open_page(browser, server_url: str, phone: bool = False):  # type: ignore[no-untyped-def]
    """A fresh page (its own context), loaded, with the class list and methods in."""
    if phone:
        context = browser.new_context(
            viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2
        )
    else:
        context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(server_url)
    page.wait_for_function(CLASSES_LOADED)
    page.wait_for_function("document.querySelectorAll('#method-select option').length > 1")
    return page


def canvas_top(page) -> float:  # type: ignore[no-untyped-def]
    return float(
        page.evaluate("document.getElementById('sketch-canvas').getBoundingClientRect().top")
    )


def touch_stroke_across_first_answer(page) -> list[float]:  # type: ignore[no-untyped-def]
    """One finger stroke that stays down until the first answer (and its map) is on screen.

    Returns the canvas's top, measured before each finger move.
    """
    cdp = page.context.new_cdp_session(page)
    box = page.locator("#sketch-canvas").bounding_box()
    left, middle = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.5
    tops = [canvas_top(page)]

    def touch(kind: str, step: int) -> None:
        point = {"x": left + step * box["width"] * 0.02, "y": middle + (step % 5) * 3}
        cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": [point]})
        page.wait_for_timeout(25)
        tops.append(canvas_top(page))

    touch("touchStart", 0)
    for step in range(1, 10):
        touch("touchMove", step)
    page.wait_for_function(ANSWER_SHOWN)
    page.wait_for_function(
        "(() => { const map = document.getElementById('strip-map');"
        " return map.complete && map.naturalWidth > 0 && map.getAttribute('src'); })()"
    )
    for step in range(10, 20):
        touch("touchMove", step)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()
    return tops


def test_phone_canvas_stays_put_while_the_first_answer_arrives(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url, phone=True)
    for attempt in ("first stroke", "first stroke after Clear"):
        tops = touch_stroke_across_first_answer(page)
        assert max(tops) - min(tops) == pytest.approx(0, abs=0.01), f"{attempt}: {tops}"
        assert page.evaluate("window.SketchCAM.canvas.strokes.length") == 1, attempt
        # A person lifts the finger, sees the finished stroke's answer, then taps Clear. (A tap
        # synthesised within a few milliseconds of the stroke's touchEnd gets no click from
        # Chromium, a timing no finger can reach.)
        page.wait_for_function("window.SketchCAM.app.shownVersion === window.SketchCAM.app.version")
        page.wait_for_timeout(100)
        page.locator("#clear-button").tap()
        page.wait_for_function("document.querySelectorAll('#top-list li').length === 0")
    page.context.close()


def test_phone_strip_leaves_the_canvas_top_in_view(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url, phone=True)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    # Scrolled as a person would to bring the canvas up: its top lands just under the strip.
    page.evaluate(
        "window.scrollTo(0, document.getElementById('sketch-canvas').getBoundingClientRect().top"
        " + window.scrollY - 10)"
    )
    page.wait_for_timeout(600)
    strip = page.locator("#guess-strip").bounding_box()
    assert strip["y"] == pytest.approx(0, abs=1)
    assert canvas_top(page) >= strip["y"] + strip["height"], "the strip covers the canvas top"
    page.context.close()


def open_page_with_rule(browser, server_url: str, rule: dict, **answer: object):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    answers_with(page, "/health", open_set=rule)
    answers_with(page, "/predict_with_gradcam", **answer)
    page.goto(server_url)
    page.wait_for_function(CLASSES_LOADED)
    page.wait_for_function("document.querySelectorAll('#method-select option').length > 1")
    return page


LOGIT_RULE = {"score": "max_logit", "temperature": 1.0, "threshold": 1.5, "from_card": True}
SOFTMAX_RULE = {"score": "max_softmax", "temperature": 1.0, "threshold": 0.5, "from_card": False}


@pytest.mark.parametrize(
    ("rule", "answer", "number"),
    [
        # The rule's own score beside the verdict, never a probability that disagrees with it.
        (LOGIT_RULE, {"confidence": 0.6, "open_set_score": 1.2, "recognised": False}, "score 1.200 (needs 1.500)"),
        (LOGIT_RULE, {"confidence": 0.2, "open_set_score": 1.8, "recognised": True}, "score 1.800 (needs 1.500)"),
        (SOFTMAX_RULE, {"confidence": 0.42, "open_set_score": 0.42, "recognised": False}, "42.0% (needs 50.0%)"),
        # Scores that round alike still show which side of the threshold they are on.
        ({**LOGIT_RULE, "threshold": 1.2361}, {"confidence": 0.2, "open_set_score": 1.2364, "recognised": True}, "score 1.2364 (needs 1.2361)"),
    ],
)  # fmt: skip
def test_the_number_beside_the_verdict_is_the_rules_score(  # type: ignore[no-untyped-def]
    browser, server_url: str, rule: dict, answer: dict, number: str
) -> None:
    page = open_page_with_rule(browser, server_url, rule, **answer)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    page.wait_for_timeout(300)
    top = page.locator("#top-list .name").first.text_content()
    guess = top if answer["recognised"] else f"Not sure - is it a {top}?"
    assert page.locator("#prediction-name").inner_text() == guess
    assert page.locator("#prediction-confidence").inner_text() == number
    assert page.locator("#strip-guess").text_content() == f"{guess} {number}"
    page.context.close()


@pytest.mark.parametrize("recognised", [False, True])
def test_replay_tells_the_same_verdict(browser, server_url: str, recognised: bool) -> None:  # type: ignore[no-untyped-def]
    page = open_page_with_rule(browser, server_url, SOFTMAX_RULE, recognised=recognised)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    page.wait_for_timeout(300)
    page.locator("#replay-button").click()
    page.wait_for_function("document.querySelectorAll('#timeline-steps li').length === 1")
    final = page.evaluate("window.SketchCAM.explain.timeline.data.final_class")
    summary = page.locator("#timeline-summary").inner_text()
    if recognised:
        assert summary == f"It became {final} at stroke 1 of 1."
    else:
        assert summary == "Still not sure what it is after 1 stroke."
    page.context.close()


def non_square_png(path: Path) -> bytes:
    """A 240x80 white PNG with a black bar in its left third: padding it would change the input."""
    pixels = np.full((80, 240), 255, np.uint8)
    pixels[20:60, 20:70] = 0
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_an_upload_is_sent_as_it_is(browser, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    image = non_square_png(tmp_path / "wide.png")
    page = open_page(browser, server_url)
    with page.expect_request("**/predict_with_gradcam") as sent:
        page.set_input_files("#upload-input", str(tmp_path / "wide.png"))
    header, encoded = sent.value.post_data_json["image"].split(",", 1)
    assert header == "data:image/png;base64"
    assert base64.b64decode(encoded) == image
    page.wait_for_function(ANSWER_SHOWN)
    page.wait_for_timeout(300)
    direct = httpx.post(
        f"{server_url}/predict_with_gradcam",
        json={"image": base64.b64encode(image).decode("ascii"), "top_k": 5},
    ).json()
    assert page.locator("#top-list .name").first.text_content() == direct["prediction"]
    assert page.locator("#top-list .value").first.text_content() == (
        f"{direct['confidence'] * 100:.1f}%"
    )
    page.context.close()


CANT_REACH = "Can't reach the server - is it running?"


def test_errors_show_in_the_answer_card_and_mark_it_stale(
    browser, server_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    error = page.locator("#answer-card #result-error")
    card = page.locator("#answer-card")
    assert not error.is_visible()
    page.route("**/predict_with_gradcam", lambda route: route.abort())
    draw_line(page)
    page.wait_for_function("document.getElementById('result-error').textContent.length > 0")
    assert error.is_visible()
    assert error.inner_text() == CANT_REACH
    assert "stale" in card.get_attribute("class").split()
    assert page.locator("#answer-card #stale-note").is_visible()
    # The replay's error clears once the server answers again.
    page.route("**/timeline", lambda route: route.abort())
    page.locator("#replay-button").click()
    page.wait_for_function(
        "document.getElementById('timeline-placeholder').textContent.includes('server')"
    )
    page.unroute("**/predict_with_gradcam")
    page.unroute("**/timeline")
    draw_line(page)
    page.wait_for_function("!document.getElementById('answer-card').classList.contains('stale')")
    assert not error.is_visible()
    assert not page.locator("#stale-note").is_visible()
    assert "server" not in page.locator("#timeline-placeholder").inner_text()
    # A file that is not an image: the error lands in the same card.
    (tmp_path / "notes.png").write_text("not an image")
    page.set_input_files("#upload-input", str(tmp_path / "notes.png"))
    page.wait_for_function("document.getElementById('result-error').textContent.length > 0")
    assert error.is_visible()
    assert "notes.png" in error.inner_text()
    page.context.close()


def test_an_upload_error_stays_when_an_older_answer_lands_after_it(
    browser, server_url: str, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    held: list = []

    def hold(route) -> None:  # type: ignore[no-untyped-def]
        held.append(route)

    page.route("**/predict_with_gradcam", hold)  # answered only when released below
    draw_line(page)
    while not held:
        page.wait_for_timeout(20)
    (tmp_path / "notes.png").write_text("not an image")
    page.set_input_files("#upload-input", str(tmp_path / "notes.png"))
    page.wait_for_function("document.getElementById('result-error').textContent.length > 0")
    for route in held:
        route.continue_()
    page.unroute("**/predict_with_gradcam", hold)
    # The drawing's answer lands after the failed upload (which left the canvas as it was).
    page.wait_for_function("window.SketchCAM.app.shownVersion === window.SketchCAM.app.version")
    error = page.locator("#answer-card #result-error")
    assert error.is_visible()
    assert "notes.png" in error.inner_text()
    page.context.close()


def test_an_answer_that_lags_the_canvas_is_marked_stale(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    """A canvas changed after the answer, with no new answer coming, is marked stale."""
    page = open_page(browser, server_url)
    draw_circle(page)
    page.wait_for_function(ANSWER_SHOWN)
    page.route("**/predict_with_gradcam", lambda route: None)  # held: never answered
    draw_line(page)
    page.wait_for_function("document.getElementById('answer-card').classList.contains('stale')")
    assert page.locator("#stale-note").is_visible()
    assert page.locator("#result-error").inner_text() == ""
    page.context.close()


def jet(value: float) -> tuple[int, int, int]:
    """matplotlib's jet at ``value``, as 0-255 RGB (the server's heat map colours)."""
    import matplotlib

    red, green, blue, _ = matplotlib.colormaps["jet"](value)
    return round(red * 255), round(green * 255), round(blue * 255)


def test_a_lone_stroke_is_coloured_by_its_absolute_heat(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    answer = {
        "success": True, "class_name": "circle", "class_index": 0, "confidence": 0.9,
        "predicted_class": "circle", "predicted_confidence": 0.9,
        "strokes": [{"stroke_index": 0, "rank": 1, "mass": 1.0, "share": 1.0, "mean_heat": 0.13}],
        "stroke_image": "data:image/png;base64,", "gradcam_overlay": "data:image/png;base64,",
        "method": "gradcam", "layer": "last_conv",
    }  # fmt: skip
    page = open_page(browser, server_url)
    page.route(
        "**/explain_strokes",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)
        ),
    )
    draw_line(page)
    page.wait_for_function("document.getElementById('importance-canvas').dataset.painted === '1'")
    colour = page.evaluate(
        """() => {
            const canvas = document.getElementById('importance-canvas');
            const pixel = canvas.getContext('2d').getImageData(canvas.width / 2, canvas.height / 2, 1, 1);
            return Array.from(pixel.data.slice(0, 3));
        }"""
    )
    np.testing.assert_allclose(colour, jet(0.13), atol=8)
    # The legend is the same scale: 13% along it is the same colour.
    legend = Image.open(io.BytesIO(page.locator(".legend-bar").screenshot())).convert("RGB")
    sample = legend.getpixel((round(0.13 * (legend.width - 1)), legend.height // 2))
    np.testing.assert_allclose(sample, jet(0.13), atol=12)
    page.context.close()


EMPTY_ANSWER = {
    "success": True, "empty": True, "recognised": False, "prediction": None, "class_index": None,
    "confidence": None, "top_predictions": [], "open_set_score": None,
}  # fmt: skip


def test_an_empty_answer_reads_nothing_drawn(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = open_page(browser, server_url)
    page.route(
        "**/predict_with_gradcam",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(EMPTY_ANSWER)
        ),
    )
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    with page.expect_response("**/predict_with_gradcam"):
        draw_line(page)
    page.wait_for_timeout(300)
    assert page.locator("#prediction-name").inner_text() == "Nothing drawn yet"
    assert page.locator("#prediction-confidence").inner_text() == ""
    assert not page.locator("#heatmap-layer").is_visible()
    assert not page.locator("#strip-map").is_visible()
    assert page.locator("#top-list li").count() == 0
    assert not errors, errors
    page.context.close()
