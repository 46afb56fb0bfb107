"""Checks that stop a training run early and plainly: unwritable outputs, a diverged loss."""

from __future__ import annotations

import errno
import math
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from src.errors import SketchError


class TrainingDivergedError(SketchError):
    """The loss became NaN or infinite, so the weights are unusable and no model is written."""


def check_writable_folder(folder: Path, flag: str) -> None:
    """Create ``folder`` if needed and prove a file can be written in it.

    A real write is tried rather than asking for permissions, which the superuser always has
    even on a read-only file system.

    Raises:
        OSError: if ``folder`` is a file, cannot be created or cannot be written; the error
            names the folder and the message the flag to change.
    """
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            errno.ENOTDIR, f"{flag} needs a folder, but this is a file", str(folder)
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise type(error)(
            error.errno, f"{flag}: cannot write here ({error.strerror})", str(folder)
        ) from error


def check_hyperparameters(values: Mapping[str, float]) -> None:
    """Refuse hyper-parameters that are NaN or infinite (``--learning_rate nan``).

    Raises:
        ValueError: naming the flag and the value.
    """
    for flag, value in values.items():
        if not math.isfinite(value):
            raise ValueError(f"{flag} must be a finite number, got {value}")


def check_finite(history: Mapping[str, Sequence[float]]) -> None:
    """Raise if any epoch's training loss was NaN or infinite (the run stopped there).

    Raises:
        TrainingDivergedError: naming the epoch and what to change.
    """
    for epoch, loss in enumerate(history.get("loss", []), start=1):
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"the training loss became {loss} in epoch {epoch}, so no model was written; "
                "lower --learning_rate or check the training data"
            )
