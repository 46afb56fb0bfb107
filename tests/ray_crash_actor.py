"""An ExplainActor that kills its own process once, for the Ray batch's actor-death test.

It lives in an importable module (not the test file) so Ray's workers can load the class. The
first actor to meet the input named by SKETCHCAM_TEST_CRASH_SOURCE creates the marker file
SKETCHCAM_TEST_CRASH_MARKER and exits at once, mid-batch, before writing anything; the
replacement actor finds the marker and explains the batch normally.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from src.batch.ray_worker import ExplainActor


class CrashOnceActor(ExplainActor):
    """Dies (os._exit) on the first batch holding the chosen input."""

    def __call__(self, batch: Any) -> Any:
        marker = Path(os.environ["SKETCHCAM_TEST_CRASH_MARKER"])
        victim = os.environ["SKETCHCAM_TEST_CRASH_SOURCE"]
        if victim in batch.column("source").to_pylist() and not marker.exists():
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return super().__call__(batch)
