"""Walking an input folder or a ``**`` glob so that each real file is taken once, in bounded time.

Python's ``Path.rglob`` and ``glob.glob(recursive=True)`` follow symlinked folders, so a link
such as ``up -> ..`` makes them list files many times or run without end. Here each folder is
walked once (by device and inode), and a symlinked folder is followed only when it leads outside
the walked root and not above it; the others (loops, second ways into a folder) are skipped and
listed, and files reached twice (through file links) are taken once.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

_GLOB_CHARACTERS = frozenset("*?[")


@dataclass
class Walk:
    """Files found (as reached from the root, sorted) and the symlinked folders not followed."""

    files: list[Path] = field(default_factory=list)
    skipped_links: list[str] = field(default_factory=list)


def walk_files(root: Path, exclude: Path | None = None, depth: int | None = None) -> Walk:
    """Every entry but folders under ``root``, each real file once, hidden names skipped.

    FIFOs, sockets and devices are listed too (the caller ignores them by type).

    Args:
        root: the folder to walk.
        exclude: a folder to leave out (the run's output folder when it lies inside ``root``).
        depth: how many folder levels to enter below ``root`` (None: all).
    """
    walk = Walk()
    real_root = root.resolve()
    skipped = exclude.resolve() if exclude is not None else None
    seen_folders: set[tuple[int, int]] = set()
    seen_files: set[Path] = set()
    pending = [(root, 0)]
    while pending:
        folder, level = pending.pop()
        identity = _identity(folder)
        if identity is None or identity in seen_folders:
            continue
        seen_folders.add(identity)
        subfolders = []
        for entry in _entries(folder):
            path = folder / entry.name
            if not _is_folder(entry):
                real = path.resolve()
                if real not in seen_files:
                    seen_files.add(real)
                    walk.files.append(path)
            elif path.resolve() == skipped or (depth is not None and level >= depth):
                continue
            elif entry.is_symlink() and not _worth_following(path, real_root, seen_folders):
                walk.skipped_links.append(path.relative_to(root).as_posix())
            else:
                subfolders.append((path, level + 1))
        # Reversed: the stack then walks the folders in name order.
        pending.extend(reversed(subfolders))
    walk.files.sort(key=lambda path: path.relative_to(root).parts)
    return walk


def glob_files(pattern: str, exclude: Path | None = None) -> Walk:
    """The files matching a glob pattern (``**`` spans any number of folders), walked as
    ``walk_files`` walks: each real file once, symlink loops skipped and listed."""
    parts = Path(pattern).parts
    literal = 0
    while literal < len(parts) - 1 and not _GLOB_CHARACTERS & set(parts[literal]):
        literal += 1
    base = Path(*parts[:literal]) if literal else Path(".")
    if not base.is_dir():
        return Walk()
    rest = parts[literal:]
    walk = walk_files(base, exclude, None if "**" in rest else len(rest) - 1)
    walk.files = [path for path in walk.files if _matches(path.relative_to(base).parts, rest)]
    return walk


def _matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether path parts match pattern parts; ``**`` matches zero or more parts."""
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_matches(parts[start:], pattern[1:]) for start in range(len(parts) + 1))
    return bool(parts) and fnmatchcase(parts[0], pattern[0]) and _matches(parts[1:], pattern[1:])


def _entries(folder: Path) -> list[os.DirEntry[str]]:
    """The folder's visible entries in name order (none when it cannot be listed)."""
    try:
        with os.scandir(folder) as entries:
            return sorted(
                (entry for entry in entries if not entry.name.startswith(".")),
                key=lambda entry: entry.name,
            )
    except OSError:
        return []


def _is_folder(entry: os.DirEntry[str]) -> bool:
    """Whether the entry is a folder, through a symlink too (False when it cannot be read)."""
    try:
        return entry.is_dir()
    except OSError:
        return False


def _identity(folder: Path) -> tuple[int, int] | None:
    """(device, inode) of a folder, the same through every link to it."""
    try:
        status = folder.stat()
    except OSError:
        return None
    return status.st_dev, status.st_ino


def _worth_following(link: Path, real_root: Path, seen: set[tuple[int, int]]) -> bool:
    """A symlinked folder is followed only to a folder outside the root, not above it (a
    loop) and not walked yet; one inside the root is walked under its own name anyway."""
    target = link.resolve()
    inside_or_above = target.is_relative_to(real_root) or real_root.is_relative_to(target)
    return not inside_or_above and _identity(target) not in seen
