"""``discover_inputs`` on special files: FIFOs and sockets are listed as ignored, never opened."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.cli.batch_inputs import discover_inputs
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
