"""How a batch runs and renders: ``BatchOptions``, shared by the local and the Ray runner."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_BATCH_SIZE = 64
# The gallery orders of report.html (src.reports.batch_report.GALLERY_ORDERS checks the name).
DEFAULT_ORDER = "least_confident"


def default_workers() -> int:
    """Threads for decoding and writing: half the cores (1 on 2 cores, at most 4).

    TensorFlow already spreads each Grad-CAM call over every core, so more threads than half
    the cores fight it and each other over the CPU and the interpreter lock (bench/cli_batch.py
    compares worker counts).
    """
    return max(1, min(4, (os.cpu_count() or 2) // 2))


@dataclass(frozen=True)
class BatchOptions:
    """How a batch runs and renders (argparse fills it from the command line)."""

    top_k: int = 3
    alpha: float = 0.4
    colormap: str = "jet"
    batch_size: int = DEFAULT_BATCH_SIZE  # images per compiled Grad-CAM call
    # Threads decoding inputs and encoding PNGs while the engine runs; the CLI's default too.
    workers: int = field(default_factory=default_workers)
    low_confidence: float = 0.5  # below this, a case is listed as low-confidence
    progress: bool | None = None  # None: a progress bar only on a terminal
    # Overlays are saved at the model's resolution; the report enlarges them with CSS, and
    # encoding 4x the pixels would cost more than the Grad-CAM itself.
    overlay_scale: int = 1
    confusion_figure: bool = False  # also draw confusion_matrix.png (report.html has the table)
    order: str = (
        DEFAULT_ORDER  # the gallery's order: see GALLERY_ORDERS in src.reports.batch_report
    )
    # Start an output folder afresh when its results were made with other settings
    # (src.batch.run_folder); without it such a folder is refused.
    fresh: bool = False
