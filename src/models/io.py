"""Load and save Keras models with errors that say what is wrong and what to do."""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import weakref
import zipfile
from pathlib import Path
from typing import Any

from src.data.input_spec import InputSpec, card_path_for, read_card, resolve_input_spec
from src.errors import ModelLoadError
from src.models.legacy_config import repair_legacy_config
from src.models.model_config import read_archive_config, read_h5_config
from src.models.sketch_model import check_sketch_input

__all__ = [
    "check_sketch_input",
    "declared_output_kind",
    "input_spec_of",
    "load_model",
    "model_source",
]

logger = logging.getLogger(__name__)

MODEL_SUFFIXES = (".h5", ".hdf5", ".keras")
# The first bytes of every HDF5 file (the format of Keras .h5 models).
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
# The file each loaded model came from: a caller holding only the model (the guide's
# ``GradCAM(model)``, the monitoring snippet) still finds the model card, and its convention.
_SOURCES: weakref.WeakKeyDictionary[Any, Path] = weakref.WeakKeyDictionary()


def load_model(path: str | Path, safe_mode: bool = True) -> Any:
    """Load a ``.h5``/``.keras`` Keras model for inference (uncompiled).

    Keras 2 ``.h5`` files whose config Keras 3 refuses are repaired (config only) and their
    weights loaded layer by layer; each repair is logged at INFO (``--verbose`` shows it).

    Args:
        path: model file.
        safe_mode: refuse layers that can run arbitrary code (``Lambda``). Only turn this off for
            files you trust completely.

    Returns:
        The ``keras.Model``.

    Raises:
        ModelLoadError: if the file is missing, has the wrong suffix, is not a Keras model,
            is truncated, holds unsafe layers, or is a SavedModel or TensorFlow Lite model.
    """
    file = Path(path)
    _check_format(file)
    _check_container(file)
    try:
        repaired, repairs = _bounded_and_repaired_config(file)
        import keras  # after the bounded config read: a hostile file costs no TensorFlow start

        for repair in repairs:
            logger.info("%s: repaired legacy config: %s", file, repair)
        if repairs:
            model = _load_repaired_h5(file, repaired, safe_mode)
        else:
            model = keras.models.load_model(file, compile=False, safe_mode=safe_mode)
    except ModelLoadError:
        raise
    except (ValueError, TypeError) as error:
        raise _load_error(file, str(error)) from error
    except (OSError, KeyError, AttributeError, ImportError, zipfile.BadZipFile) as error:
        raise ModelLoadError(
            f"{file} is not a valid Keras model file (truncated or another format): "
            f"{_first_line(str(error))}"
        ) from error
    if not isinstance(model, keras.Model):
        raise ModelLoadError(f"{file} does not hold a Keras model")
    logger.info("loaded model %s from %s", model.name, file)
    _SOURCES[model] = file
    return model


def model_source(model: Any) -> Path | None:
    """The file ``load_model`` read ``model`` from, or None for a model built in memory."""
    try:
        return _SOURCES.get(model)
    except TypeError:  # an object that cannot be weakly referenced was never loaded here
        return None


def input_spec_of(model: Any) -> InputSpec:
    """The convention of a model given without options: the ``"input"`` block of the card
    beside the file ``load_model`` read it from, else the defaults.

    Raises:
        ModelLoadError: an input shape or card convention SketchCAM cannot feed.
    """
    return resolve_input_spec(model, model_path=model_source(model))


def _check_format(file: Path) -> None:
    """Refuse what is not a Keras model file, naming how to convert the formats that say so."""
    if file.is_dir() and (file / "saved_model.pb").is_file() or file.suffix.lower() == ".pb":
        raise ModelLoadError(
            f"{file} is a TensorFlow SavedModel; SketchCAM needs a Keras .keras or .h5 file: "
            "load it with tf.keras.models.load_model (or keras.layers.TFSMLayer) and save it "
            "with model.save('model.keras')"
        )
    if file.suffix.lower() == ".tflite":
        raise ModelLoadError(
            f"{file} is a TensorFlow Lite model, which cannot be explained (it has no "
            "gradients); SketchCAM needs the Keras model it was converted from (.keras or .h5)"
        )
    if not file.is_file():
        raise ModelLoadError(
            f"model file not found: {file} (train one with `python -m src.training.train` "
            "or pass --model models/best_model.h5)"
        )
    if file.suffix.lower() not in MODEL_SUFFIXES:
        raise ModelLoadError(f"{file} is not a Keras model file: use a .h5 or .keras file")


def _check_container(file: Path) -> None:
    """Refuse a file whose bytes are not the container its suffix promises (zip or HDF5).

    Keras reports such files as "File not found", which sends users looking in the wrong place.
    """

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


def _bounded_and_repaired_config(file: Path) -> tuple[dict[str, Any], list[str]]:
    """Read the file's config within bounds; for a ``.h5``, its Keras 2 repairs.

    Returns:
        The repaired config and one sentence per repair (none: let Keras load the file).
    """
    # .keras archives are Keras 3's own format; only .h5 files can hold Keras 2 configs.
    if file.suffix.lower() == ".keras":
        read_archive_config(file)
        return {}, []
    config = read_h5_config(file)
    if not isinstance(config, dict) or "class_name" not in config or "config" not in config:
        return {}, []
    return repair_legacy_config(config)


def _load_repaired_h5(file: Path, config: dict[str, Any], safe_mode: bool) -> Any:
    """Load a ``.h5`` with its repaired config: Keras's own legacy loader runs on a temporary
    copy whose ``model_config`` is the repaired one, so the weights load layer by layer exactly
    as Keras loads any ``.h5`` (the user's file is never written)."""
    import h5py
    import keras

    with tempfile.TemporaryDirectory(prefix="sketchcam-legacy-") as folder:
        copy = Path(folder) / "repaired.h5"
        shutil.copyfile(file, copy)
        with h5py.File(copy, "r+") as handle:
            if "model_weights" not in handle:
                raise ModelLoadError(
                    f"{file} is not a loadable Keras model: it has no model_weights"
                )
            handle.attrs["model_config"] = json.dumps(config).encode("utf-8")
        return keras.models.load_model(copy, compile=False, safe_mode=safe_mode)


def _load_error(file: Path, message: str) -> ModelLoadError:
    """The one-line error for a file Keras refused while rebuilding the model."""
    if "lambda" in message.lower() or "safe_mode" in message:
        return ModelLoadError(
            f"{file} contains a Lambda layer, which can run arbitrary code, so it is refused; "
            "rebuild the model with built-in layers (or load it yourself with "
            "safe_mode=False if you trust the file)"
        )
    if "No model config found" in message:
        return ModelLoadError(
            f"{file} is not a loadable Keras model: it holds weights only; SketchCAM needs the "
            "whole model, saved with model.save"
        )
    return ModelLoadError(f"{file} is not a loadable Keras model: {_first_line(message)}")


def declared_output_kind(model_path: str | Path) -> str | None:
    """The ``"output"`` field ("probabilities" or "logits") of the ``model_card.json`` beside
    the model, or None when there is no card or no such field.

    Raises:
        ModelLoadError: the card is unreadable.
    """
    value = read_card(card_path_for(model_path)).get("output")
    return None if value is None else str(value)


def _first_line(message: str) -> str:
    """The first non-empty line of an exception message, trimmed for a one-line error."""
    for line in message.splitlines():
        if line.strip():
            return line.strip()[:300]
    return "unknown error"
