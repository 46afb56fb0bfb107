"""``python -m src.training.train`` on bad input: one stderr line, the documented exit code,
and a model folder that always holds one consistent model (old or new)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from src.utils.exit_status import ExitStatus

OLD_LABELS = '{"0": "a", "1": "b"}\n'


def _bitmaps(folder: Path, **arrays: np.ndarray) -> Path:
    """Write ``<class>.npy`` files and return the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in arrays.items():
        np.save(folder / f"{name}.npy", array, allow_pickle=True)
    return folder


def _crosses(count: int, vertical: bool) -> np.ndarray:
    """``count`` 28x28 bitmaps of one bar (flattened to 784), ink 255."""
    images = np.zeros((count, 28, 28), np.uint8)
    if vertical:
        images[:, 4:24, 12:16] = 255
    else:
        images[:, 12:16, 4:24] = 255
    return images.reshape(count, 784)


@pytest.fixture
def good_bitmaps(tmp_path: Path) -> Path:
    return _bitmaps(tmp_path / "bitmaps", h=_crosses(30, False), v=_crosses(30, True))


@pytest.fixture
def old_model_folder(tmp_path: Path) -> Path:
    """A folder holding an older, consistent 2-class model: its files must survive failures."""
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "best_model.h5").write_bytes(b"old model")
    (folder / "model_card.json").write_text('{"classes": ["a", "b"]}\n')
    (folder / "label_mapping.json").write_text(OLD_LABELS)
    return folder


def _assert_old_model_intact(folder: Path) -> None:
    assert (folder / "best_model.h5").read_bytes() == b"old model"
    assert (folder / "model_card.json").read_text() == '{"classes": ["a", "b"]}\n'
    assert (folder / "label_mapping.json").read_text() == OLD_LABELS
    # No temporary files left behind either.
    assert sorted(path.name for path in folder.iterdir() if path.name != "checkpoint") == [
        "best_model.h5",
        "label_mapping.json",
        "model_card.json",
    ]


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the trainer in-process; return its exit code and stderr."""
    from src.training.train import main

    code = main(list(argv))
    return code, capsys.readouterr().err


def _tiny_flags(bitmaps: Path, output: Path, labels: Path | None = None) -> list[str]:
    return [
        "--bitmap_dir", str(bitmaps), "--classes", "h,v", "--output_dir", str(output),
        "--labels_path", str(labels or output / "label_mapping.json"), "--epochs", "1",
        "--batch_size", "16", "--workers", "1", "--filters", "4", "--max_per_class", "20",
    ]  # fmt: skip


def _assert_one_line(error: str, *fragments: str) -> None:
    assert error.startswith("train: error: ") and error.count("\n") == 1, error
    assert "Traceback" not in error
    for fragment in fragments:
        assert fragment in error, error


@pytest.mark.parametrize(
    ("arrays", "classes", "code", "fragment"),
    [
        ({"h": _crosses(5, False)}, "h,v", ExitStatus.DATA_FORMAT, "class 'v' has no data"),
        (
            {"h": _crosses(5, False), "v": np.zeros((0, 784), np.uint8)},
            "h,v",
            ExitStatus.DATA_FORMAT,
            "class 'v' has no data",
        ),
        (
            {"h": _crosses(5, False), "v": np.zeros((5, 28, 28), np.uint8)},
            "h,v",
            ExitStatus.DATA_FORMAT,
            "must have shape (N, 784)",
        ),
        (
            {"h": _crosses(5, False), "v": np.array(["x"] * 784, dtype=str).reshape(1, 784)},
            "h,v",
            ExitStatus.DATA_FORMAT,
            "dtype must be numeric",
        ),
        (
            {"h": _crosses(5, False), "v": np.array([{"pickled": 1}], dtype=object)},
            "h,v",
            ExitStatus.DATA_FORMAT,
            "not a readable .npy array",
        ),
        ({"h": _crosses(5, False)}, "h,h", ExitStatus.LABELS_ERROR, "duplicate class names"),
    ],
)
def test_bad_data_is_one_line_and_its_exit_code(
    tmp_path: Path,
    old_model_folder: Path,
    capsys: pytest.CaptureFixture[str],
    arrays: dict[str, np.ndarray],
    classes: str,
    code: ExitStatus,
    fragment: str,
) -> None:
    bitmaps = _bitmaps(tmp_path / "bad", **arrays)
    flags = _tiny_flags(bitmaps, old_model_folder)
    flags[flags.index("h,v")] = classes
    exit_code, error = _run(capsys, *flags)
    assert exit_code == code
    _assert_one_line(error, fragment)
    _assert_old_model_intact(old_model_folder)


def test_truncated_init_model_exits_4(
    tmp_path: Path, good_bitmaps: Path, old_model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "start.h5"
    truncated.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)
    flags = [*_tiny_flags(good_bitmaps, old_model_folder), "--init_model", str(truncated)]
    exit_code, error = _run(capsys, *flags)
    assert exit_code == ExitStatus.MODEL_ERROR
    _assert_one_line(error, "start.h5")
    _assert_old_model_intact(old_model_folder)


def test_missing_init_model_exits_4_before_the_data_is_read(
    tmp_path: Path, old_model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The data folder does not exist: reading it first would exit 8, not 4.
    flags = _tiny_flags(tmp_path / "no_such_data", old_model_folder)
    exit_code, error = _run(capsys, *flags, "--init_model", str(tmp_path / "gone.h5"))
    assert exit_code == ExitStatus.MODEL_ERROR
    _assert_one_line(error, "gone.h5: model file not found")
    _assert_old_model_intact(old_model_folder)


@pytest.mark.parametrize("target", ["output", "labels"])
def test_unwritable_outputs_are_refused_before_the_data_is_read(
    tmp_path: Path, old_model_folder: Path, capsys: pytest.CaptureFixture[str], target: str
) -> None:
    # A path under a plain file cannot be created, even by the superuser.
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    output = blocker / "out" if target == "output" else old_model_folder
    labels = blocker / "labels.json" if target == "labels" else None
    # The data folder does not exist: reading it first would exit 8, not 10.
    flags = _tiny_flags(tmp_path / "no_such_data", output, labels)
    exit_code, error = _run(capsys, *flags)
    assert exit_code == ExitStatus.OUTPUT_ERROR
    _assert_one_line(error, str(blocker))
    _assert_old_model_intact(old_model_folder)


def test_output_that_is_a_file_exits_10(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "model_file"
    output.write_bytes(b"x")
    exit_code, error = _run(capsys, *_tiny_flags(tmp_path / "no_such_data", output))
    assert exit_code == ExitStatus.OUTPUT_ERROR
    _assert_one_line(error, "--output_dir needs a folder", str(output))
    assert output.read_bytes() == b"x"


@pytest.mark.parametrize(
    ("flag", "value", "fragment"),
    [
        ("--learning_rate", "nan", "--learning_rate must be a finite number"),
        ("--learning_rate", "inf", "--learning_rate must be a finite number"),
        ("--learning_rate", "0", "--learning_rate must be positive"),
        ("--learning_rate", "-1e-3", "--learning_rate must be positive"),
        ("--outlier_weight", "nan", "--outlier_weight must be a finite number"),
        ("--ema_momentum", "nan", "--ema_momentum must be a finite number"),
        ("--max_minutes", "-5", "--max_minutes not negative"),
        ("--validation_fraction", "0", "--validation_fraction must be positive"),
        ("--epochs", "0", "--epochs and --batch_size must be positive"),
        ("--architecture_comparison", "no_such.json", "not a readable JSON file"),
    ],
)
def test_bad_hyperparameters_exit_2_before_the_data_is_read(
    tmp_path: Path,
    old_model_folder: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    value: str,
    fragment: str,
) -> None:
    flags = [*_tiny_flags(tmp_path / "no_such_data", old_model_folder), f"{flag}={value}"]
    exit_code, error = _run(capsys, *flags)
    assert exit_code == ExitStatus.USAGE
    _assert_one_line(error, fragment)
    _assert_old_model_intact(old_model_folder)


def test_diverged_loss_stops_and_writes_no_model(
    good_bitmaps: Path, old_model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Adam moves every weight by about the learning rate per step: 1e30 overflows at once.
    flags = [*_tiny_flags(good_bitmaps, old_model_folder), "--learning_rate", "1e30"]
    flags[flags.index("--epochs") + 1] = "3"
    exit_code, error = _run(capsys, *flags)
    assert exit_code == ExitStatus.ERROR
    _assert_one_line(error, "the training loss became", "no model was written")
    _assert_old_model_intact(old_model_folder)
    # TerminateOnNaN ended the run in its first epoch, and no checkpoint holds NaN weights.
    assert not (old_model_folder / "checkpoint" / "state.json").exists()


def test_publish_together_changes_nothing_when_one_file_cannot_be_written(
    tmp_path: Path,
) -> None:
    from src.training.publish import json_writer, publish_together

    model, card = tmp_path / "best_model.h5", tmp_path / "model_card.json"
    model.write_bytes(b"old")
    card.write_text("old card")
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(OSError) as raised:
        publish_together(
            {
                model: lambda path: path.write_bytes(b"new"),
                card: json_writer({"new": True}),
                blocker / "labels.json": json_writer({"0": "x"}),
            }
        )
    assert raised.value.filename == str(blocker / "labels.json")
    assert model.read_bytes() == b"old" and card.read_text() == "old card"
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "a_file",
        "best_model.h5",
        "model_card.json",
    ]


def test_publish_together_replaces_every_file(tmp_path: Path) -> None:
    from src.training.publish import copy_from, json_writer, publish_together

    source = tmp_path / "checkpoint.h5"
    source.write_bytes(b"new model")
    model, labels = tmp_path / "out" / "best_model.h5", tmp_path / "labels" / "map.json"
    publish_together({model: copy_from(source), labels: json_writer({"0": "h"})})
    assert model.read_bytes() == b"new model"
    assert json.loads(labels.read_text()) == {"0": "h"}
