"""A run stopped after epoch k and resumed ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from src.config import ModelConfig, TrainConfig

EPOCHS = 4
STOP_AFTER = 2


def _config(tiny_data: Path, output_dir: Path, **overrides: object) -> TrainConfig:
    """Four short epochs on the tiny data, with every piece of state a resume must carry:
    Adam's moments and step (cosine schedule), an EMA, dropout's random state, augmentation,
    the data order and early stopping's count."""
    settings: dict[str, object] = {
        "bitmap_dir": tiny_data / "bitmaps",
        "strokes_dir": tiny_data / "strokes",
        "classes": ("h", "v", "plus"),
        "output_dir": output_dir,
        "labels_path": output_dir / "label_mapping.json",
        "batch_size": 16,
        "epochs": EPOCHS,
        "learning_rate": 1e-2,
        "patience": 10,
        "workers": 1,
        "ema_momentum": 0.9,
        "model": ModelConfig(filters=(4, 8), dense_units=8, dropout=0.3),
    }
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


def _stop_after(epochs: int):  # type: ignore[no-untyped-def]
    """A stand-in for the --max_minutes callback that ends the run after ``epochs`` epochs."""
    import keras

    class StopAfter(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            if epoch + 1 == epochs:
                self.model.stop_training = True

    return lambda max_minutes: StopAfter()


def _weights(path: Path) -> list[np.ndarray]:
    """Every variable stored in a weights or model file (model and optimizer), in file order."""
    import h5py

    found: list[np.ndarray] = []
    with h5py.File(path, "r") as file:
        file.visititems(
            lambda name, item: (
                found.append(np.asarray(item)) if isinstance(item, h5py.Dataset) else None
            )
        )
    return found


def _last_state(output_dir: Path) -> tuple[dict, list[np.ndarray]]:
    """The checkpoint's state.json and the weights file it names."""
    directory = output_dir / "checkpoint"
    state = json.loads((directory / "state.json").read_text())
    return state, _weights(directory / state["weights_file"])


@pytest.fixture(scope="module")
def uninterrupted(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from src.training.train import train

    output_dir = tmp_path_factory.mktemp("uninterrupted")
    train(_config(tiny_data, output_dir))
    return output_dir


def _assert_same_run(resumed: Path, uninterrupted: Path) -> None:
    state, weights = _last_state(resumed)
    expected_state, expected_weights = _last_state(uninterrupted)
    assert state["epochs_done"] == expected_state["epochs_done"] == EPOCHS
    assert len(weights) == len(expected_weights)
    for got, expected in zip(weights, expected_weights, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    for got, expected in zip(
        _weights(resumed / "best_model.h5"), _weights(uninterrupted / "best_model.h5"), strict=True
    ):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(
        state["history"]["loss"], expected_state["history"]["loss"], rtol=1e-5
    )


def test_stopped_then_resumed_run_matches_an_uninterrupted_one(
    tiny_data: Path, tmp_path: Path, uninterrupted: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import src.training.fit as fit
    import src.training.train as training

    # Started with paths relative to its working folder...
    monkeypatch.chdir(tmp_path)
    output_dir = Path("stopped")
    comparison = Path("comparison.json")
    comparison.write_text('[{"candidate": "cnn", "test_top1": 0.5}]')
    relative_data = Path(os.path.relpath(tiny_data, tmp_path))
    with monkeypatch.context() as patch:
        patch.setattr(fit, "time_limit_callback", _stop_after(STOP_AFTER))
        training.train(
            _config(relative_data, output_dir, max_minutes=1.0, architecture_comparison=comparison)
        )
    stopped_state, _ = _last_state(output_dir)
    assert stopped_state["epochs_done"] == STOP_AFTER
    # The stopped run ended cleanly: a consistent model folder of its own.
    assert (output_dir / "best_model.h5").is_file()
    assert (output_dir / "model_card.json").is_file()

    # ...and resumed from another one: the saved settings hold absolute paths.
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    output_dir = tmp_path / "stopped"
    assert training.main(["--resume", "../stopped"]) == 0
    _assert_same_run(output_dir, uninterrupted)
    card = json.loads((output_dir / "model_card.json").read_text())
    assert card["training"]["epochs_run"] == EPOCHS
    # Settings given only to the first run come back from the checkpoint.
    assert card["training"]["architecture_comparison"] == [{"candidate": "cnn", "test_top1": 0.5}]


def test_ctrl_c_after_a_checkpoint_exits_130_and_resumes(
    tiny_data: Path,
    tmp_path: Path,
    uninterrupted: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import keras

    import src.training.fit as fit
    import src.training.train as training

    class CtrlC(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_begin(self, epoch, logs=None) -> None:  # type: ignore[no-untyped-def]
            if epoch == STOP_AFTER:
                raise KeyboardInterrupt

    output_dir = tmp_path / "interrupted"
    # An older model in the folder must survive the interruption untouched.
    output_dir.mkdir()
    (output_dir / "best_model.h5").write_bytes(b"old model")
    (output_dir / "label_mapping.json").write_text('{"0": "a", "1": "b"}')
    config = _config(tiny_data, output_dir, max_minutes=1.0)
    with monkeypatch.context() as patch:
        patch.setattr(fit, "time_limit_callback", lambda minutes: CtrlC())
        patch.setattr(training, "config_from_args", lambda args: config)
        assert training.main(["--strokes_dir", "unused"]) == 130
    error = capsys.readouterr().err
    assert error == "train: error: interrupted\n"
    assert (output_dir / "best_model.h5").read_bytes() == b"old model"
    assert (output_dir / "label_mapping.json").read_text() == '{"0": "a", "1": "b"}'
    assert not (output_dir / "model_card.json").exists()
    assert _last_state(output_dir)[0]["epochs_done"] == STOP_AFTER

    assert training.main(["--resume", str(output_dir)]) == 0
    _assert_same_run(output_dir, uninterrupted)


def test_max_minutes_ends_cleanly_with_a_resumable_checkpoint(
    tiny_data: Path, tmp_path: Path
) -> None:
    from src.training.train import train

    # Far less than one epoch lasts: the run ends after its first epoch, which always runs.
    output_dir = tmp_path / "budget"
    result = train(_config(tiny_data, output_dir, max_minutes=1e-6))
    assert len(result.history["loss"]) == 1
    assert _last_state(output_dir)[0]["epochs_done"] == 1
    assert result.model_path.is_file() and result.card_path.is_file()


def test_resume_without_a_checkpoint_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from src.training.train import main

    assert main(["--resume", str(tmp_path)]) == 10
    error = capsys.readouterr().err
    assert error.startswith("train: error: ") and error.count("\n") == 1
    assert "holds no training checkpoint" in error


def test_resume_refuses_settings_it_would_not_apply(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from src.training.train import main

    argv = ["--resume", str(tmp_path), "--learning_rate", "0.1", "--max_minutes", "5"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error == (
        "train: error: --resume continues with the stopped run's own settings; --learning_rate "
        "cannot change (only --epochs, --max_minutes, --patience, --workers can)\n"
    )
