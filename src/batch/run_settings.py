"""The settings that decide every row of a batch, and the key a resumed run matches rows on.

``run_settings`` is the one place that lists them: a setting added here is checked by every
resumed run (the folder's ``run_settings.json``) and enters every row's key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, is_dataclass
from typing import TYPE_CHECKING, Any

from src.batch.options import BatchOptions
from src.batch.outputs import file_sha256

if TYPE_CHECKING:
    from src.visualization.explainer import Explainer

# The fields of an explainer's input convention (src.data.input_spec.InputSpec).
_INPUT_SPEC_FIELDS = ("height", "width", "channels", "ink", "value_range")


def run_settings(engine: Explainer, options: BatchOptions) -> dict[str, Any]:
    """Everything, besides the input itself, that decides an input's row and overlay.

    Args:
        engine: the explainer (or service) the batch runs on.
        options: the batch's options (top-k and the overlay's look).

    Returns:
        A JSON-ready dict: model file SHA-256, label mapping hash, method, layer, top-k,
        input convention, open-set rule and overlay look.
    """
    gradcam = engine.gradcam
    return {
        "model_sha256": file_sha256(engine.model_path),
        "labels_sha256": _text_sha256(json.dumps(list(engine.class_names))),
        "method": gradcam.method,
        "layer": gradcam.layer_name,
        "top_k": options.top_k,
        "input": _input_convention(engine),
        "open_set": _plain(getattr(engine, "open_set_rule", None)),
        "overlay": {
            "alpha": options.alpha,
            "colormap": options.colormap,
            "scale": options.overlay_scale,
        },
    }


def settings_key(settings: dict[str, Any]) -> str:
    """A short, stable hash of ``run_settings`` (stored with every row)."""
    return _text_sha256(json.dumps(settings, sort_keys=True))[:32]


def settings_difference(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The settings that differ, as "name old -> new" on one line."""
    names = sorted(set(old) | set(new))
    changed = [name for name in names if old.get(name) != new.get(name)]
    return ", ".join(
        f"{name} {_short(old.get(name))} -> {_short(new.get(name))}" for name in changed
    )


def _input_convention(engine: Any) -> dict[str, Any]:
    """The explainer's input convention: its ``input_spec`` when it has one, else its size."""
    spec = getattr(engine, "input_spec", None)
    if spec is None:
        return {"size": int(engine.input_size)}
    return {name: _plain(getattr(spec, name, None)) for name in _INPUT_SPEC_FIELDS}


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a dataclass, tuple or enum-like value."""
    if is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(item) for name, item in asdict(value).items()}
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(getattr(value, "value", value))


def _short(value: Any) -> str:
    """A setting for the one-line message (hashes cut to 12 characters)."""
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text[:12] if isinstance(value, str) and len(value) == 64 else text


def _text_sha256(text: str) -> str:
    """SHA-256 of a text in hex."""
    return hashlib.sha256(text.encode()).hexdigest()
