"""The sketch architectures the trainer can build, by name (``--architecture``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from src.config import ModelConfig

# Name -> (builder module, builder function, stage widths used when none are given).
_ARCHITECTURES: dict[str, tuple[str, str, tuple[int, ...]]] = {
    "cnn": ("src.models.cnn", "build_cnn", (32, 64, 128)),
    "residual": ("src.models.residual", "build_residual_cnn", (48, 96, 192)),
}
ARCHITECTURE_NAMES = tuple(_ARCHITECTURES)
DEFAULT_ARCHITECTURE = "cnn"


def default_filters(architecture: str) -> tuple[int, ...]:
    """The stage widths ``architecture`` uses unless told otherwise."""
    return _ARCHITECTURES[_checked(architecture)][2]


def _checked(architecture: str) -> str:
    """Return ``architecture`` if it is known, else raise naming the choices."""
    if architecture not in _ARCHITECTURES:
        raise ValueError(
            f"unknown architecture {architecture!r}; choose one of {', '.join(ARCHITECTURE_NAMES)}"
        )
    return architecture


def build_model(architecture: str, config: ModelConfig) -> Any:
    """Build the named architecture with ``config`` (an uncompiled Keras model).

    Args:
        architecture: one of ``ARCHITECTURE_NAMES``.
        config: classes, input size and widths; ``filters`` is used as given.

    Raises:
        ValueError: for an unknown architecture (names the choices) or a config it cannot build.
    """
    from importlib import import_module

    module_name, function_name, _ = _ARCHITECTURES[_checked(architecture)]
    builder: Callable[[ModelConfig], Any] = getattr(import_module(module_name), function_name)
    return builder(config)


def config_with_filters(
    config: ModelConfig, architecture: str, filters: tuple[int, ...] | None
) -> ModelConfig:
    """``config`` with the given stage widths, or the architecture's own when none are given."""
    return replace(config, filters=filters or default_filters(architecture))
