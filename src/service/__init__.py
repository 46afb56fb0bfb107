"""The explainer service: the one object every interface (CLI, web, batch, monitoring) holds.

It sits above the CAM engine (``src.visualization``) and the explanations (``src.explain``)
and below the batch job and the interfaces, so imports only run downwards.
"""

from src.service.explainer import DEFAULT_METHOD, Explainer

__all__ = ["DEFAULT_METHOD", "Explainer"]
