"""The drawing page in headless Chromium against a live uvicorn server on the small model.

The server and Chromium (fixtures ``server_url`` and ``browser`` in tests/conftest.py) are
started once per session and shared with the other browser test files.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import httpx
import pytest

from tests.conftest import TINY_CLASSES

pytestmark = [pytest.mark.browser, pytest.mark.slow]


# Each move is a round trip to Chromium; as many points as the tests' stroke circle
# (tests/conftest.py draw_circle_strokes) draw it well enough for the page and the model.
CIRCLE_MOVES = 24


def draw_circle(page, selector: str = "#sketch-canvas") -> None:  # type: ignore[no-untyped-def]
    """A circle drawn with real mouse moves (pointer events), in one stroke of CIRCLE_MOVES."""
    box = page.locator(selector).bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    radius = box["width"] * 0.3
    page.mouse.move(centre_x + radius, centre_y)
    page.mouse.down()
    for step in range(1, CIRCLE_MOVES + 1):
        angle = 2 * math.pi * step / CIRCLE_MOVES
        page.mouse.move(centre_x + radius * math.cos(angle), centre_y + radius * math.sin(angle))
    page.mouse.up()


def save_screenshot(page, tmp_path: Path, name: str) -> Path:  # type: ignore[no-untyped-def]
    """Screenshot into the pytest tmp dir, and into $SKETCH_SCREENSHOT_DIR when set."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("SKETCH_SCREENSHOT_DIR"):
        target = Path(os.environ["SKETCH_SCREENSHOT_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / name)
    return path


def expected_guess(data: dict) -> str:
    """The page's rule, written out: the server's verdict if given, else 50% confidence."""
    recognised = data["recognised"] if "recognised" in data else data["confidence"] >= 0.5
    return data["prediction"] if recognised else f"Not sure - is it a {data['prediction']}?"


def watch_problems(page) -> list[str]:  # type: ignore[no-untyped-def]
    """Collect page errors, console errors and failed requests (a missing favicon included)."""
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console: {message.text}") if message.type == "error" else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    return problems


def test_drawing_shows_a_prediction_and_heatmap(browser, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    problems = watch_problems(page)
    page.goto(server_url)
    page.wait_for_function("document.querySelectorAll('#method-select option').length > 1")
    # The classes the model knows, from GET /classes, and no "-" placeholder before drawing.
    page.wait_for_function(
        "!document.getElementById('class-names').textContent.includes('loading')"
    )
    assert page.locator("#class-names").inner_text() == ", ".join(TINY_CLASSES) + "."
    assert page.locator("#prediction-name").text_content() == "Nothing drawn yet"
    # A favicon the page names, served (headless Chromium does not fetch icons itself).
    icon = httpx.get(page.evaluate("document.querySelector('link[rel=icon]').href"))
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg")
    with page.expect_response(lambda response: "/predict_with_gradcam" in response.url) as answer:
        draw_circle(page)
    page.wait_for_function("document.querySelectorAll('#top-list li').length === 3")
    page.wait_for_timeout(300)  # the answer to the finished stroke is the last one applied
    data = page.evaluate(
        "() => fetch('/predict_with_gradcam', {method: 'POST', headers: {'Content-Type': "
        "'application/json'}, body: JSON.stringify({strokes: window.SketchCAM.canvas"
        ".strokesForApi(), top_k: 5})}).then((response) => response.json())"
    )
    assert answer.value.ok
    assert page.locator("#prediction-name").text_content() == expected_guess(data)
    heatmap = page.locator("#heatmap-layer")
    assert heatmap.is_visible()
    assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.getElementById('heatmap-layer').naturalWidth") >= 64
    # The thumbnail is the server's own 64x64 model input.
    thumbnail = page.locator("#model-input")
    assert thumbnail.is_visible()
    assert thumbnail.get_attribute("src") == data["input_image"]
    assert page.evaluate("document.getElementById('model-input').naturalWidth") == 64
    assert "server's own pen" in page.locator("#brush-note").inner_text()
    save_screenshot(page, tmp_path, "drawing_page.png")
    # Clicking a class shows its own map via /analyze_class.
    page.locator("#top-list button").nth(1).click()
    second = page.locator("#top-list .name").nth(1).inner_text().strip()
    page.wait_for_function(
        "name => document.getElementById('cam-caption').textContent.toLowerCase().includes(name)",
        arg=f"grad-cam map for {second.lower()}",
    )
    save_screenshot(page, tmp_path, "drawing_page_class.png")
    assert not problems, problems
    page.close()


def answers_with(page, path: str, **fields: object) -> None:  # type: ignore[no-untyped-def]
    """Answer ``path`` from the server, with ``fields`` overwritten (None: removed)."""
    import json

    def handle(route) -> None:  # type: ignore[no-untyped-def]
        data = route.fetch().json()
        for key, value in fields.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        route.fulfill(status=200, content_type="application/json", body=json.dumps(data))

    page.route(f"**{path}", handle)


def patched_answers(page, **fields: object) -> None:  # type: ignore[no-untyped-def]
    """Answer /predict_with_gradcam from the server, with ``fields`` overwritten (None: removed)."""
    answers_with(page, "/predict_with_gradcam", **fields)


@pytest.mark.parametrize(
    ("fields", "sure"),
    [
        ({"confidence": 0.3, "recognised": None}, False),  # no verdict: below 50%
        ({"confidence": 0.9, "recognised": None}, True),
        ({"confidence": 0.9, "recognised": False}, False),  # the server's verdict wins
        ({"confidence": 0.3, "recognised": True}, True),
    ],
)
def test_not_sure_state(browser, server_url: str, fields: dict, sure: bool) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    patched_answers(page, **fields)
    page.goto(server_url)
    page.wait_for_function(
        "!document.getElementById('class-names').textContent.includes('loading')"
    )
    draw_circle(page)
    page.wait_for_function("document.querySelectorAll('#top-list li').length === 3")
    page.wait_for_timeout(300)
    top = page.locator("#top-list .name").first.text_content()
    name = page.locator("#prediction-name")
    hint = page.locator("#unsure-hint")
    if sure:
        assert name.text_content() == top
        assert "sure" in name.get_attribute("class").split()
        assert not hint.is_visible()
    else:
        assert name.text_content() == f"Not sure - is it a {top}?"
        assert hint.inner_text() == f"It knows only these 3: {', '.join(TINY_CLASSES)}."
    # The settled guess is what the live region reads out.
    assert (
        page.locator("#announcer")
        .text_content()
        .startswith(f"Guess: {top}" if sure else f"Not sure - is it a {top}?")
    )
    page.close()


def test_live_region_announces_only_settled_guesses(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server_url)
    box = page.locator("#sketch-canvas").bounding_box()
    left, top = box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.3
    page.mouse.move(left, top)
    page.mouse.down()
    for step in range(1, 30):
        page.mouse.move(left + step * box["width"] * 0.02, top + step * box["height"] * 0.015)
        page.wait_for_timeout(20)
    # Mid-stroke: the page shows a guess, the live region stays silent.
    page.wait_for_function("document.querySelectorAll('#top-list li').length > 0")
    assert page.locator("#announcer").text_content() == ""
    page.mouse.up()
    page.wait_for_function("document.getElementById('announcer').textContent.length > 0")
    guess = page.locator("#prediction-name").text_content()
    assert (
        page.locator("#announcer")
        .text_content()
        .startswith(guess if guess.startswith("Not sure") else f"Guess: {guess}")
    )
    page.close()


def test_keyboard_reaches_upload_and_sees_focus_rings(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server_url)
    page.locator("#clear-button").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "upload-input"
    ring = "getComputedStyle(document.activeElement.closest('label')).outlineStyle"
    assert page.evaluate(ring) == "solid"
    # The view radios: arrow keys move between them, with a ring on the chosen one.
    page.locator('input[name="view"][value="overlay"]').focus()
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.value") == "heatmap"
    assert page.evaluate(ring) == "solid"
    page.close()


def test_clear_resets_the_compare_selects(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(server_url)
    page.wait_for_function("document.querySelectorAll('#compare-a option').length > 1")
    draw_circle(page)
    page.wait_for_function("document.getElementById('compare-a').options[0].text.includes(':')")
    page.locator("#compare-a").select_option(label=TINY_CLASSES[2])
    page.locator("#compare-b").select_option(label=TINY_CLASSES[1])
    page.locator("#clear-button").click()
    assert page.evaluate("document.getElementById('compare-a').value") == ""
    assert page.evaluate("document.getElementById('compare-b').value") == ""
    assert page.evaluate("document.getElementById('compare-a').options[0].text") == "Top 1"
    assert page.evaluate("document.getElementById('compare-b').options[0].text") == "Top 2"
    page.close()


def test_page_fits_a_phone_screen(browser, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, device_scale_factor=2
    )
    page = context.new_page()
    page.goto(server_url)
    draw_circle(page)
    page.wait_for_function("document.querySelectorAll('#top-list li').length === 3")
    page_width = page.evaluate("document.documentElement.scrollWidth")
    assert page_width <= 390, f"page scrolls sideways: {page_width}px"
    save_screenshot(page, tmp_path, "drawing_page_phone.png")
    # Scrolled down to draw, the guess and the map stay in view in the strip at the top.
    page.evaluate("window.scrollTo(0, 400)")
    strip = page.locator("#guess-strip")
    assert strip.is_visible()
    assert strip.bounding_box()["y"] == pytest.approx(0, abs=1)
    guess = page.locator("#prediction-name").text_content()
    assert page.locator("#strip-guess").inner_text().startswith(guess)
    assert page.locator("#strip-map").is_visible()
    page.screenshot(path=str(tmp_path / "drawing_page_phone_scrolled.png"))
    context.close()


def draw_line(page, selector: str = "#sketch-canvas") -> None:  # type: ignore[no-untyped-def]
    """A horizontal line across the middle, as a second stroke."""
    box = page.locator(selector).bounding_box()
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.15, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.85, middle, steps=12)
    page.mouse.up()


def test_stroke_importance_replay_and_compare(browser, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server_url)
    page.wait_for_function("document.querySelectorAll('#compare-a option').length > 1")
    draw_circle(page)
    draw_line(page)
    # Stroke importance: both strokes coloured over the drawing, with a caption and legend.
    page.wait_for_function("document.getElementById('importance-canvas').dataset.painted === '2'")
    coloured = page.evaluate(
        """() => {
            const canvas = document.getElementById('importance-canvas');
            const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
            let count = 0;
            for (let index = 3; index < pixels.data.length; index += 4) count += pixels.data[index] > 0;
            return count;
        }"""
    )
    assert coloured > 100, "the strokes should be painted in importance colours"
    assert "mean map value" in page.locator("#importance-caption").inner_text()
    assert page.locator("#importance-legend").is_visible()
    save_screenshot(page, tmp_path, "drawing_page_importance.png")
    # Replay: one step per stroke, each with its map.
    page.locator("#replay-button").click()
    page.wait_for_function("document.querySelectorAll('#timeline-steps li').length === 2")
    assert page.locator("#timeline-image").is_visible()
    assert page.locator("#timeline-caption").inner_text().startswith("After stroke")
    page.locator("#timeline-steps button").nth(1).click()
    assert "stroke 2 of 2" in page.locator("#timeline-caption").inner_text()
    # Why A not B for the top two.
    page.locator("#compare-button").click()
    page.wait_for_function(
        "document.getElementById('compare-caption').textContent.startsWith('Why')"
    )
    assert page.locator("#compare-for").is_visible()
    save_screenshot(page, tmp_path, "drawing_page_explain.png")
    assert not errors, errors
    page.close()


def test_stroke_colours_follow_the_mean_map_value(browser, server_url: str) -> None:  # type: ignore[no-untyped-def]
    """A known answer: the long circle holds most of the map, the short line is the hot one."""
    import json

    answer = {
        "success": True,
        "class_name": TINY_CLASSES[0],
        "class_index": 0,
        "confidence": 0.9,
        "predicted_class": TINY_CLASSES[0],
        "predicted_confidence": 0.9,
        "strokes": [
            {"stroke_index": 0, "rank": 1, "mass": 8.0, "share": 0.8, "mean_heat": 0.1},
            {"stroke_index": 1, "rank": 2, "mass": 2.0, "share": 0.2, "mean_heat": 0.9},
        ],
        "stroke_image": "data:image/png;base64,",
        "gradcam_overlay": "data:image/png;base64,",
        "method": "gradcam",
        "layer": "last_conv",
    }
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.route(
        "**/explain_strokes",
        lambda route: route.fulfill(
            status=200, content_type="application/json", body=json.dumps(answer)
        ),
    )
    page.goto(server_url)
    draw_circle(page)
    # A short line inside the circle, clear of its outline.
    box = page.locator("#sketch-canvas").bounding_box()
    middle = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.42, middle)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.58, middle, steps=6)
    page.mouse.up()
    page.wait_for_function("document.getElementById('importance-canvas').dataset.painted === '2'")
    colour_at = """([x, y]) => {
        const canvas = document.getElementById('importance-canvas');
        const scale = canvas.width / canvas.getBoundingClientRect().width;
        return Array.from(canvas.getContext('2d').getImageData(x * scale, y * scale, 1, 1).data);
    }"""
    # Canvas-relative points: the line's middle, and the circle's top (radius 0.3 of the side).
    red, green, blue, _ = page.evaluate(colour_at, [box["width"] / 2, box["height"] / 2])
    assert red > 100 and green < 60 and blue < 60, "the short, hot line is (dark) red"
    red, green, blue, _ = page.evaluate(colour_at, [box["width"] / 2, box["height"] * 0.2])
    assert blue > 150 and red < 60 and green < 60, "the long, cool circle is blue"
    assert "Stroke 2 of 2 is the hottest" in page.locator("#importance-caption").inner_text()
    page.close()


def test_batch_report_opens_and_every_image_loads(  # type: ignore[no-untyped-def]
    browser, sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path, tmp_path
) -> None:
    import json

    from src.cli.gradcam_analysis import main

    output = tmp_path / "batch"
    status = main(
        [
            "--model", str(sketch_model_path), "--labels", str(sketch_labels_path),
            "--output", str(output), "batch", "--images_dir", str(sketch_model_dir / "sketches"),
        ]
    )  # fmt: skip
    assert status == 0
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    problems = watch_problems(page)
    page.goto((output / "report.html").as_uri())
    page.wait_for_load_state("load")
    # The enlarged views load lazily, when opened; load every one now, so each is checked.
    page.evaluate(
        "document.querySelectorAll('img[loading=lazy]').forEach(i => { i.loading = 'eager'; })"
    )
    page.wait_for_function("Array.from(document.images).every((image) => image.complete)")
    images = page.evaluate(
        "Array.from(document.images).map((image) => "
        "[image.getAttribute('src'), image.complete && image.naturalWidth > 0])"
    )
    summary = json.loads((output / "batch_summary.json").read_text())
    expected = {image["overlay"] for image in summary["images"]}
    expected |= {entry["file"] for entry in summary["mean_maps"].values()}
    assert len(expected) == 9 and expected <= {source for source, _ in images}
    assert [source for source, loaded in images if not loaded] == []
    assert page.locator("h2", has_text="Gallery, least confident first").is_visible()
    assert page.locator("a[href='batch_summary.csv']").is_visible()
    save_screenshot(page, tmp_path, "batch_report.png")
    assert not problems, problems
    page.close()
