"""Production monitoring as in docs/usage_guide.md: analyse an image's attention and append it to a JSON Lines log.

Example:
    >>> if confidence < threshold:
    ...     gradcam_result = generate_gradcam_analysis(image, model)
    ...     log_attention_pattern(gradcam_result, image_id)

The log is append-only JSON Lines, one record per line, rotated by size (``log.jsonl`` ->
``log.jsonl.1`` -> ...). Writers from several processes serialise on an ``fcntl.flock`` lock
file and append with ``O_APPEND``, so lines never interleave and rotation never loses a line.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from src.explain.map_agreement import ink_share

# The folder of the attention log, when set; otherwise ``logs/`` under the working directory.
LOG_DIR_VARIABLE = "SKETCHCAM_LOG_DIR"
LOG_FILENAME = "attention.jsonl"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5
GRID_SIZE = 8


def summarise_map(heatmap: np.ndarray, image: np.ndarray) -> dict[str, Any]:
    """A compact, comparable summary of one map: centroid, spread, share on ink, 8x8 grid.

    Coordinates are fractions of the side (0 top/left, 1 bottom/right); spread is the heat-
    weighted standard deviation of the distance to the centroid, in the same units.
    """
    heat = np.clip(np.asarray(heatmap, dtype=np.float64), 0.0, None)
    height, width = heat.shape
    total = float(heat.sum())
    rows, cols = np.mgrid[0:height, 0:width]
    rows, cols = (rows + 0.5) / height, (cols + 0.5) / width
    if total > 0:
        centre_y, centre_x = float((heat * rows).sum() / total), float((heat * cols).sum() / total)
        distance = (rows - centre_y) ** 2 + (cols - centre_x) ** 2
        spread = float(np.sqrt((heat * distance).sum() / total))
    else:
        centre_y = centre_x = 0.5
        spread = 0.0
    share = ink_share(heat, image)
    grid = heat.reshape(GRID_SIZE, height // GRID_SIZE, GRID_SIZE, width // GRID_SIZE).mean(
        axis=(1, 3)
    )
    return {
        "centroid": [round(centre_x, 4), round(centre_y, 4)],
        "spread": round(spread, 4),
        "ink_share": round(share, 4) if total > 0 else 0.0,
        "grid": np.round(grid, 3).tolist(),
    }


def _gradcam_for(model: Any, layer_name: str | None, method: str) -> Any:
    """The GradCAM to use: ``model`` itself when it is one, else its Explainer's (so a bare
    Keras model is sliced and compiled once, however often docs/usage_guide.md's snippet calls this)."""
    from src.service.explainer import Explainer

    if hasattr(model, "explain") and hasattr(model, "layer_name"):
        return model
    explainer = model if isinstance(model, Explainer) else Explainer.for_model(model)
    return explainer.cam(method, layer_name)


def generate_gradcam_analysis(
    image: Any,
    model: Any,
    class_names: Any = None,
    top_k: int = 3,
    layer_name: str | None = None,
    method: str = "gradcam",
    include_overlay: bool = False,
) -> dict[str, Any]:
    """Analyse one image for the attention log.

    Args:
        image: anything ``to_model_input`` accepts (PIL image, array of either polarity).
        model: a Keras model, an ``Explainer`` or a ready ``GradCAM``.
        class_names: names in output order (a LabelMap's ``class_names``); default indices.
        top_k: how many ranked classes to keep.
        layer_name: target layer; default the engine's automatic choice.
        method: CAM method.
        include_overlay: add ``overlay_png`` (base64 PNG of the map over the sketch).

    Returns:
        JSON-ready dict: top (class, confidence), margin (top-1 minus top-2), map summary.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    gradcam = _gradcam_for(model, layer_name, method)
    model_input = gradcam.model_input(image)
    result = gradcam.explain(model_input[np.newaxis])
    return analysis_from_cam(
        gradcam.input_spec.decode(model_input),
        result.heatmaps[0],
        result.probabilities[0],
        class_names,
        top_k,
        include_overlay,
        gradcam,
    )


def analysis_from_cam(
    model_input: np.ndarray,
    heatmap: np.ndarray,
    probabilities: np.ndarray,
    class_names: Any = None,
    top_k: int = 3,
    include_overlay: bool = False,
    gradcam: Any = None,
) -> dict[str, Any]:
    """The analysis record from an already computed map (lets the web app avoid a second pass).

    ``model_input`` is the picture the model saw, as ink intensities (``InputSpec.decode``)
    or a [0, 1] input of either polarity.
    """
    from src.inference.ranking import top_classes

    order = top_classes(probabilities, top_k)
    confidences = [float(probabilities[index]) for index in order]

    def name(index: int) -> str:
        return str(class_names[index]) if class_names is not None else str(index)

    analysis: dict[str, Any] = {
        "top": [
            {"class_index": int(index), "class_name": name(int(index)), "confidence": round(c, 5)}
            for index, c in zip(order, confidences)
        ],
        "margin": round(confidences[0] - (confidences[1] if len(confidences) > 1 else 0.0), 5),
        "map": summarise_map(heatmap, model_input),
    }
    if gradcam is not None:
        analysis["layer_name"], analysis["method"] = gradcam.layer_name, gradcam.method
    if include_overlay:
        from src.visualization.overlay import overlay_heatmap, to_png_bytes

        png = to_png_bytes(overlay_heatmap(model_input, heatmap), scale=2)
        analysis["overlay_png"] = base64.b64encode(png).decode("ascii")
    return analysis


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on ``<log>.lock`` (shared by every writing process)."""
    lock_path = path.with_name(path.name + ".lock")
    descriptor = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        os.close(descriptor)


def _rotate(path: Path, backups: int) -> None:
    """Shift ``log.N-1`` -> ``log.N`` ... ``log`` -> ``log.1``; the oldest falls off."""
    for number in range(backups, 0, -1):
        source = path if number == 1 else path.with_name(f"{path.name}.{number - 1}")
        if source.exists():
            os.replace(source, path.with_name(f"{path.name}.{number}"))
    if backups == 0 and path.exists():
        path.unlink()


def default_log_path() -> Path:
    """Where the attention log goes by default: ``$SKETCHCAM_LOG_DIR/attention.jsonl``, else
    ``logs/attention.jsonl`` under the current working directory (where the user works, never
    inside the installed package)."""
    folder = os.environ.get(LOG_DIR_VARIABLE)
    return (Path(folder).expanduser() if folder else Path.cwd() / "logs") / LOG_FILENAME


def log_attention_pattern(
    result: dict[str, Any],
    image_id: str,
    log_path: str | Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    backups: int = DEFAULT_BACKUPS,
    save_overlay: bool = True,
) -> dict[str, Any]:
    """Append one analysis to the attention log (safe with several writing processes).

    Args:
        result: from ``generate_gradcam_analysis``.
        image_id: the caller's identifier for the image (request id, file name).
        log_path: the JSON Lines file; its folder is created. Default ``default_log_path()``.
        max_bytes: rotate before a write would take the file past this size.
        backups: rotated files kept (``log.1`` newest).
        save_overlay: write ``overlay_png`` as a PNG beside the log (``<log>.overlays/``) and
            record its file name; otherwise it is dropped from the record.

    Returns:
        The record written.
    """
    from src.utils.filenames import safe_filename

    if max_bytes < 1024:
        raise ValueError(f"max_bytes must be at least 1024, got {max_bytes}")
    path = Path(log_path) if log_path is not None else default_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    now = time.time()
    record = {
        "timestamp": datetime.fromtimestamp(now, UTC).isoformat(timespec="milliseconds"),
        "image_id": str(image_id),
    }
    record.update({key: value for key, value in result.items() if key != "overlay_png"})
    if save_overlay and result.get("overlay_png"):
        folder = path.with_name(path.name + ".overlays")
        folder.mkdir(exist_ok=True)
        name = f"{int(now * 1000)}-{os.getpid()}-{safe_filename(str(image_id))}.png"
        (folder / name).write_bytes(base64.b64decode(result["overlay_png"]))
        record["overlay_file"] = name
    line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
    with _locked(path):
        if path.exists() and path.stat().st_size + len(line) > max_bytes:
            _rotate(path, backups)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)
    return record


class AttentionLogger:
    """Log low-confidence predictions: what a server calls on every request.

    Args:
        log_path: the JSON Lines log.
        threshold: log when the top confidence is below this (0 disables logging).
        class_names: names in output order.
        include_overlay: also store an overlay PNG per record.
        max_bytes: rotation size.
        backups: rotated files kept.
    """

    def __init__(
        self,
        log_path: str | Path,
        threshold: float,
        class_names: Any = None,
        include_overlay: bool = False,
        max_bytes: int = DEFAULT_MAX_BYTES,
        backups: int = DEFAULT_BACKUPS,
    ) -> None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.log_path = Path(log_path)
        self.threshold = threshold
        self.class_names = class_names
        self.include_overlay = include_overlay
        self.max_bytes = max_bytes
        self.backups = backups

    def maybe_log(
        self, image: Any, image_id: str, gradcam: Any, confidence: float | None = None
    ) -> dict[str, Any] | None:
        """Analyse and log ``image`` if its top confidence is below the threshold.

        Args:
            image: the model input (or any image ``to_model_input`` accepts).
            image_id: request or file identifier.
            gradcam: the server's ``GradCAM`` (or a Keras model).
            confidence: the top confidence if already known (skips the work when high enough).

        Returns:
            The record written, or None when nothing was logged.
        """
        if confidence is not None and confidence >= self.threshold:
            return None
        analysis = generate_gradcam_analysis(
            image, gradcam, self.class_names, include_overlay=self.include_overlay
        )
        if analysis["top"][0]["confidence"] >= self.threshold:
            return None
        return log_attention_pattern(
            analysis,
            image_id,
            self.log_path,
            self.max_bytes,
            self.backups,
            save_overlay=self.include_overlay,
        )
