"""Write errors that name the file the user asked for, with the fix for the common causes."""

from __future__ import annotations

import errno
from pathlib import Path

# What to do about the usual reasons a write fails; anything else gets the generic advice.
FIXES = {
    errno.ENOSPC: "free some disk space or pass another --output folder",
    errno.EDQUOT: "free some of your disk quota or pass another --output folder",
    errno.EACCES: "check the folder's permissions or pass another --output folder",
    errno.EPERM: "check the folder's permissions or pass another --output folder",
    errno.EROFS: "the file system is read-only: pass another --output folder",
}
GENERIC_FIX = "check the path and permissions"


def naming_target(error: OSError, target: str | Path) -> OSError:
    """The same kind of error, naming ``target`` instead of a temporary name or none at all.

    A write that fails part-way (a full disk) raises an ``OSError`` without a file name, and one
    that fails on a temporary file names that file, which the user never asked for.
    """
    if error.errno is None:
        return error
    renamed = type(error)(error.errno, error.strerror or str(error), str(target))
    renamed.__cause__ = error
    return renamed


def fix_for(error: OSError) -> str:
    """What the user can do about ``error``."""
    return FIXES.get(error.errno or -1, GENERIC_FIX)
