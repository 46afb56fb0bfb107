"""``layers``: the model's candidate Grad-CAM layers with output shapes; the last is the default.

Use a name from this list with ``--layer`` (earlier layers show low-level strokes, later ones
whole parts).
"""

from __future__ import annotations

import argparse
from typing import Any

from src.cli.common import emit
from src.utils.exit_status import ExitStatus


def register(subparsers: Any) -> None:
    """Add the ``layers`` subcommand."""
    parser = subparsers.add_parser(
        "layers",
        help="list the layers --layer accepts, with output shapes",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: load the model only (no labels needed) and print one line per candidate layer."""
    from src.errors import LayerNotFoundError, UnsupportedModelError
    from src.models.io import load_model
    from src.models.sketch_model import sketch_model_problem
    from src.visualization.gradcam import describe_layers

    model = load_model(args.model)
    problem = sketch_model_problem(model)
    if problem is not None:
        _list_every_layer(model)
        raise UnsupportedModelError(f"{args.model}: {problem}")
    candidates = describe_layers(model)
    if not candidates:
        raise LayerNotFoundError(
            f"{args.model} has no layer with a spatial output larger than 1x1; "
            "Grad-CAM needs a convolutional model"
        )
    width = max(len(info.path) for info in candidates)
    emit(f"{'layer'.ljust(width)}  {'type':<22} output shape")
    for position, info in enumerate(candidates):
        default = "  (default)" if position == len(candidates) - 1 else ""
        emit(f"{info.path.ljust(width)}  {info.class_name:<22} {info.output_shape}{default}")
    return ExitStatus.SUCCESS


def _list_every_layer(model: Any) -> None:
    """One line per layer with its output shape, for a model none of whose layers can be used."""
    from src.models.sketch_model import layer_output_shape

    width = max(len(layer.name) for layer in model.layers)
    emit(f"{'layer'.ljust(width)}  {'type':<22} output shape")
    for layer in model.layers:
        shape = layer_output_shape(layer)
        emit(f"{layer.name.ljust(width)}  {type(layer).__name__:<22} {shape or '(several)'}")
