"""Resumable training: a checkpoint at every epoch's end, and restoring a run from it.

``<output_dir>/checkpoint/`` holds, after each epoch:
- ``epoch-NNNN.weights.h5``: ``model.save_weights``, which stores the optimizer's variables
  too (Adam's moments, its step count that drives the learning-rate schedule, the EMA weights);
- ``best_model.h5``: the best model so far (the run's result once it ends);
- ``state.json``: epochs done, which weights file belongs to them, the dropout layers' random
  states (``save_weights`` leaves them out), the best validation accuracy and early stopping's
  count, and the history so far;
- ``train_config.json``: the configuration, so ``--resume DIR`` needs no other flag.

The data order and augmentation need no state: each epoch's order and each batch's random
generator are functions of (seed, epoch, batch) (``build_training_sequence``).

``keras.callbacks.BackupAndRestore`` does the weights-and-epoch part, but it writes the weights
and its epoch file one after the other (a stop between them resumes the wrong epoch), and has
no room for the state above; this module writes the weights first under a new name and then
``state.json`` atomically, so the pair on disk is always consistent.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from src.config import ModelConfig, TrainConfig
from src.training.publish import json_writer, publish_together

logger = logging.getLogger(__name__)

CHECKPOINT_DIRNAME = "checkpoint"
STATE_FILENAME = "state.json"
CONFIG_FILENAME = "train_config.json"
BEST_FILENAME = "best_model.h5"
# The TrainConfig fields that hold paths.
PATH_SETTINGS = (
    "bitmap_dir",
    "strokes_dir",
    "images_dir",
    "output_dir",
    "labels_path",
    "init_model",
    "architecture_comparison",
)


def checkpoint_dir(output_dir: str | Path) -> Path:
    """The folder of a run's checkpoint inside its output folder."""
    return Path(output_dir) / CHECKPOINT_DIRNAME


def save_config(config: TrainConfig, directory: Path) -> None:
    """Write ``config`` as JSON into ``directory`` (absolute paths, tuples as lists).

    Paths are made absolute so that ``--resume`` works from any working folder.
    """
    fields = dataclasses.asdict(config)
    for name in PATH_SETTINGS:
        if fields[name] is not None:
            fields[name] = str(Path(fields[name]).resolve())
    publish_together(
        {directory / CONFIG_FILENAME: json_writer(json.loads(json.dumps(fields, default=str)))}
    )


def load_config(directory: str | Path) -> TrainConfig:
    """The TrainConfig a checkpoint was written with.

    Raises:
        FileNotFoundError: if ``directory`` holds no checkpoint (names the folder).
    """
    path = checkpoint_dir(directory) / CONFIG_FILENAME
    if not path.is_file():
        raise FileNotFoundError(f"{directory} holds no training checkpoint ({path} is missing)")
    fields = json.loads(path.read_text(encoding="utf-8"))
    model_fields = fields.pop("model")
    model = ModelConfig(**{**model_fields, "filters": tuple(model_fields["filters"])})
    for name in PATH_SETTINGS:
        if fields.get(name) is not None:
            fields[name] = Path(fields[name])
    fields["classes"] = tuple(fields["classes"])
    return TrainConfig(**fields, model=model)


def clear_checkpoint(directory: Path) -> None:
    """Remove a previous run's checkpoint files, so a fresh run never resumes them."""
    for name in (STATE_FILENAME, CONFIG_FILENAME, BEST_FILENAME):
        (directory / name).unlink(missing_ok=True)
    for old in directory.glob("epoch-*.weights.h5"):
        old.unlink()


def read_state(directory: Path) -> dict[str, Any] | None:
    """The last completed epoch's state, or None when no epoch has finished yet."""
    path = directory / STATE_FILENAME
    if not path.is_file():
        return None
    return dict(json.loads(path.read_text(encoding="utf-8")))


def _seed_generators(model: Any) -> list[Any]:
    """Every SeedGenerator of the model's layers (dropout), nested models included, in order."""
    import keras

    found = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            found.extend(_seed_generators(layer))
        elif isinstance(getattr(layer, "seed_generator", None), keras.random.SeedGenerator):
            found.append(layer.seed_generator)
    return found


def restore(model: Any, directory: Path, state: dict[str, Any]) -> None:
    """Load weights, optimizer variables and random states of ``state`` into a compiled model."""
    if model.optimizer is not None and not model.optimizer.built:
        # The optimizer's variables must exist before the file's values can land in them.
        model.optimizer.build(model.trainable_variables)
    model.load_weights(directory / state["weights_file"])
    for generator, values in zip(_seed_generators(model), state["seed_states"], strict=True):
        generator.state.assign(np.asarray(values, dtype=generator.state.dtype))
    logger.info("resumed after epoch %d from %s", state["epochs_done"], directory)


def checkpoint_callbacks(
    directory: Path, state: dict[str, Any] | None, early_stopping: Any, best_checkpoint: Any
) -> tuple[Any, Any]:
    """Two callbacks: the first goes before every other, the second after every other.

    The first writes the raw weights at each epoch's end, before ``SwapEMAWeights`` swaps in
    the average; the second, once early stopping and the best checkpoint have seen the epoch,
    writes ``state.json`` naming those weights, then removes the previous epoch's file. At the
    start of a resumed fit, the second puts back early stopping's count and the best accuracy.
    """
    import keras

    saved = {"history": dict(state["history"]) if state else {}}

    class SaveWeights(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            saved["weights_file"] = f"epoch-{epoch + 1:04d}.weights.h5"
            saved["seed_states"] = [
                keras.ops.convert_to_numpy(generator.state).tolist()
                for generator in _seed_generators(self.model)
            ]
            self.model.save_weights(directory / saved["weights_file"])

    class SaveState(keras.callbacks.Callback):  # type: ignore[misc]
        history: dict[str, list[float]] = saved["history"]

        def on_train_begin(self, logs: dict | None = None) -> None:
            if state is not None:
                early_stopping.wait = state["epochs_without_improvement"]
                early_stopping.best = state["best_val_accuracy"]
                early_stopping.best_epoch = state["best_epoch"] - 1
                best_checkpoint.best = state["best_val_accuracy"]

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            for key, value in (logs or {}).items():
                saved["history"].setdefault(key, []).append(float(value))
            if not math.isfinite(saved["history"].get("loss", [0.0])[-1]):
                # A diverged epoch is never resumed from: the previous state stays.
                return
            progress = {
                "epochs_done": epoch + 1,
                "weights_file": saved["weights_file"],
                "seed_states": saved["seed_states"],
                "best_val_accuracy": _plain(early_stopping.best),
                "best_epoch": early_stopping.best_epoch + 1,
                "epochs_without_improvement": early_stopping.wait,
                "history": saved["history"],
            }
            publish_together({directory / STATE_FILENAME: json_writer(progress)})
            for old in directory.glob("epoch-*.weights.h5"):
                if old.name != saved["weights_file"]:
                    old.unlink()

    return SaveWeights(), SaveState()


def _plain(value: Any) -> float | None:
    """A JSON number for early stopping's best value (None before the first epoch)."""
    return None if value is None else float(value)
