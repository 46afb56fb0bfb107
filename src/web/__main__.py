"""``python -m src.web --model_path ... --label_mapping ... --host 127.0.0.1 --port 8000``.

``--workers N`` serves from N processes, each with its own model and batcher (see
``src.web.workers``): one process's GIL cannot keep two cores busy.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from src.config import DEFAULT_LABELS_PATH, DEFAULT_MODEL_PATH
from src.data.input_spec import add_convention_options, join_value_range
from src.utils.arguments import positive_int
from src.utils.tensorflow_logging import configure_tensorflow_logging

logger = logging.getLogger("src.web")


def build_parser() -> argparse.ArgumentParser:
    """Command-line flags; each overrides the matching ``SKETCH_*`` setting."""
    parser = argparse.ArgumentParser(
        prog="python -m src.web", description="Serve the SketchCAM drawing page and JSON API."
    )
    parser.add_argument(
        "--model_path",
        "--model-path",
        "--model",
        dest="model_path",
        help=f"Keras model (default: {DEFAULT_MODEL_PATH})",
    )
    parser.add_argument(
        "--label_mapping",
        "--label-mapping",
        "--labels",
        dest="label_mapping",
        help=f"label mapping JSON (default: {DEFAULT_LABELS_PATH})",
    )
    parser.add_argument(
        "--monitor_threshold",
        "--monitor-threshold",
        dest="monitor_threshold",
        type=float,
        help="log the attention of /predict and /predict_with_gradcam answers below this "
        "confidence (default 0: off)",
    )
    parser.add_argument(
        "--monitor_log",
        "--monitor-log",
        dest="monitor_log",
        help="attention log, JSON Lines (default: $SKETCHCAM_LOG_DIR/attention.jsonl, else "
        "logs/attention.jsonl in the working directory)",
    )
    add_convention_options(parser)
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on")
    parser.add_argument("--port", type=int, default=8000, help="TCP port")
    parser.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes, each loading the model (default 1; about one per core)",
    )
    parser.add_argument(
        "--log_level",
        "--log-level",
        dest="log_level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="also show TensorFlow's own start-up messages (and log at debug level)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Load the model (one-line error and exit 2 if it cannot be served), then run uvicorn."""
    args = build_parser().parse_args(join_value_range(sys.argv[1:] if argv is None else argv))
    if args.verbose:
        args.log_level = "debug"
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    configure_tensorflow_logging(args.verbose)
    import uvicorn

    from src.errors import SketchError
    from src.web.app import create_app
    from src.web.deps import Engine
    from src.web.header_timeout import protocol_with_header_timeout
    from src.web.settings import WebSettings
    from src.web.workers import serve_in_processes

    overrides = {
        key: value
        for key in (
            "model_path",
            "label_mapping",
            "ink",
            "value_range",
            "monitor_threshold",
            "monitor_log",
        )
        if (value := getattr(args, key)) is not None
    }
    try:
        settings = WebSettings(**overrides)
        # Loaded here rather than in the lifespan so a bad model is one clear line, not a traceback.
        engine = Engine.load(settings)
    except (SketchError, ValueError) as error:
        sys.stderr.write(f"error: cannot start the web app: {error}\n")
        return 2
    notice = engine.explainer.input_spec.default_notice()
    if notice is not None:
        sys.stderr.write(notice + "\n")
    if args.workers == 1:
        uvicorn.run(
            create_app(settings, engine),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
            http=protocol_with_header_timeout(settings.header_timeout_s),
            timeout_graceful_shutdown=settings.shutdown_grace_s,
        )
        return 0
    # Worker processes start from an import string and read their settings from the
    # environment; each loads its own model in the app's lifespan. This copy served only to
    # turn a bad model into one line above.
    engine.close()
    os.environ.update({f"SKETCH_{key.upper()}": str(value) for key, value in overrides.items()})
    return serve_in_processes(
        args.host, args.port, args.workers, args.log_level, settings.shutdown_grace_s
    )


if __name__ == "__main__":
    raise SystemExit(main())
