"""File names built from class names and input names: safe, and never outside the output folder."""

from __future__ import annotations

import re
from pathlib import Path

# Anything but letters, digits, dot, dash and underscore becomes "_" ("smiley face" -> "smiley_face").
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME_LENGTH = 80


def safe_filename(name: str) -> str:
    """Make a class or file name safe for a file name.

    Rule: runs of characters other than ASCII letters, digits, ``.``, ``-`` and ``_`` become one
    ``_``; leading dots and underscores are dropped (no hidden files, no ``..``); the result is cut
    to 80 characters; an empty result becomes ``unnamed``.

    Example:
        >>> safe_filename("smiley face")
        'smiley_face'
        >>> safe_filename("../../etc/passwd")
        'etc_passwd'
    """
    cleaned = _UNSAFE.sub("_", str(name)).lstrip("._")[:MAX_NAME_LENGTH].rstrip(".")
    return cleaned or "unnamed"


def path_inside(directory: str | Path, filename: str) -> Path:
    """``directory / safe_filename(filename)``, guaranteed to stay inside ``directory``.

    Raises:
        ValueError: if the resolved path would escape the directory (cannot happen for names
            made by safe_filename; kept as a last guard).
    """
    base = Path(directory).resolve()
    candidate = (base / safe_filename(filename)).resolve()
    if candidate.parent != base:
        raise ValueError(f"refusing to write outside {base}: {filename!r}")
    return candidate
