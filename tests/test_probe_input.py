"""``probe-input`` and the label check of ``batch`` on models whose convention is known.

Each model is built, not trained: a 1x1 convolution turns its input back into ink intensity
(1 = ink) only under the convention it is built for, a global average gives the ink share, and
the logits say "disk" above a share of 0.4 and "ring" below. A filled disk has an ink share of
about 0.6 after preprocessing, a thin ring about 0.1, so the model is right on every input in
its own convention; worked by hand for the two conventions probed below, every other
convention turns the share into a value on the wrong side of 0.4 for at least one class.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.cli.gradcam_analysis import main

CLASSES = ["disk", "ring"]
THRESHOLD = 0.4
# (low, high) input values of paper and ink: value = paper + (ink - paper) * intensity.
PAPER_INK = {
    ("light", "0-1"): (0.0, 1.0),
    ("dark", "0-1"): (1.0, 0.0),
    ("light", "0-255"): (0.0, 255.0),
    ("dark", "0-255"): (255.0, 0.0),
    ("light", "-1-1"): (-1.0, 1.0),
    ("dark", "-1-1"): (1.0, -1.0),
}


def build_share_model(side: int, channels: int, ink: str, value_range: str):  # type: ignore[no-untyped-def]
    """A model right on disks and rings fed in (ink, value_range), built from the formula."""
    import keras
    from keras import layers

    paper, full_ink = PAPER_INK[(ink, value_range)]
    scale = full_ink - paper
    inputs = keras.Input((side, side, channels))
    intensity = layers.Conv2D(1, 1, name="last_conv")(inputs)
    share = layers.GlobalAveragePooling2D()(intensity)
    logits = layers.Dense(2, name="logits")(share)
    outputs = layers.Activation("softmax")(logits)
    model = keras.Model(inputs, outputs)
    # intensity = (value - paper) / scale, averaged over the channels (each holds the sketch).
    kernel = np.full((1, 1, channels, 1), 1.0 / (scale * channels), dtype=np.float32)
    model.get_layer("last_conv").set_weights([kernel, np.array([-paper / scale], np.float32)])
    model.get_layer("logits").set_weights(
        [np.array([[10.0, -10.0]], np.float32), np.array([-10 * THRESHOLD, 10 * THRESHOLD])]
    )
    return model


def _disk_or_ring(name: str, size: int, thickness: float) -> np.ndarray:
    """Dark ink on white: a filled disk, or a ring of the given stroke width."""
    rows, cols = np.mgrid[:size, :size]
    radius = np.hypot(rows - size / 2, cols - size / 2)
    outer = 0.4 * size
    inked = radius < outer if name == "disk" else (radius < outer) & (radius > outer - thickness)
    return np.where(inked, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """disk/ and ring/ folders of PNGs at several sizes, a class-named PNG, a ring .npy and
    .ndjson."""
    root = tmp_path_factory.mktemp("labelled")
    for name in CLASSES:
        (root / name).mkdir()
        for number, size in enumerate((80, 100, 150)):
            image = _disk_or_ring(name, size, thickness=size / 25)
            Image.fromarray(image).save(root / name / f"{number}.png")
    Image.fromarray(_disk_or_ring("disk", 120, 5)).save(root / "disk_7.png")
    # Google's numpy_bitmap layout: 28x28 uint8 light ink on black, flattened.
    bitmaps = 255 - np.stack([_disk_or_ring("ring", 28, 1.5)] * 2)
    np.save(root / "ring.npy", bitmaps.reshape(2, 784))
    # Quick, Draw! drawings: circles as one stroke each, rendered by the model's own size.
    angles = np.linspace(0, 2 * np.pi, 24)
    records = [
        {
            "word": "ring",
            "drawing": [
                [
                    (128 + r * np.cos(angles)).round().tolist(),
                    (128 + r * np.sin(angles)).round().tolist(),
                ]
            ],
        }
        for r in (100, 60)
    ]
    lines = [json.dumps(record) for record in records]
    (root / "ring.ndjson").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _save(model, folder: Path, card: dict | None = None) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """The model as model.keras and labels.json in ``folder`` (and a card, when given)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.keras")
    (folder / "labels.json").write_text(json.dumps(CLASSES), encoding="utf-8")
    if card is not None:
        (folder / "model_card.json").write_text(json.dumps(card), encoding="utf-8")
    return folder / "model.keras", folder / "labels.json"


@pytest.fixture(scope="module")
def google_style_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """28x28x1, light ink on black in 0-1 (as the numpy_bitmap models), with a card."""
    folder = tmp_path_factory.mktemp("google")
    card = {"name": "google style", "classes": 2}
    return _save(build_share_model(28, 1, "light", "0-1"), folder, card)


@pytest.fixture(scope="module")
def three_channel_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """32x32x3, dark ink on white in -1..1 (an ImageNet-style convention), no card."""
    folder = tmp_path_factory.mktemp("rgb")
    return _save(build_share_model(32, 3, "dark", "-1-1"), folder)


def _probe(model_files: tuple[Path, Path], data: Path, output: Path, *extra: str) -> int:
    """Run ``probe-input`` in-process and return its exit code."""
    model, labels = model_files
    return main(
        ["--model", str(model), "--labels", str(labels), "--output", str(output)]
        + ["probe-input", "--data", str(data), *extra]
    )


@pytest.mark.parametrize(
    ("model_fixture", "ink", "value_range"),
    [("google_style_model", "light", "0-1"), ("three_channel_model", "dark", "-1-1")],
)
def test_probe_finds_the_convention_the_model_was_built_for(
    request: pytest.FixtureRequest,
    labelled_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    model_fixture: str,
    ink: str,
    value_range: str,
) -> None:
    status = _probe(request.getfixturevalue(model_fixture), labelled_folder, tmp_path)
    assert status == 0
    report = json.loads((tmp_path / "probe_input.json").read_text(encoding="utf-8"))
    assert (report["best"]["ink"], report["best"]["value_range"]) == (ink, value_range)
    # 3 + 3 in class folders, disk_7.png, the two bitmaps of ring.npy, two drawings.
    assert report["labelled"] == 11
    assert report["per_class"] == {"disk": 4, "ring": 7}
    assert report["best"]["accuracy"] == 1.0
    others = [
        entry["accuracy"]
        for entry in report["conventions"]
        if (entry["ink"], entry["value_range"]) != (ink, value_range)
    ]
    assert len(others) == 5 and max(others) < 1.0
    assert report["label_check"]["suspect"] is False
    output = capsys.readouterr().out
    assert f"Pass: --ink {ink} --value_range {value_range}" in output


def test_write_card_sets_exactly_the_input_block_and_keeps_the_rest(
    google_style_model: tuple[Path, Path], labelled_folder: Path, tmp_path: Path
) -> None:
    card_path = google_style_model[0].with_name("model_card.json")
    before = json.loads(card_path.read_text(encoding="utf-8"))
    assert _probe(google_style_model, labelled_folder, tmp_path, "--write_card") == 0
    after = json.loads(card_path.read_text(encoding="utf-8"))
    assert after == {**before, "input": {"ink": "light", "value_range": "0-1"}}


def test_max_per_class_bounds_the_sample(
    google_style_model: tuple[Path, Path], labelled_folder: Path, tmp_path: Path
) -> None:
    assert _probe(google_style_model, labelled_folder, tmp_path, "--max_per_class", "2") == 0
    report = json.loads((tmp_path / "probe_input.json").read_text(encoding="utf-8"))
    assert report["per_class"] == {"disk": 2, "ring": 2}


def test_a_folder_without_labelled_input_is_one_line_and_exit_8(
    google_style_model: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    data = tmp_path / "unlabelled"
    data.mkdir()
    Image.fromarray(_disk_or_ring("disk", 64, 3)).save(data / "sketch_1.png")
    assert _probe(google_style_model, data, tmp_path / "out") == 8
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no labelled input in" in error
    assert not (tmp_path / "out" / "probe_input.json").exists()


def test_data_that_is_not_a_folder_is_one_line_and_exit_8(
    google_style_model: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _probe(google_style_model, tmp_path / "missing", tmp_path / "out") == 8
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "is not a folder" in error


@pytest.fixture(scope="module")
def batch_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """64x64x1, light ink on black in 0-1, which its card declares for ``batch``."""
    folder = tmp_path_factory.mktemp("batch")
    card = {"input": {"ink": "light", "value_range": "0-1"}}
    return _save(build_share_model(64, 1, "light", "0-1"), folder, card)[0]


@pytest.mark.parametrize(
    ("labels", "suspect"), [(["disk", "ring"], False), (["ring", "disk"], True)]
)
def test_batch_label_check_flags_a_mapping_in_the_wrong_order(
    batch_model: Path,
    labelled_folder: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    labels: list[str],
    suspect: bool,
) -> None:
    label_file = tmp_path / "labels.json"
    label_file.write_text(json.dumps(labels), encoding="utf-8")
    output = tmp_path / "out"
    command = ["--model", str(batch_model), "--labels", str(label_file), "--output", str(output)]
    assert main([*command, "batch", "--images_dir", str(labelled_folder)]) == 0
    summary = json.loads((output / "batch_summary.json").read_text(encoding="utf-8"))
    check = summary["label_check"]
    assert check["suspect"] is suspect
    error = capsys.readouterr().err
    report = (output / "report.html").read_text(encoding="utf-8")
    if suspect:
        # The model answers "disk" on disks; the file calls output 0 "ring": swap them back.
        assert check["answered_as"] == {"ring": "disk", "disk": "ring"}
        assert check["suggested_labels"] == ["disk", "ring"]
        assert "label check:" in error
        assert "Label check: the mapping looks out of order" in report
    else:
        assert check["answered_as"] == {}
        assert "label check" not in error
        assert "Label check" not in report


def test_an_unlabelled_batch_carries_a_label_check_that_is_not_suspect(
    batch_model: Path, tmp_path: Path
) -> None:
    data = tmp_path / "unlabelled"
    data.mkdir()
    Image.fromarray(_disk_or_ring("disk", 64, 3)).save(data / "sketch_1.png")
    labels = batch_model.with_name("labels.json")
    output = tmp_path / "out"
    command = ["--model", str(batch_model), "--labels", str(labels), "--output", str(output)]
    assert main([*command, "batch", "--images_dir", str(data)]) == 0
    summary = json.loads((output / "batch_summary.json").read_text(encoding="utf-8"))
    assert summary["label_check"] == {"suspect": False, "reason": "no labelled inputs"}
