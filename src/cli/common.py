"""Helpers every subcommand shares: global options, loading the Explainer once, emit.

The argparse types live in src.utils.arguments and the atomic writers in src.utils.atomic_write,
where the web launcher and the batch library reach them too.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from src.config import DEFAULT_LABELS_PATH, DEFAULT_MODEL_PATH, PROJECT_ROOT
from src.data.input_spec import InputSpec, add_convention_options
from src.data.labels import LabelMap
from src.errors import SketchError
from src.utils.arguments import positive_int, unit_float
from src.visualization.cam_methods import DEFAULT_METHOD, methods_help

DEFAULT_OUTPUT_DIR = PROJECT_ROOT / "gradcam_results"
DEFAULT_TOP_K = 3
DEFAULT_ALPHA = 0.4
DEFAULT_COLORMAP = "jet"


def emit(line: str = "") -> None:
    """Write one line of the CLI's own report to stdout (src/ bans print)."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def nothing_drawn_text(source: object) -> str:
    """The one line every command prints for an input with no ink: no class, no map."""
    return f"nothing drawn in {source}"


def colormap_name(text: str) -> str:
    """argparse type: a matplotlib colormap name (matplotlib is imported only when parsing)."""
    import matplotlib

    if text not in matplotlib.colormaps:
        raise argparse.ArgumentTypeError(f"unknown colormap {text!r}; try jet, viridis or turbo")
    return text


def cam_method(text: str) -> str:
    """argparse type: one of the engine's methods."""
    from src.visualization.cam_methods import METHODS

    if text not in METHODS:
        raise argparse.ArgumentTypeError(f"unknown method {text!r}; choose {', '.join(METHODS)}")
    return text


def add_engine_options(parser: argparse.ArgumentParser, legacy: bool = False) -> None:
    """The options every Grad-CAM entry point takes (model, labels, layer, method, rendering).

    Args:
        parser: the parser to extend.
        legacy: also accept predict.py's spellings (--model_path, --label_mapping).
    """
    model_flags = ("--model_path", "--model-path", "--model") if legacy else ("--model",)
    label_flags = ("--label_mapping", "--label-mapping", "--labels") if legacy else ("--labels",)
    parser.add_argument(
        *model_flags,
        dest="model",
        type=Path,
        default=DEFAULT_MODEL_PATH,
        help="Keras .h5/.keras model (default: models/best_model.h5)",
    )
    parser.add_argument(
        *label_flags,
        dest="labels",
        type=Path,
        default=DEFAULT_LABELS_PATH,
        help="label mapping JSON (default: data/label_mapping.json)",
    )
    parser.add_argument(
        "--layer",
        default=None,
        help="target layer name; default: the last spatial layer (see `layers`)",
    )
    parser.add_argument(
        "--method",
        type=cam_method,
        # None, not the name: argparse would run cam_method (importing TensorFlow) on a default.
        default=None,
        help=methods_help(),
    )
    parser.add_argument(
        "--top_k",
        "--top-k",
        dest="top_k",
        type=positive_int,
        default=DEFAULT_TOP_K,
        help="classes to rank and explain (default 3)",
    )
    parser.add_argument(
        "--alpha",
        type=unit_float,
        default=DEFAULT_ALPHA,
        help="heatmap opacity in the overlay, 0..1 (default 0.4)",
    )
    parser.add_argument(
        "--colormap",
        type=colormap_name,
        default=DEFAULT_COLORMAP,
        help="matplotlib colormap: red high, blue low with jet (default)",
    )
    add_convention_options(parser)
    parser.add_argument(
        "--traceback", action="store_true", help="show the full Python traceback on errors"
    )


def announce_convention(spec: InputSpec) -> None:
    """Write ``InputSpec.default_notice`` to stderr when there is one (once per model load)."""
    notice = spec.default_notice()
    if notice is not None:
        sys.stderr.write(notice + "\n")


def add_verbose_option(parser: argparse.ArgumentParser) -> None:
    """``--verbose``: the library's INFO logging and TensorFlow's own start-up lines."""
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show progress logging and TensorFlow's own start-up messages",
    )


def configure_verbose_logging(verbose: bool) -> None:
    """With ``--verbose``, show the project's INFO logging on stderr (otherwise warnings only)."""
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")


def load_labels(args: argparse.Namespace) -> LabelMap:
    """The label mapping named by --labels (cheap: no TensorFlow)."""
    return LabelMap.load(args.labels)


def load_engine(args: argparse.Namespace, labels: LabelMap | None = None) -> Any:
    """Load the model once into an ``Explainer`` with the global options' method and layer.

    Returns:
        src.service.explainer.Explainer (its default GradCAM already built, so a bad
        --layer is reported before any image is read).

    Raises:
        LabelMappingError, ModelLoadError, LayerNotFoundError: with the fix in the message.
    """
    from src.service.explainer import Explainer

    # Labels first: a bad mapping is reported before the slow model load.
    labels = labels if labels is not None else load_labels(args)
    # from_files checks the input shape and that the model's outputs match the label count.
    explainer = Explainer.from_files(
        args.model,
        labels,
        default_method=args.method or DEFAULT_METHOD,
        default_layer=args.layer,
        ink=args.ink,
        value_range=args.value_range,
    )
    announce_convention(explainer.input_spec)
    explainer.cam()
    return explainer


def prepare_output_dir(path: str | Path) -> Path:
    """Create the output folder (and parents) and return it resolved.

    Raises:
        SketchError: if the path exists and is not a folder.
    """
    directory = Path(path).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise SketchError(f"output path {directory} is a file; pass a folder to --output")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def relative_to(path: Path, directory: Path) -> str:
    """``path`` relative to ``directory`` with forward slashes (for JSON and HTML links)."""
    return path.resolve().relative_to(directory.resolve()).as_posix()
