"""Load and save Keras models with errors that say what is wrong and what to do."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from src.errors import ModelLoadError

logger = logging.getLogger(__name__)

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")
# The first bytes of every HDF5 file (the format of Keras .h5 models).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def load_model(path: str | Path, safe_mode: bool = True) -> Any:
    """Load a ``.h5``/``.keras`` Keras model for inference (uncompiled).

    Args:
        path: model file.
        safe_mode: refuse layers that can run arbitrary code (``Lambda``). Only turn this off for
            files you trust completely.

    Returns:
        The ``keras.Model``.

    Raises:
        ModelLoadError: if the file is missing, has the wrong suffix, is not a Keras model,
            is truncated, or holds unsafe layers.
    """
    file = Path(path)
    if not file.is_file():
        raise ModelLoadError(
            f"model file not found: {file} (train one with `python -m src.training.train` "
            "or pass --model models/best_model.h5)"
        )
    if file.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelLoadError(f"{file} is not a Keras model file: use a .h5 or .keras file")
    _check_container(file)
    import keras

    try:
        model = keras.models.load_model(file, compile=False, safe_mode=safe_mode)
    except (ValueError, TypeError) as error:
        message = str(error)
        if "lambda" in message.lower() or "safe_mode" in message:
            raise ModelLoadError(
                f"{file} contains a Lambda layer, which can run arbitrary code, so it is refused; "
                "rebuild the model with built-in layers (or load it yourself with "
                "safe_mode=False if you trust the file)"
            ) from error
        raise ModelLoadError(
            f"{file} is not a loadable Keras model: {_first_line(message)}"
        ) from error
    except (OSError, KeyError, AttributeError, ImportError) as error:
        raise ModelLoadError(
            f"{file} is not a valid Keras model file (truncated or another format): "
            f"{_first_line(str(error))}"
        ) from error
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{file} does not hold a Keras model")
    logger.info("loaded model %s from %s", model.name, file)
    return model


def _check_container(file: Path) -> None:
    """Refuse a file whose bytes are not the container its suffix promises (zip or HDF5).

    Keras reports such files as "File not found", which sends users looking in the wrong place.
    """
    import zipfile

    if file.suffix.lower() == ".keras" and not zipfile.is_zipfile(file):
        raise ModelLoadError(
            f"{file} is not a valid Keras model file (truncated or another format): a .keras "
            "file is a zip archive and this one is not; re-save the model with model.save"
        )
    if file.suffix.lower() in (".h5", ".hdf5"):
        with file.open("rb") as stream:
            if stream.read(8) != HDF5_SIGNATURE:
                raise ModelLoadError(
                    f"{file} is not a valid Keras model file (truncated or another format): a "
                    ".h5 file is HDF5 and this one is not; re-save the model with model.save"
                )


def check_sketch_input(model: Any, image_size: int = 64, source: str | Path | None = None) -> None:
    """Check that a model takes (image_size, image_size, 1) sketches, the project's input.

    Args:
        model: the loaded ``keras.Model``.
        image_size: the side of the square sketches fed to it.
        source: the model file, named in the message when given.

    Raises:
        ModelLoadError: naming the model's actual input shape and what is expected.
    """
    shape = tuple(model.input_shape) if not isinstance(model.input_shape, list) else None
    expected = (None, image_size, image_size, 1)
    if shape != expected:
        where = f"{source}: " if source is not None else ""
        raise ModelLoadError(
            f"{where}model expects input {model.input_shape}, but SketchCAM feeds grayscale sketches "
            f"shaped {expected}; retrain with `python -m src.training.train`"
        )


def _first_line(message: str) -> str:
    """The first non-empty line of an exception message, trimmed for a one-line error."""
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "unknown error"
