"""Predict one sketch's class: ``python src/inference/predict.py --image_path sketch.png``
(docs/usage_guide.md's path, a launcher for this module) or ``python -m src.cli.predict``.

Prints the prediction and the top classes. With ``--gradcam`` it also writes what
``scripts/gradcam_analysis.py single`` writes (gradcam_prediction.png, analysis_summary.json,
top_predictions/) into ``--output_dir``, using the same function. Exit codes are those of
``src.utils.exit_status.ExitStatus``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from src.cli.common import (
    add_engine_options,
    add_verbose_option,
    configure_verbose_logging,
    emit,
    nothing_drawn_text,
)
from src.config import PROJECT_ROOT
from src.data.input_spec import join_value_range
from src.utils.exit_status import EXIT_CODES_HELP, ExitStatus, run_guarded
from src.utils.tensorflow_logging import configure_tensorflow_logging, wants_verbose

PROGRAM = "predict"
DEFAULT_GRADCAM_DIR = PROJECT_ROOT / "gradcam_visualizations"


def build_parser() -> argparse.ArgumentParser:
    """predict.py's options; --model_path and --label_mapping are the kept spellings."""
    parser = argparse.ArgumentParser(prog="predict.py", description=__doc__, epilog=EXIT_CODES_HELP)
    parser.add_argument(
        "--image_path",
        "--image-path",
        "--image",
        dest="image_path",
        type=Path,
        required=True,
        help="sketch image file",
    )
    add_engine_options(parser, legacy=True)
    parser.add_argument(
        "--gradcam",
        action="store_true",
        help="also write the Grad-CAM figure, summary and top-k maps",
    )
    parser.add_argument(
        "--output_dir",
        "--output-dir",
        "--output",
        dest="output_dir",
        type=Path,
        default=DEFAULT_GRADCAM_DIR,
        help="folder for --gradcam results (default: gradcam_visualizations)",
    )
    add_verbose_option(parser)
    return parser


def predict(args: argparse.Namespace) -> int:
    """Print the ranked prediction; with --gradcam, run the ``single`` analysis."""
    from src.cli.commands.single import analyse_image, answer_text, report_summary
    from src.cli.common import load_engine, prepare_output_dir

    engine = load_engine(args)
    if args.gradcam:
        output_dir = prepare_output_dir(args.output_dir)
        summary = analyse_image(
            engine, args.image_path, output_dir, args.top_k, args.alpha, args.colormap
        )
        report_summary(summary, output_dir)
        return ExitStatus.SUCCESS
    image = engine.model_input(args.image_path)
    if engine.empty_inputs(image)[0]:
        emit(nothing_drawn_text(args.image_path))
        return ExitStatus.SUCCESS
    prediction = engine.predictor.predict(image, args.top_k)[0]
    verdict = engine.open_set_of(image[None])[0]
    answer = {
        "predicted_label": prediction.class_name,
        "confidence": prediction.confidence,
        "recognised": verdict.recognised,
    }
    emit(f"Predicted: {answer_text(answer)}")
    for ranked in prediction.top:
        emit(f"  {ranked.rank}. {ranked.class_name}: {ranked.confidence:.3f}")
    state = "recognised" if verdict.recognised else "not sure"
    emit(f"Open-set score: {verdict.score:.3f} ({state})")
    return ExitStatus.SUCCESS


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv``, predict, return the exit code (errors: one stderr line)."""
    configure_tensorflow_logging(wants_verbose(argv))
    try:
        args = build_parser().parse_args(join_value_range(sys.argv[1:] if argv is None else argv))
    except SystemExit as exit_request:
        return int(exit_request.code or 0) if not isinstance(exit_request.code, str) else 2
    configure_verbose_logging(args.verbose)
    return run_guarded(PROGRAM, lambda: predict(args), args.traceback)


if __name__ == "__main__":
    raise SystemExit(main())
