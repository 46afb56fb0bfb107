"""The drawing page in headless Chromium against a live uvicorn server on the small model."""

from __future__ import annotations

import math
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TINY_CLASSES

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
REPO_ROOT = Path(__file__).resolve().parent.parent


def require_chromium() -> None:
    """Skip without Chromium on a workstation; in CI (CI=true) its absence is a failure."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(sketch_model_path: Path, sketch_labels_path: Path) -> Iterator[str]:
    """``python -m src.web`` on a free loopback port, stopped after the module."""
    require_chromium()
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "src.web",
        "--model_path",
        str(sketch_model_path),
        "--label_mapping",
        str(sketch_labels_path),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log_level",
        "warning",
    ]
    server = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if server.poll() is not None:
                output = server.stdout.read().decode() if server.stdout else ""
                pytest.fail(f"server exited with {server.returncode}: {output}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        else:
            pytest.fail("server did not answer /health within 90 s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser(server_url: str) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def draw_circle(page, selector: str = "#sketch-canvas") -> None:  # type: ignore[no-untyped-def]
    """A circle drawn with real mouse moves (pointer events), in one stroke."""
    box = page.locator(selector).bounding_box()
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    radius = box["width"] * 0.3
    page.mouse.move(centre_x + radius, centre_y)
    page.mouse.down()
    for step in range(1, 41):
        angle = 2 * math.pi * step / 40
        page.mouse.move(
            centre_x + radius * math.cos(angle), centre_y + radius * math.sin(angle), steps=2
        )
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


def test_drawing_shows_a_prediction_and_heatmap(browser, server_url: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server_url)
    page.wait_for_function("document.querySelectorAll('#method-select option').length > 1")
    draw_circle(page)
    page.wait_for_function("document.querySelectorAll('#top-list li').length === 3")
    assert page.locator("#prediction-name").inner_text().strip().lower() in TINY_CLASSES
    heatmap = page.locator("#heatmap-layer")
    assert heatmap.is_visible()
    assert heatmap.get_attribute("src").startswith("data:image/png;base64,")
    assert page.evaluate("document.getElementById('heatmap-layer').naturalWidth") >= 64
    save_screenshot(page, tmp_path, "drawing_page.png")
    # Clicking a class shows its own map via /analyze_class.
    page.locator("#top-list button").nth(1).click()
    second = page.locator("#top-list .name").nth(1).inner_text().strip()
    page.wait_for_function(
        "name => document.getElementById('cam-caption').textContent.toLowerCase().includes(name)",
        arg=f"grad-cam for {second.lower()}",
    )
    save_screenshot(page, tmp_path, "drawing_page_class.png")
    assert not errors, errors
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
    assert "of the map" in page.locator("#importance-caption").inner_text()
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
