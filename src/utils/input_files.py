"""Opening a file a user hands over: only a regular file, never a FIFO, a device or a folder.

``open()`` on a FIFO blocks until some writer appears, and ``/dev/zero`` or ``/dev/urandom``
never end, so a path is opened without blocking and checked on the open descriptor (no gap
between the check and the read) before a byte is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO


class NotRegularFileError(ValueError):
    """The path exists but is not a regular file (a FIFO, a device, a socket or a folder)."""


def _kind(mode: int) -> str:
    """What a non-regular file is, for the message."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def open_regular_file(path: str | Path) -> BinaryIO:
    """Open ``path`` for binary reading if, and only if, it is a regular file.

    Raises:
        NotRegularFileError: a FIFO, device, socket or folder (the message says which).
        OSError: the path is missing or cannot be opened (permissions).
    """
    # O_NONBLOCK: opening a FIFO with no writer returns at once instead of waiting forever;
    # it changes nothing for a regular file.
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    mode = os.fstat(descriptor).st_mode
    if not stat.S_ISREG(mode):
        os.close(descriptor)
        raise NotRegularFileError(f"{path} is {_kind(mode)}; pass a regular file")
    return os.fdopen(descriptor, "rb")
