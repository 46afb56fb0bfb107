"""The ONLY module that imports matplotlib.pyplot: every saved figure is drawn here.

Figures are closed after saving (unless shown), so thousands of calls keep memory flat.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import matplotlib

if not os.environ.get("DISPLAY") and not os.environ.get("MPLBACKEND"):
    # Headless by default: servers, CI and batch jobs have no display.
    matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from src.utils.atomic_write import write_bytes_atomic  # noqa: E402
from src.visualization.overlay import sketch_for_display  # noqa: E402


def save_atomically(figure: Any, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Save a figure through the project's one atomic writer, so no half-written file is left."""
    target = Path(path)
    # Rendered in memory first: the atomic writer picks a temporary name unique per thread.
    buffer = io.BytesIO()
    figure.savefig(buffer, format=target.suffix.lstrip(".") or "png", **savefig_kwargs)
    return write_bytes_atomic(target, buffer.getvalue())


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
        # Fixed margins instead of tight_layout(), which re-measures every tick label and
        # costs more than drawing the figure; the panels never change shape.
        figure.subplots_adjust(left=0.01, right=0.99, bottom=0.03, top=0.86, wspace=0.3)
        saved = save_atomically(figure, path, dpi=100) if path is not None else None
        if show:
            plt.show()
        return saved
    finally:
        if not show:
            plt.close(figure)


def save_prediction_figure(
    image: Any,
    summary: dict[str, Any],
    path: str | Path | None,
    show: bool = False,
    colormap: str = "jet",
) -> Path | None:
    """The three panels of ``GradCAM.visualize_prediction``'s result, titled with the
    explained class and its confidence.

    Args:
        image: model input (H, W[, 1]) in [0, 1].
        summary: ``visualize_prediction``'s dict (heatmap, overlay, target_class,
            target_confidence).
        path: where to write the PNG, or None to only show.
        show: display the figure (needs a GUI backend).
    """
    title = f"{summary['target_class']} ({summary['target_confidence']:.1%})"
    return save_gradcam_figure(
        image, summary["heatmap"], summary["overlay"], title, path, show, colormap
    )


def save_top_prediction_figure(
    image: Any,
    heatmap: Any,
    overlay: Any,
    rank: int,
    class_name: str,
    confidence: float,
    directory: str | Path,
    colormap: str = "jet",
) -> Path:
    """``gradcam_top{rank}_{class}.png`` in ``directory``: the three panels of one ranked class.

    The class name is made safe for file names (``src.utils.filenames.safe_filename``).
    """
    from src.utils.filenames import safe_filename

    path = Path(directory) / f"gradcam_top{rank}_{safe_filename(class_name)}.png"
    title = f"#{rank} {class_name} ({confidence:.1%})"
    save_gradcam_figure(image, heatmap, overlay, title, path, False, colormap)
    return path


def save_stroke_importance_figure(
    strokes: Any, shares: Any, title: str, path: str | Path, colormap: str = "jet"
) -> Path:
    """The drawing with each stroke coloured by its share of the map (red most, blue least).

    Args:
        strokes: ``[[xs, ys], ...]`` in drawing coordinates (y grows downwards).
        shares: (S,) importance per stroke; scaled so the most important stroke is red.
        title: figure title.
        path: PNG to write.
    """
    from matplotlib.collections import LineCollection

    values = np.asarray(shares, dtype=np.float64)
    peak = values.max() if values.size and values.max() > 0 else 1.0
    cmap = matplotlib.colormaps[colormap]
    figure, axis = plt.subplots(figsize=(4.6, 4.6))
    try:
        for stroke, value in sorted(zip(strokes, values), key=lambda pair: pair[1]):
            points = np.column_stack([stroke[0], stroke[1]]).astype(np.float64)
            colour = cmap(value / peak)
            if len(points) > 1:
                axis.add_collection(LineCollection([points], colors=[colour], linewidths=3))
            axis.plot(points[0, 0], points[0, 1], "o", color=colour, markersize=3)
        axis.autoscale()
        axis.set_aspect("equal")
        axis.invert_yaxis()
        axis.axis("off")
        mappable = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, peak))
        figure.colorbar(mappable, ax=axis, fraction=0.046, pad=0.04, label="share of map")
        axis.set_title(title)
        return save_atomically(figure, path, dpi=100)
    finally:
        plt.close(figure)


def save_filmstrip_figure(
    overlays: Any, captions: list[str], title: str, path: str | Path, columns: int = 8
) -> Path:
    """Frames in a grid (one per stroke), each an RGB overlay with a caption underneath."""
    count = len(overlays)
    columns = max(1, min(columns, count))
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(1.9 * columns, 2.2 * rows), squeeze=False)
    try:
        for index, axis in enumerate(axes.flat):
            axis.axis("off")
            if index < count:
                axis.imshow(overlays[index])
                axis.set_title(captions[index], fontsize=8)
        figure.suptitle(title)
        # Fixed margins instead of tight_layout(), which re-measures every tick label and
        # costs more than drawing the figure; the panels never change shape.
        figure.subplots_adjust(left=0.01, right=0.99, bottom=0.03, top=0.86, wspace=0.3)
        return save_atomically(figure, path, dpi=100)
    finally:
        plt.close(figure)


def save_contrast_figure(
    image: Any,
    overlay_for: Any,
    overlay_against: Any,
    titles: tuple[str, str, str],
    path: str | Path,
) -> Path:
    """Three panels: the sketch, evidence for A over B, evidence for B over A."""
    figure, axes = plt.subplots(1, 3, figsize=(10, 3.8))
    try:
        axes[0].imshow(sketch_for_display(image), cmap="gray", vmin=0, vmax=1)
        axes[1].imshow(overlay_for)
        axes[2].imshow(overlay_against)
        for axis, text in zip(axes, titles):
            axis.set_title(text, fontsize=9)
            axis.axis("off")
        figure.tight_layout()
        return save_atomically(figure, path, dpi=100)
    finally:
        plt.close(figure)


def save_faithfulness_figure(curves: list[dict[str, Any]], path: str | Path) -> Path:
    """Deletion and insertion curves (one line per method, AUC in the legend)."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    try:
        for entry in curves:
            dashed = "--" if entry["method"] == "random" else "-"
            for axis, kind in zip(axes, ("deletion", "insertion")):
                label = f"{entry['method']} (AUC {entry[kind + '_auc']:.3f})"
                axis.plot(entry["fractions"], entry[kind], dashed, label=label)
        for axis, kind, better in zip(axes, ("Deletion", "Insertion"), ("lower", "higher")):
            axis.set_title(
                f"{kind} (ink erased/restored, highest heat first; {better} is better)", fontsize=9
            )
            axis.set_xlabel("fraction of ink pixels")
            axis.set_ylabel("probability of the original class")
            axis.legend(fontsize=7)
        figure.tight_layout()
        return save_atomically(figure, path, dpi=100)
    finally:
        plt.close(figure)


def save_confusion_matrix(
    matrix: Any, class_names: list[str] | tuple[str, ...], path: str | Path, title: str = ""
) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted), row-normalised, as a PNG.

    Args:
        matrix: counts (N, N), row = true class.
        class_names: the N class names in index order.
        path: where to write the PNG.
        title: figure title.

    Returns:
        The written path.
    """
    counts = np.asarray(matrix, dtype=np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] != len(class_names):
        raise ValueError(f"matrix {counts.shape} does not match {len(class_names)} class names")
    # Row-normalised, so small classes are as readable as big ones.
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    side = max(6.0, 0.38 * len(class_names) + 2)
    figure, axes = plt.subplots(figsize=(side, side))
    try:
        image = axes.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        ticks = np.arange(len(class_names))
        axes.set_xticks(ticks, labels=list(class_names), rotation=90, fontsize=8)
        axes.set_yticks(ticks, labels=list(class_names), fontsize=8)
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
        axes.set_title(title or "confusion matrix (row-normalised)")
        for row, column in zip(*np.nonzero(counts), strict=True):
            color = "white" if rates[row, column] > 0.5 else "black"
            axes.text(
                column,
                row,
                int(counts[row, column]),
                ha="center",
                va="center",
                fontsize=6,
                color=color,
            )
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        figure.tight_layout()
        return save_atomically(figure, path, dpi=120)
    finally:
        plt.close(figure)


def save_audit_figure(
    factors: dict[str, Any], paths: tuple[str, ...] | list[str], path: str | Path
) -> Path:
    """Top-1 against level, one panel per factor, one line per input path (``audit.json`` data).

    Args:
        factors: ``audit.json``'s "factors": per factor, its levels with per-path top-1.
        paths: the input paths to draw, in legend order.
        path: PNG to write.
    """
    count = max(len(factors), 1)
    columns = min(3, count)
    rows = (count + columns - 1) // columns
    figure, axes = plt.subplots(
        rows, columns, figsize=(4.6 * columns, 3.4 * rows), squeeze=False, sharey=True
    )
    try:
        for axis, (name, factor) in zip(axes.flat, factors.items()):
            labels = [entry["level"] for entry in factor["levels"]]
            positions = np.arange(len(labels))
            for input_path, marker in zip(paths, "os^v"):
                top1 = [100 * entry["paths"][input_path]["top1"] for entry in factor["levels"]]
                axis.plot(positions, top1, marker=marker, label=input_path)
            reference = [i for i, entry in enumerate(factor["levels"]) if entry["reference"]]
            for index in reference:
                axis.axvline(index, color="grey", linestyle=":", linewidth=1)
            flagged = " (flagged)" if factor.get("flagged") else ""
            axis.set_title(f"{name}{flagged}", fontsize=10, color="#b00" if flagged else "black")
            axis.set_xticks(positions, labels=labels, rotation=30, fontsize=8)
            axis.set_ylim(0, 100)
            axis.grid(alpha=0.3)
        for axis in axes[:, 0]:
            axis.set_ylabel("top-1 (%)")
        for axis in list(axes.flat)[count:]:
            axis.axis("off")
        axes.flat[0].legend(fontsize=8, loc="lower left")
        figure.suptitle("Invariance audit: top-1 per level (dotted: reference level)")
        figure.tight_layout()
        return save_atomically(figure, path, dpi=100)
    finally:
        plt.close(figure)


def save_model_comparison_figure(
    class_maps: dict[str, Any],
    model_names: list[str],
    correlations: dict[str, float | None],
    path: str | Path,
    columns: int = 3,
) -> Path:
    """Per class, every model's mean map side by side, titled with their rank correlation.

    Panels and labels are sized to read on the report page (about 1,400 px wide) without
    zooming: few classes per row, 11-point titles.

    Args:
        class_maps: class name -> mean maps (M, G, G), one per model, values in [0, 1].
        model_names: the M model names, in the maps' order (the column labels).
        correlations: class name -> rank correlation of the first two mean maps (None: undefined).
        path: where to write the PNG.
        columns: classes per row.

    Returns:
        The written path.
    """
    if not class_maps:
        raise ValueError("no class has explained inputs: nothing to draw")
    models = len(model_names)
    rows = -(-len(class_maps) // columns)
    width = min(columns, len(class_maps))
    figure, axes = plt.subplots(
        rows, width * models, figsize=(2.4 * width * models, 2.8 * rows), squeeze=False
    )
    try:
        for axis in axes.flat:
            axis.axis("off")
        for slot, (class_name, maps) in enumerate(class_maps.items()):
            row, column = divmod(slot, columns)
            for position in range(models):
                axis = axes[row, column * models + position]
                axis.imshow(maps[position], cmap="jet", vmin=0.0, vmax=1.0)
                label = model_names[position] if slot < width else ""
                correlation = correlations.get(class_name)
                title = (
                    class_name
                    if position == 0
                    else (f"r={correlation:.2f}" if correlation is not None else "r=n/a")
                )
                axis.set_title(f"{title}\n{label}" if label else title, fontsize=11)
        figure.suptitle(
            "Mean Grad-CAM per class, models side by side (r: Spearman of the mean maps)",
            fontsize=12,
        )
        figure.tight_layout()
        return save_atomically(figure, path, dpi=100)
    finally:
        plt.close(figure)
