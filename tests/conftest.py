"""Shared fixtures: tiny Keras models, label maps and sketches the tests build themselves."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # Each xdist worker (and the servers and scripts it starts) keeps TensorFlow to one thread
    # per pool: workers already fill the cores, and pools sized for the whole machine in every
    # worker would spin against each other.
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from src.utils.tensorflow_logging import configure_tensorflow_logging  # noqa: E402

configure_tensorflow_logging()

TINY_CLASSES = ("circle", "line", "square")


def build_tiny_model(seed: int = 0):  # type: ignore[no-untyped-def]
    """8x8x1 input, named conv layers, a separate logits layer, 3 classes, fixed random weights."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 1), name="sketch")
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inputs)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    logits = layers.Dense(3, name="logits")(x)
    outputs = layers.Activation("softmax", name="predictions")(logits)
    return keras.Model(inputs, outputs, name="tiny")


@pytest.fixture(scope="session")
def tiny_model():  # type: ignore[no-untyped-def]
    """The 8x8 three-class model (Functional, logits layer named "logits")."""
    return build_tiny_model()


@pytest.fixture(scope="session")
def tiny_images() -> np.ndarray:
    """Four 8x8 float32 images with distinct content."""
    rng = np.random.default_rng(1)
    images = rng.random((4, 8, 8, 1)).astype(np.float32)
    images[3] = 0.0  # a blank canvas
    return images


def draw_square_strokes() -> list[list[list[int]]]:
    """A square as one Quick, Draw! stroke (simplified format coordinates)."""
    return [[[10, 200, 200, 10, 10], [10, 10, 200, 200, 10]]]


def draw_circle_strokes() -> list[list[list[int]]]:
    """A circle as one stroke of 24 points."""
    angles = np.linspace(0, 2 * np.pi, 24)
    xs = (128 + 100 * np.cos(angles)).round().astype(int).tolist()
    ys = (128 + 100 * np.sin(angles)).round().astype(int).tolist()
    return [[xs, ys]]


def draw_line_strokes() -> list[list[list[int]]]:
    """A diagonal line as one stroke."""
    return [[[0, 255], [0, 255]]]


STROKES_BY_CLASS = {
    "circle": draw_circle_strokes,
    "line": draw_line_strokes,
    "square": draw_square_strokes,
}


# The "input" block of a card for a model that reads to_model_input's own picture.
LIGHT_INK_CARD = {"ink": "light", "value_range": "0-1"}


@pytest.fixture(scope="session")
def sketch_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small 64x64 sketch CNN (the project's architecture, narrow) saved as .h5 with labels.

    Trained for a few steps on rendered circles, lines and squares so predictions are not
    uniform. Files: model.h5, label_mapping.json, model_card.json (its input convention: light
    ink, 0-1) and sketches/<class>/<n>.png (black on white).
    """
    import keras
    from PIL import Image

    from src.config import ModelConfig
    from src.data.labels import LabelMap
    from src.data.preprocess import strokes_to_model_input
    from src.models.cnn import build_cnn

    directory = tmp_path_factory.mktemp("sketch_model")
    keras.utils.set_random_seed(0)
    model = build_cnn(
        ModelConfig(
            num_classes=3, filters=(8, 8, 16), dense_units=16, dropout=0.0, batch_norm_momentum=0.5
        )
    )
    images, labels = [], []
    rng = np.random.default_rng(0)
    sketches = directory / "sketches"
    for class_index, name in enumerate(TINY_CLASSES):
        (sketches / name).mkdir(parents=True)
        for copy in range(4):
            strokes = STROKES_BY_CLASS[name]()
            jitter = rng.integers(-20, 20, size=2)
            strokes = [
                [[x + int(jitter[0]) for x in s[0]], [y + int(jitter[1]) for y in s[1]]]
                for s in strokes
            ]
            image = strokes_to_model_input(strokes)
            images.append(image)
            labels.append(class_index)
            if copy < 2:
                paper = ((1.0 - image[..., 0]) * 255).astype(np.uint8)
                Image.fromarray(paper).resize((128, 128)).save(sketches / name / f"{copy}.png")
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(np.stack(images), np.array(labels), epochs=30, batch_size=8, verbose=0)
    model.save(directory / "model.h5")
    LabelMap(TINY_CLASSES).save(directory / "label_mapping.json")
    # Trained on strokes_to_model_input's picture (light ink, 0-1): its card says so, as the
    # shipped model's does, so every interface feeds it that way.
    (directory / "model_card.json").write_text(json.dumps({"input": LIGHT_INK_CARD}))
    return directory


@pytest.fixture(scope="session")
def sketch_model_path(sketch_model_dir: Path) -> Path:
    """Path of the small 64x64 .h5 model."""
    return sketch_model_dir / "model.h5"


@pytest.fixture(scope="session")
def sketch_labels_path(sketch_model_dir: Path) -> Path:
    """Path of its label mapping (index to name JSON)."""
    path = sketch_model_dir / "label_mapping.json"
    assert json.loads(path.read_text())["0"] == TINY_CLASSES[0]
    return path


def browser_skip_summary(skipped: list[pytest.TestReport]) -> str | None:
    """One line naming how many browser tests were skipped and why (None when none were)."""
    reasons = []
    for report in skipped:
        if "browser" not in report.keywords:
            continue
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
        reasons.append(reason.removeprefix("Skipped: "))
    if not reasons:
        return None
    why = "; ".join(dict.fromkeys(reasons))
    return f"browser tests: {len(reasons)} skipped ({why}); README.md, 'Browser tests', says how to run them"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After the run, say in one line that the browser tests were skipped, and why."""
    line = browser_skip_summary(terminalreporter.stats.get("skipped", []))
    if line is not None:
        terminalreporter.write_line(line, yellow=True, bold=True)


# --- Tiny training data (tests/test_training.py, tests/test_distributed_training.py) -----------


def _synthetic_strokes(kind: str, rng: np.random.Generator) -> list:
    """A wobbly horizontal line, vertical line or plus sign: shapes a CNN separates easily."""
    wobble = [int(v) for v in rng.integers(-6, 7, size=2)]
    horizontal = [[0, 255], [128 + wobble[0], 128 + wobble[1]]]
    vertical = [[128 + wobble[0], 128 + wobble[1]], [0, 255]]
    return {"h": [horizontal], "v": [vertical], "plus": [horizontal, vertical]}[kind]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """strokes/<class>.ndjson for three classes, and bitmaps/plus.npy for the cross-domain check."""
    from src.data.quickdraw import Drawing, write_ndjson

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for kind in ("h", "v", "plus"):
        drawings = [Drawing(kind, _synthetic_strokes(kind, rng), str(i)) for i in range(40)]
        write_ndjson(drawings, root / "strokes" / f"{kind}.ndjson")
    bitmaps = np.zeros((30, 28, 28), np.uint8)
    bitmaps[:, 13:15, 2:26] = 255
    bitmaps[:, 2:26, 13:15] = 255
    (root / "bitmaps").mkdir()
    np.save(root / "bitmaps" / "plus.npy", bitmaps.reshape(30, 784))
    return root


# --- Browser tests: one live server and one Chromium for the session ---------------------------


# With pytest-xdist (``make test`` runs two workers), each test file runs on one worker, so its
# module-scoped fixtures (a trained model, a backend's subprocess) are built once. The browser
# files share one worker: one live server and one Chromium (session fixtures) serve them all.
BROWSER_FILES = ("test_web_browser.py", "test_web_page_use.py", "test_web_page_wording.py")


def test_file_group(nodeid: str) -> str:
    """The xdist work unit of a test: its file, or "browser" for every browser test file."""
    path = nodeid.split("::", 1)[0]
    return "browser" if path.rsplit("/", 1)[-1] in BROWSER_FILES else path


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """xdist's scope scheduler, with a test's scope being ``test_file_group``.

    (xdist's own ``--dist loadgroup`` markers are lost on pytest releases whose node ids are
    read-only, so the grouping is done here, from the node id alone.)
    """
    from xdist.scheduler import LoadScopeScheduling

    class FileGroupScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return test_file_group(nodeid)

    return FileGroupScheduling(config, log)  # type: ignore[arg-type]


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

SERVER_START_WITHIN_S = 240


def require_chromium() -> None:
    """Skip without Chromium on a workstation; in CI (CI=true) its absence is a failure."""
    if CHROMIUM.exists():
        return
    message = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message)
    pytest.skip(message)


def run_as_user(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    """``python ARGUMENTS`` from the repository root, as a user's shell would run it: no
    TensorFlow or absl logging variables, so a command's own start-up decides what reaches
    stderr."""
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TF_", "GLOG_", "ABSL_"))
    }
    environment["MPLBACKEND"] = "Agg"
    return subprocess.run(
        [sys.executable, *map(str, arguments)],
        cwd=Path(__file__).resolve().parent.parent,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def server_url(sketch_model_path: Path, sketch_labels_path: Path) -> Iterator[str]:
    """``python -m src.web`` on a free loopback port, shared by every browser test file."""
    import httpx

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
        command,
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        # Generous: on a busy 2-core machine the server's TensorFlow start alone can take minutes.
        deadline = time.monotonic() + SERVER_START_WITHIN_S
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
            pytest.fail(f"server did not answer /health within {SERVER_START_WITHIN_S} s")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


@pytest.fixture(scope="module")
def browser(server_url: str) -> Iterator[object]:
    """One headless Chromium per test file (each test opens its own page or context).

    Per file, not per session: Playwright's sync API holds an event loop on the main thread while
    it runs, and a later test on the same worker calling asyncio.run() would find it running.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def light_ink(model):  # type: ignore[no-untyped-def]
    """The convention the project's test models read (light ink on dark, 0-1): the one
    ``to_model_input`` gives without a spec, stated the way a user would pass it."""
    from src.data.input_spec import resolve_input_spec

    return resolve_input_spec(model, "light", "0-1")
