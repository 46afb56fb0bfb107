"""Overlay files of a batch: safe, unique names, and the PNG writes done in worker threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from src.batch.inputs import Failure
from src.utils.atomic_write import write_bytes_atomic
from src.utils.filenames import safe_filename

OVERLAYS_DIR = "overlays"


class OverlayNamer:
    """Unique, safe overlay file names inside one folder ("cats/a b.png" -> "cats__a_b.png")."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory.resolve()
        self.used: set[str] = set()

    def path_for(self, source: str) -> Path:
        """A new file name for ``source``; a clash (after making names safe) gets a counter."""
        stem = source.rsplit(".", 1)[0] if "#" not in source else source
        base = safe_filename(stem.replace("/", "__"))
        name, counter = f"{base}.png", 1
        while name.lower() in self.used:
            counter += 1
            name = f"{base}_{counter}.png"
        self.used.add(name.lower())
        # safe_filename leaves no "/" and no leading "." in the name, so directory / name stays
        # inside; path_inside's resolve() per file would cost as much as a PNG encode.
        return self.directory / name


def write_overlays(items: list[tuple[str, Path, np.ndarray]], scale: int) -> list[Failure]:
    """Encode and write overlays atomically in a worker thread; a write error becomes a Failure."""
    from src.visualization.overlay import to_png_bytes

    failures = []
    for source, path, overlay in items:
        try:
            write_bytes_atomic(path, to_png_bytes(overlay, scale=scale))
        except OSError as error:
            failures.append(
                Failure(source, f"overlay {path} not written: {error.strerror or error}")
            )
    return failures
