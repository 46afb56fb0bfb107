"""Every interface feeds each model its own input convention (issue 21's evidence table).

Six small models differ in size (28, 32, 48, 64, 96), channels (one is 3-channel), ink (dark
and light), value range (0-1, 0-255, -1-1), file (a Keras 2 ``.h5`` written in the legacy
layout, Keras 3 ``.keras`` and ``.h5``) and where the convention comes from (the card beside
the model, the options, the default). Through the CLI's ``single``, ``batch`` and ``class``,
``predict.py``, the web app and the Python API, the top-1 class and the map must equal those of
the CAM engine fed by hand: the canonical picture (ink 1, paper 0, at the model's size)
turned into the model's values by the arithmetic written out below, maps to 1e-5.
"""

from __future__ import annotations

import base64
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from tests.test_legacy_models import _conv, _dense, _pool, write_keras2_h5

CLASSES = ("alpha", "beta", "gamma")
# Value range -> (value of no ink... of 0 grey, value of 1 grey), written out independently of
# src.data.input_spec.
RANGES = {"0-1": (0.0, 1.0), "0-255": (0.0, 255.0), "-1-1": (-1.0, 1.0)}


@dataclass(frozen=True)
class Case:
    """One test model and where its convention comes from."""

    name: str
    side: int
    channels: int
    ink: str
    value_range: str
    file: str  # "keras", "h5" (Keras 3) or "keras2" (the legacy layout)
    source: str  # "card", "option" or "default"


CASES = [
    Case("keras2_28_light_0-1", 28, 1, "light", "0-1", "keras2", "card"),
    Case("keras3_28_light_0-255", 28, 1, "light", "0-255", "keras", "card"),
    Case("keras3_64_dark_0-1_default", 64, 1, "dark", "0-1", "keras", "default"),
    Case("keras3_96_dark_0-255", 96, 1, "dark", "0-255", "h5", "card"),
    Case("keras3_32_rgb_light_-1-1", 32, 3, "light", "-1-1", "keras", "card"),
    Case("keras3_48_dark_-1-1_options", 48, 1, "dark", "-1-1", "keras", "option"),
]


def _keras3_model(case: Case, seed: int):  # type: ignore[no-untyped-def]
    """A small CNN whose first layer undoes its value range, so random weights see ~[0, 1]."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    low, high = RANGES[case.value_range]
    inputs = keras.Input((case.side, case.side, case.channels))
    x = layers.Rescaling(1.0 / (high - low), offset=-low / (high - low))(inputs)
    x = layers.Conv2D(6, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(6, 3, padding="same", activation="relu", name="last_conv")(x)
    x = layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, layers.Dense(len(CLASSES), activation="softmax")(x))
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(0.0, 0.6, w.shape).astype(np.float32) for w in model.weights])
    return model


def _keras2_file(path: Path, case: Case, seed: int) -> None:
    """A Keras 2.2 Sequential ``.h5`` (batch_input_shape on the first layer) of a 28x28 model."""
    import keras
    from keras import layers

    inputs = keras.Input((case.side, case.side, 1))
    x = layers.Conv2D(2, 3, activation="relu", name="conv2d_1")(inputs)
    x = layers.GlobalAveragePooling2D(name="global_average_pooling2d_1")(x)
    reference = keras.Model(inputs, layers.Dense(3, activation="softmax", name="dense_1")(x))
    rng = np.random.default_rng(seed)
    reference.set_weights(
        [rng.normal(0.3, 1.0, w.shape).astype(np.float32) for w in reference.weights]
    )
    shape = [None, case.side, case.side, 1]
    config = {
        "class_name": "Sequential",
        "config": {
            "name": "sequential_1",
            "layers": [
                _conv("conv2d_1", batch_input_shape=shape),
                _pool("global_average_pooling2d_1"),
                _dense("dense_1"),
            ],
        },
    }
    write_keras2_h5(path, config, reference, "2.2.4")


def _drawing(path: Path) -> Path:
    """A user's own sketch: dark ink on white, 150x110, nothing symmetric about it."""
    image = Image.new("L", (150, 110), 255)
    pen = ImageDraw.Draw(image)
    pen.line([(20, 15), (25, 90), (95, 85)], fill=0, width=5)
    pen.ellipse([(80, 20), (130, 60)], outline=0, width=4)
    pen.line([(60, 30), (70, 50)], fill=0, width=3)
    image.save(path)
    return path


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every case's model folder (model, labels, card) and the drawing, built once."""
    root = tmp_path_factory.mktemp("convention_zoo")
    drawing = _drawing(root / "drawing.png")
    images_dir = root / "images"
    images_dir.mkdir()
    shutil.copy(drawing, images_dir / "drawing.png")
    paths = {}
    for seed, case in enumerate(CASES):
        folder = root / case.name
        folder.mkdir()
        if case.file == "keras2":
            path = folder / "model.h5"
            _keras2_file(path, case, seed)
        else:
            path = folder / f"model.{case.file}"
            _keras3_model(case, seed).save(path)
        labels = {str(index): name for index, name in enumerate(CLASSES)}
        (folder / "label_mapping.json").write_text(json.dumps(labels))
        if case.source == "card":
            card = {"input": {"ink": case.ink, "value_range": case.value_range}}
            (folder / "model_card.json").write_text(json.dumps(card))
        paths[case.name] = path
    return {"drawing": drawing, "images_dir": images_dir, "paths": paths}


def _by_hand(case: Case, path: Path, drawing: Path) -> tuple[int, np.ndarray]:
    """Top-1 and map of the CAM engine fed the model's convention by hand."""
    from src.data.preprocess import load_image, to_model_input
    from src.models.io import load_model
    from src.visualization.cam_engine import CamEngine
    from src.visualization.cam_methods import method_named

    # The canonical picture: ink intensity (1 ink, 0 paper) at the model's size.
    ink = to_model_input(load_image(drawing), size=case.side)[..., 0]
    grey = ink if case.ink == "light" else 1.0 - ink
    low, high = RANGES[case.value_range]
    values = np.repeat((low + (high - low) * grey)[..., np.newaxis], case.channels, axis=-1)
    result = CamEngine(load_model(path)).explain(values[np.newaxis], method_named("gradcam"))
    return int(np.argmax(result.probabilities[0])), result.heatmaps[0]


@pytest.fixture(scope="module")
def expected(zoo: dict[str, Any]) -> dict[str, tuple[int, np.ndarray]]:
    """The hand-fed engine's (top-1, map) per case; each map has something on it."""
    found = {case.name: _by_hand(case, zoo["paths"][case.name], zoo["drawing"]) for case in CASES}
    for name, (_, heatmap) in found.items():
        assert heatmap.max() > 0.5, f"{name}: an empty map would prove nothing"
    return found


@pytest.fixture
def maps(monkeypatch: pytest.MonkeyPatch) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every (class indices, heatmaps) the CAM engine computes while the test runs."""
    from src.visualization.cam_engine import CamEngine

    seen: list[tuple[np.ndarray, np.ndarray]] = []
    original = CamEngine.explain

    def spy(self: Any, images: Any, method: Any, targets: Any = None) -> Any:
        result = original(self, images, method, targets)
        seen.append((np.array(result.class_indices), np.array(result.heatmaps)))
        return result

    monkeypatch.setattr(CamEngine, "explain", spy)
    return seen


def _options(case: Case) -> list[str]:
    """The command-line options of a case whose convention comes from the options."""
    return ["--ink", case.ink, "--value_range", case.value_range] if case.source == "option" else []


def _cli(case: Case, zoo: dict[str, Any], output: Path, *command: str) -> None:
    from src.cli.gradcam_analysis import main

    path = zoo["paths"][case.name]
    labels = path.with_name("label_mapping.json")
    code = main(
        ["--model", str(path), "--labels", str(labels), "--output", str(output)]
        + _options(case)
        + list(command)
    )
    assert code == 0


def _map_for(maps: list[tuple[np.ndarray, np.ndarray]], class_index: int) -> np.ndarray:
    """The first map the engine computed for ``class_index`` on a single image."""
    for classes, heatmaps in maps:
        if len(classes) == 1 and int(classes[0]) == class_index:
            return heatmaps[0]
    raise AssertionError(f"no map of class {class_index} was computed")


IDS = [case.name for case in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_single(case: Case, zoo, expected, maps, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    top1, heatmap = expected[case.name]
    _cli(case, zoo, tmp_path, "single", "--image", str(zoo["drawing"]))
    summary = json.loads((tmp_path / "analysis_summary.json").read_text())
    assert summary["predicted_class"] == top1
    np.testing.assert_allclose(_map_for(maps, top1), heatmap, atol=1e-5)
    notices = [line for line in capsys.readouterr().err.splitlines() if "convention" in line]
    if case.source == "default":
        assert notices == [
            "input convention: dark ink on light paper, values 0-1 (default; pass --ink/"
            "--value_range or run probe-input)"
        ]
    else:
        assert notices == []


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_batch(case: Case, zoo, expected, maps, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    top1, heatmap = expected[case.name]
    _cli(case, zoo, tmp_path, "batch", "--images_dir", str(zoo["images_dir"]))
    summary = json.loads((tmp_path / "batch_summary.json").read_text())
    assert [record["predicted_class_index"] for record in summary["images"]] == [top1]
    np.testing.assert_allclose(_map_for(maps, top1), heatmap, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_cli_class(case: Case, zoo, expected, maps, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    top1, heatmap = expected[case.name]
    _cli(
        case, zoo, tmp_path, "class", "--image", str(zoo["drawing"]), "--class_name", CLASSES[top1]
    )
    summary = json.loads((tmp_path / f"class_analysis_{CLASSES[top1]}.json").read_text())
    assert summary["predicted_class_index"] == top1
    np.testing.assert_allclose(_map_for(maps, top1), heatmap, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_predict_py(case: Case, zoo, expected, maps, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from src.cli.predict import main

    top1, heatmap = expected[case.name]
    path = zoo["paths"][case.name]
    arguments = ["--model_path", str(path), "--image_path", str(zoo["drawing"])]
    arguments += ["--label_mapping", str(path.with_name("label_mapping.json"))]
    arguments += ["--gradcam", "--output_dir", str(tmp_path), *_options(case)]
    assert main(arguments) == 0
    summary = json.loads((tmp_path / "analysis_summary.json").read_text())
    assert summary["predicted_class"] == top1
    np.testing.assert_allclose(_map_for(maps, top1), heatmap, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_web_app(case: Case, zoo, expected, maps) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from src.web.app import create_app
    from src.web.settings import WebSettings

    top1, heatmap = expected[case.name]
    path = zoo["paths"][case.name]
    options = {"ink": case.ink, "value_range": case.value_range} if case.source == "option" else {}
    settings = WebSettings(
        model_path=path,
        label_mapping=path.with_name("label_mapping.json"),
        warm_up=False,
        **options,
    )
    encoded = base64.b64encode(zoo["drawing"].read_bytes()).decode("ascii")
    with TestClient(create_app(settings)) as client:
        health = client.get("/health").json()
        answer = client.post("/predict_with_gradcam", json={"image": encoded}).json()
    assert health["input"] == {
        "height": case.side,
        "width": case.side,
        "channels": case.channels,
        "ink": case.ink,
        "value_range": case.value_range,
        "source": case.source,
    }
    assert answer["class_index"] == top1
    np.testing.assert_allclose(_map_for(maps, top1), heatmap, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_python_api(case: Case, zoo, expected) -> None:  # type: ignore[no-untyped-def]
    """The guide's ``GradCAM(model)`` finds the card beside the loaded file; a convention can
    also be passed (``input_spec``)."""
    from src.data.input_spec import resolve_input_spec
    from src.visualization.gradcam import GradCAM, load_model_for_gradcam

    top1, heatmap = expected[case.name]
    model = load_model_for_gradcam(zoo["paths"][case.name])
    if case.source == "option":
        gradcam = GradCAM(model, input_spec=resolve_input_spec(model, case.ink, case.value_range))
    else:
        gradcam = GradCAM(model)
    result = gradcam.explain(gradcam.model_input(Image.open(zoo["drawing"])))
    assert int(result.class_indices[0]) == top1
    np.testing.assert_allclose(result.heatmaps[0], heatmap, atol=1e-5)


@pytest.mark.parametrize(
    ("option", "value", "choices"),
    [("--ink", "grey", "'dark', 'light'"), ("--value_range", "0-100", "'0-1', '0-255', '-1-1'")],
)
def test_unknown_convention_value_exits_2_naming_the_choices(
    option: str, value: str, choices: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from src.cli.gradcam_analysis import main
    from src.cli.predict import main as predict_main

    assert main([option, value, "single", "--image", "x.png"]) == 2
    assert choices in capsys.readouterr().err
    assert predict_main(["--image_path", "x.png", option, value]) == 2
    assert choices in capsys.readouterr().err
