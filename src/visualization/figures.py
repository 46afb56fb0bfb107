"""The ONLY module that imports matplotlib.pyplot: every saved figure is drawn here.

Figures are closed after saving (unless shown), so thousands of calls keep memory flat.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    # Headless by default: servers, CI and batch jobs have no display.
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from src.visualization.overlay import sketch_for_display  # noqa: E402


def save_atomically(figure: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Save a figure to a temporary name then rename, so no half-written file is left behind."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.partial")
    try:
        figure.savefig(temporary, format=target.suffix.lstrip(".") or "png", **savefig_kwargs)
        os.replace(temporary, target)
    finally:
        if temporary.exists():
            temporary.unlink()
    return target


def save_gradcam_figure(
    image: Any,
    heatmap: Any,
    overlay: Any,
    title: str,
    path: str | Path | None,
    show: bool = False,
    colormap: str = "jet",
) -> Path | None:
    """Three panels: the sketch, the heatmap with a colour bar (red high, blue low), the overlay.

    Args:
        image: model input (H, W[, 1]) in [0, 1].
        heatmap: (H, W) in [0, 1].
        overlay: uint8 RGB (H, W, 3) from ``overlay_heatmap``.
        title: figure title (class and confidence).
        path: where to write the PNG, or None to only show.
        show: display the figure (needs a GUI backend); otherwise it is closed.
    """
    figure, axes = plt.subplots(1, 3, figsize=(11, 3.9))
    try:
        axes[0].imshow(sketch_for_display(image), cmap="gray", vmin=0, vmax=1)
        axes[0].set_title("Original sketch")
        shown = axes[1].imshow(np.asarray(heatmap), cmap=colormap, vmin=0, vmax=1)
        axes[1].set_title("Grad-CAM heatmap")
        figure.colorbar(shown, ax=axes[1], fraction=0.046, pad=0.04, label="importance")
        axes[2].imshow(overlay)
        axes[2].set_title("Overlay")
        for axis in axes:
            axis.axis("off")
        figure.suptitle(title)
        figure.tight_layout()
        saved = save_atomically(figure, path, dpi=100) if path is not None else None
        if show:
            plt.show()
        return saved
    finally:
        if not show:
            plt.close(figure)
