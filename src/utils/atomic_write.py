"""Atomic file writes: readers never see half a file, and a failed write leaves nothing behind."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from src.utils.output_errors import naming_target


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write to a temporary file in the same folder, then rename: readers never see half a file.

    The temporary name is unique per process and thread, so parallel writers never collide.

    Args:
        path: the file to write; its folder is created when missing.
        data: the whole content.

    Returns:
        The path written.

    Raises:
        OSError: the write failed; the error names ``path``, not the temporary file.
    """
    target = Path(path)
    if not target.parent.is_dir():
        target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{threading.get_ident()}.partial")
    try:
        with open(temporary, "wb") as stream:
            stream.write(data)
        os.replace(temporary, target)
    except BaseException as error:
        # Whatever went wrong (disk full, Ctrl-C), no half-written file is left behind, and a
        # write error names the file asked for rather than the temporary one.
        temporary.unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise naming_target(error, target) from error
        raise
    return target


def write_text_atomic(path: str | Path, text: str) -> Path:
    """``write_bytes_atomic`` for UTF-8 text."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | Path, data: Any) -> Path:
    """Pretty JSON (UTF-8, sorted as given), written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
