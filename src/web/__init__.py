"""SketchCAM's web app: ``create_app(settings)``, served by ``python -m src.web``.

Importing this package loads nothing; the model loads when the app starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.web.app import create_app as create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    """Import ``create_app`` on first use, so ``import src.web`` stays cheap."""
    if name == "create_app":
        from src.web.app import create_app

        return create_app
    raise AttributeError(f"module 'src.web' has no attribute {name!r}")
