"""Ctrl-C while the trainer renders its strokes in worker processes: one line, exit 130."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from src.config import PROJECT_ROOT


@pytest.mark.slow
def test_ctrl_c_during_rendering_prints_one_line(tmp_path: Path) -> None:
    from src.data.quickdraw import Drawing, write_ndjson

    rng = np.random.default_rng(0)
    for name in ("h", "v"):
        # Enough drawings (over 200 jobs) that rendering runs in a process pool for a while.
        drawings = [
            Drawing(
                name,
                [[[0, 255], [int(y), int(y)]]] if name == "h" else [[[int(y)] * 2, [0, 255]]],
                str(i),
            )
            for i, y in enumerate(rng.integers(20, 235, size=2000))
        ]
        write_ndjson(drawings, tmp_path / "strokes" / f"{name}.ndjson")
    command = [
        sys.executable, "-m", "src.training.train", "--strokes_dir", str(tmp_path / "strokes"),
        "--classes", "h,v", "--output_dir", str(tmp_path / "out"), "--workers", "2",
    ]  # fmt: skip
    # Its own process group, as a terminal's Ctrl-C reaches the trainer and its workers alike.
    # SIGINT set back to its default first: a suite started in the background of a
    # non-interactive shell ignores it, and Python keeps an ignored SIGINT ignored.
    process = subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    before = []
    for line in process.stderr:
        before.append(line)
        if "stroke variants" in line:
            break
    time.sleep(1.0)
    os.killpg(process.pid, signal.SIGINT)
    try:  # a lost Ctrl-C fails the test instead of waiting for the whole training
        after = process.communicate(timeout=120)[1]
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 130, "".join(before) + after
    assert "Traceback" not in after, after
    assert after.strip().splitlines()[-1] == "train: error: interrupted"
