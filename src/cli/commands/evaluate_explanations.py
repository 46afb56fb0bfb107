"""``evaluate-explanations --data DIR``: are the maps faithful to the model?

Over drawings from ``<DIR>/<class>.ndjson`` (the model's classes): deletion and insertion
curves with their AUC per method, erasing ink (pixels set to background) highest heat first,
against random maps; then the model-parameter randomisation check: Spearman rank correlation
between the maps of the trained model and of copies whose top layers are re-initialised (low
means the maps depend on what the model learned). Writes ``faithfulness.json`` and
``faithfulness.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from src.cli.commands.strokes import sample_drawings
from src.cli.common import cam_method, emit, load_engine, prepare_output_dir
from src.utils.arguments import positive_int
from src.utils.atomic_write import write_json_atomic
from src.utils.exit_status import ExitStatus
from src.visualization.cam_methods import METHODS

# Every method but Score-CAM, whose K masked passes per image make a whole run slow.
DEFAULT_METHODS = tuple(name for name in METHODS if name != "scorecam")


def register(subparsers: Any) -> None:
    """Add the ``evaluate-explanations`` subcommand."""
    parser = subparsers.add_parser(
        "evaluate-explanations",
        help="deletion/insertion AUC and the randomisation check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--data", required=True, type=Path, help="folder of Quick, Draw! <class>.ndjson files"
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        type=cam_method,
        default=list(DEFAULT_METHODS),
        help="methods to evaluate (scorecam is slow; random is always added)",
    )
    parser.add_argument(
        "--per_class",
        "--per-class",
        dest="per_class",
        type=positive_int,
        default=5,
        help="drawings per class (default 5)",
    )
    parser.add_argument("--steps", type=positive_int, default=20, help="curve points - 1")
    parser.add_argument(
        "--randomise",
        type=int,
        default=3,
        help="top weighted layers to re-initialise, cascading (0 skips)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling and tie-breaking seed")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handler: one Grad-CAM per method over the same images, curves, then randomisation."""
    import numpy as np

    from src.explain.faithfulness import RANDOM_METHOD, deletion_insertion, random_maps
    from src.visualization.figures import save_faithfulness_figure

    methods = list(dict.fromkeys(args.methods))
    engine = load_engine(args)
    output_dir = prepare_output_dir(args.output)
    drawings = sample_drawings(args.data, engine.class_names, args.per_class, args.seed)
    images = np.stack([engine.model_input(strokes=strokes) for _, strokes in drawings])
    predicted = engine.predictor.probabilities(images).argmax(axis=1)
    curves = []
    for method in methods:
        # The explainer's GradCAMs share one compiled engine per layer, so every method's
        # curves and randomisation check run without tracing the graph again.
        heatmaps = engine.cam(method).explain(images, predicted).heatmaps
        curves.append(
            deletion_insertion(
                engine.model,
                images,
                heatmaps,
                predicted,
                method,
                args.steps,
                args.seed,
                engine.input_spec,
            )
        )
    noise = random_maps(len(images), images.shape[1:3], args.seed)
    curves.append(
        deletion_insertion(
            engine.model,
            images,
            noise,
            predicted,
            RANDOM_METHOD,
            args.steps,
            args.seed,
            engine.input_spec,
        )
    )
    report: dict[str, Any] = {
        "images": len(images),
        "accuracy": float(np.mean(predicted == np.array([index for index, _ in drawings]))),
        "layer": engine.gradcam.layer_name,
        "curves": [curve.to_dict() for curve in curves],
        "randomisation": _randomisation(
            [engine.cam(method) for method in methods], images, args.randomise, args.seed
        ),
    }
    write_json_atomic(output_dir / "faithfulness.json", report)
    save_faithfulness_figure(report["curves"], output_dir / "faithfulness.png")
    for curve in curves:
        emit(
            f"{curve.method:>10}: deletion AUC {curve.deletion_auc:.3f}, "
            f"insertion AUC {curve.insertion_auc:.3f}"
        )
    for entry in report["randomisation"]:
        emit(
            f"{entry['method']:>10}: rank correlation after randomising "
            f"{' '.join(f'{value:.2f}' for value in entry['rank_correlations'])}"
        )
    emit(f"Results written to {output_dir}")
    return ExitStatus.SUCCESS


def _randomisation(gradcams: list[Any], images: Any, depth: int, seed: int) -> list[dict[str, Any]]:
    """The cascading randomisation check of every method, as JSON-ready dicts."""
    from src.explain.faithfulness import randomisation_checks

    if depth <= 0:
        return []
    return [
        {
            "method": check.method,
            "randomised_layers": check.randomised_layers,
            "rank_correlations": [round(value, 4) for value in check.rank_correlations],
        }
        for check in randomisation_checks(gradcams, images, depth, seed)
    ]
