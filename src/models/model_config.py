"""Read a model file's config with bounds on its size and depth, before Keras decodes it.

Keras decodes a ``.keras`` archive's ``config.json`` (and a ``.h5`` file's ``model_config``
attribute) whole and rebuilds the model recursively, so a small file whose config unpacks to
hundreds of megabytes, or nests thousands deep, exhausts memory or the stack inside Keras.
Reading the config here first refuses those files before anything large is decoded: a zip
member by its declared size (before it is unpacked), an HDF5 attribute by its stored size.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from src.data.json_input import JSONInputError, parse_json
from src.errors import ModelLoadError

# The configs of real sketch classifiers are a few tens of kilobytes; big Functional models
# reach a few megabytes.
MAX_CONFIG_BYTES = 16 * 1024 * 1024
# Keras configs nest about ten levels per nested model; Keras rebuilds them recursively.
MAX_CONFIG_DEPTH = 100
# The JSON members of a .keras archive that Keras decodes.
ARCHIVE_JSON_MEMBERS = ("config.json", "metadata.json")


def read_archive_config(file: Path) -> object:
    """The decoded ``config.json`` of a ``.keras`` archive, its JSON members checked first.

    Raises:
        ModelLoadError: a member is too large, too deeply nested, or not JSON, or there is no
            ``config.json``.
    """
    with zipfile.ZipFile(file) as archive:
        members = {info.filename: info for info in archive.infolist()}
        if "config.json" not in members:
            raise ModelLoadError(
                f"{file} is not a valid Keras model file: the archive has no config.json; "
                "re-save the model with model.save"
            )
        decoded = {}
        for name in ARCHIVE_JSON_MEMBERS:
            if name in members:
                _check_size(file, name, members[name].file_size)
                # The declared size can lie; reading one byte past the bound catches that.
                with archive.open(name) as stream:
                    data = stream.read(MAX_CONFIG_BYTES + 1)
                _check_size(file, name, len(data))
                decoded[name] = decode_config(file, name, data)
    return decoded["config.json"]


def read_h5_config(file: Path) -> object | None:
    """The decoded ``model_config`` attribute of a ``.h5`` file, or None when it has none.

    Raises:
        ModelLoadError: the attribute is too large, too deeply nested, or not JSON.
    """
    import h5py

    with h5py.File(file, "r") as handle:
        if "model_config" not in handle.attrs:
            return None
        # A fixed-length string reports its size here; a variable-length one (h5py 3) only
        # once read, but HDF5 stores attributes uncompressed, so reading it costs no more than
        # the file's own size on disk: the bound then applies before decoding.
        storage = handle.attrs.get_id("model_config").get_storage_size()
        _check_size(file, "model_config", storage)
        value = handle.attrs["model_config"]
    data = value if isinstance(value, bytes) else str(value).encode("utf-8")
    _check_size(file, "model_config", len(data))
    return decode_config(file, "model_config", data)


def decode_config(file: Path, part: str, data: bytes) -> object:
    """Decode one config with the project's safe JSON decoder and the depth bound."""
    try:
        return parse_json(data.decode("utf-8"), max_depth=MAX_CONFIG_DEPTH)
    except (UnicodeDecodeError, JSONInputError) as error:
        raise ModelLoadError(
            f"{file} is not a loadable Keras model: its {part} is not a usable model config "
            f"({error}); SketchCAM needs a config of at most {MAX_CONFIG_DEPTH} levels"
        ) from error


def _check_size(file: Path, part: str, size: int) -> None:
    """Refuse a config larger than ``MAX_CONFIG_BYTES``."""
    if size > MAX_CONFIG_BYTES:
        raise ModelLoadError(
            f"{file} is not a loadable Keras model: its {part} is {size:,} bytes, more than "
            f"the {MAX_CONFIG_BYTES:,} a model config can be; SketchCAM needs the model saved "
            "by Keras's model.save"
        )
