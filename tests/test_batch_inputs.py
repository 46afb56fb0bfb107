"""``discover_inputs`` on special files: FIFOs and sockets are listed as ignored, never opened."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.batch.inputs import discover_inputs
from src.data.labels import LabelMap


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs")
def test_fifos_and_sockets_are_listed_as_ignored(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(tmp_path / "good.png")
    os.mkfifo(tmp_path / "pipe.png")
    # A short relative name: AF_UNIX paths are limited to about 100 bytes.
    server = socket.socket(socket.AF_UNIX)
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        server.bind("talk.ndjson")
    finally:
        os.chdir(cwd)
        server.close()
    discovery = discover_inputs(tmp_path, LabelMap(("cat", "dog")))
    assert [item.source for item in discovery.inputs] == ["good.png"]
    assert discovery.ignored == ["pipe.png", "talk.ndjson"]
    assert discovery.failures == []


def _folder_of_inputs(root: Path) -> None:
    """cat/a.png, dog/b.png, notes.md and draw.ndjson (one dog drawing)."""
    for name in ("cat/a.png", "dog/b.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((8, 8), np.uint8)).save(root / name)
    (root / "notes.md").write_text("not a sketch")
    (root / "draw.ndjson").write_text('{"word": "dog", "drawing": [[[0, 9], [0, 9]]]}\n')


def test_a_list_file_names_inputs_relative_to_its_folder(tmp_path: Path) -> None:
    from src.batch.inputs import discover_sources

    _folder_of_inputs(tmp_path)
    listing = tmp_path / "inputs.txt"
    listing.write_text("# two of them\ndog/b.png\n\ndraw.ndjson\nmissing.png\n")
    discovery = discover_sources(listing, LabelMap(("cat", "dog")))
    sources = [item.source for item in discovery.inputs]
    assert sources == [f"{tmp_path.as_posix()}/dog/b.png", f"{tmp_path.as_posix()}/draw.ndjson#1"]
    assert [item.true_class for item in discovery.inputs] == ["dog", "dog"]
    assert [item.origin.kind for item in discovery.inputs] == ["image", "drawing"]
    assert [failure.source for failure in discovery.failures] == [f"{tmp_path}/missing.png"]


def test_a_glob_names_the_matching_files_and_an_empty_one_is_an_error(tmp_path: Path) -> None:
    from src.batch.inputs import discover_sources
    from src.errors import InvalidImageError

    _folder_of_inputs(tmp_path)
    discovery = discover_sources(tmp_path / "**" / "*.png", LabelMap(("cat", "dog")))
    assert [item.source for item in discovery.inputs] == [
        f"{tmp_path.as_posix()}/cat/a.png",
        f"{tmp_path.as_posix()}/dog/b.png",
    ]
    assert [item.true_class for item in discovery.inputs] == ["cat", "dog"]
    with pytest.raises(InvalidImageError, match="no files match"):
        discover_sources(tmp_path / "*.webp", LabelMap(("cat", "dog")))
