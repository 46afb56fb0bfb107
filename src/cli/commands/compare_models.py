"""``compare-models --other_model B.h5 --data DIR``: two or more models on the same sketches.

The first model is the global ``--model``/``--labels``/``--layer``; each ``--other_model`` may have
its own ``--other_labels`` (default: ``--labels``) and ``--other_layer``. DIR is read as ``batch``
reads it (images, ``.ndjson`` drawings, ``.npy`` bitmaps; class-named sub-folders, a drawing's
word or a file's stem give the true class). Every model reads each sketch at its own input size.
Writes in the output folder:
    model_comparison.json   accuracy, open set and ink share per model; per pair of models the
                            agreement (2x2, McNemar), map rank correlation per class and per
                            input, the most different inputs and the audit deltas
    model_comparison.png    per class, the models' mean maps side by side
    model_comparison.html   all of it, with the inputs where attention differs most
Unreadable inputs are listed in the JSON and the exit code is then PARTIAL_FAILURE (9).
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from src.cli.common import announce_convention, emit, prepare_output_dir
from src.errors import ModelLoadError, SketchError
from src.utils.arguments import positive_int
from src.utils.atomic_write import write_json_atomic
from src.utils.exit_status import ExitStatus

JSON_NAME = "model_comparison.json"
FIGURE_NAME = "model_comparison.png"
HTML_NAME = "model_comparison.html"
DEFAULT_PER_CLASS = 50
CARD_NAME = "model_card.json"
AUDIT_NAME = "audit.json"


def register(subparsers: Any) -> None:
    """Add the ``compare-models`` subcommand."""
    parser = subparsers.add_parser(
        "compare-models",
        help="compare models' accuracy, agreement and attention on the same sketches",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--other_model",
        "--other-model",
        dest="other_models",
        action="append",
        required=True,
        type=Path,
        help="a model to compare with --model (repeat for more)",
    )
    parser.add_argument(
        "--other_labels",
        "--other-labels",
        dest="other_labels",
        action="append",
        type=Path,
        help="label mapping of each --other_model, in order (default: --labels)",
    )
    parser.add_argument(
        "--other_layer",
        "--other-layer",
        dest="other_layers",
        action="append",
        help="Grad-CAM layer of each --other_model, in order (default: automatic)",
    )
    parser.add_argument("--data", required=True, type=Path, help="folder of sketches")
    parser.add_argument(
        "--per_class",
        "--per-class",
        dest="per_class",
        type=positive_int,
        default=DEFAULT_PER_CLASS,
        help=f"inputs per class (default {DEFAULT_PER_CLASS})",
    )
    parser.add_argument(
        "--audit",
        type=Path,
        default=None,
        help="folder holding the first model's audit.json (from `audit`)",
    )
    parser.add_argument(
        "--other_audit",
        "--other-audit",
        dest="other_audits",
        action="append",
        type=Path,
        help="folder holding each --other_model's audit.json, in order",
    )
    parser.set_defaults(handler=run)


def _per_model(values: list | None, count: int, flag: str) -> list:
    """One value per other model: none given means defaults, else exactly one each."""
    if not values:
        return [None] * count
    if len(values) != count:
        raise SketchError(f"give {flag} once per --other_model ({count}), got {len(values)}")
    return list(values)


def _audit_report(folder: Path | None) -> Any:
    """The audit.json in ``folder`` (None without a folder or when unusable, with a warning)."""
    from src.explain.sidecars import read_audit_report

    if folder is None:
        return None
    path = folder / AUDIT_NAME
    if not path.exists():
        raise SketchError(f"{path} not found; run `audit` with --output that folder first")
    return read_audit_report(path)


def _display_names(paths: list[Path]) -> list[str]:
    """File names, or folder/file names when two models share a file name."""
    names = [path.name for path in paths]
    if len(set(names)) == len(names):
        return names
    return [f"{path.parent.name}/{path.name}" for path in paths]


def _model_entries(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Path, label map, layer and audit folder of every model, first model first."""
    from src.data.labels import LabelMap

    count = len(args.other_models)
    labels = [
        args.labels,
        *(p or args.labels for p in _per_model(args.other_labels, count, "--other_labels")),
    ]
    layers = [args.layer, *_per_model(args.other_layers, count, "--other_layer")]
    audits = [args.audit, *_per_model(args.other_audits, count, "--other_audit")]
    paths = [Path(args.model), *args.other_models]
    return [
        {
            "path": path,
            "name": name,
            "labels": LabelMap.load(label_path),
            "layer": layer,
            "audit": audit,
        }
        for path, name, label_path, layer, audit in zip(
            paths, _display_names(paths), labels, layers, audits
        )
    ]


def _load_sketches(inputs: list, specs: set, per_class: int) -> tuple[list, list, list]:
    """Each input in every model's convention (at most ``per_class`` per true class);
    failures listed."""
    from src.batch.inputs import failure_reason

    taken: Counter[str | None] = Counter()
    sketches, kept, failures = [], [], []
    for item in inputs:
        if taken[item.true_class] >= per_class:
            continue
        try:
            by_spec = {spec: item.load(spec) for spec in specs}
        except (SketchError, OSError) as error:
            failures.append({"source": item.source, "reason": failure_reason(error)})
            continue
        taken[item.true_class] += 1
        sketches.append(lambda spec, by_spec=by_spec: by_spec[spec])
        kept.append(item)
    return sketches, kept, failures


def _input_spec(model: Any, args: argparse.Namespace, path: Path) -> Any:
    """Each model its own convention: the options, else its own card, else the defaults. An
    unreadable card is left out (``read_model_card`` warns about it once)."""
    from src.data.input_spec import resolve_input_spec

    try:
        return resolve_input_spec(model, args.ink, args.value_range, path)
    except ModelLoadError:
        return resolve_input_spec(model, args.ink, args.value_range)


def run(args: argparse.Namespace) -> int:
    """Handler: check the label sets (before loading models), read DIR, compare, write."""
    from src.batch.inputs import discover_inputs
    from src.data.labels import LabelMap
    from src.explain.compare_models import measure_models
    from src.explain.compared_model import ComparedModel, shared_class_names
    from src.explain.sidecars import read_model_card
    from src.models.io import check_sketch_input, load_model

    entries = _model_entries(args)
    shared = shared_class_names([(entry["name"], entry["labels"].class_names) for entry in entries])
    for entry in entries:
        entry["audit_data"] = _audit_report(entry["audit"])
    output_dir = prepare_output_dir(args.output)
    discovery = discover_inputs(args.data, LabelMap(shared), args.per_class, exclude=output_dir)
    specs = []
    for entry in entries:
        model = load_model(entry["path"])
        check_sketch_input(model, source=entry["path"])
        input_spec = _input_spec(model, args, entry["path"])
        specs.append(
            ComparedModel(
                model,
                entry["labels"].class_names,
                entry["name"],
                entry["layer"],
                read_model_card(entry["path"].with_name(CARD_NAME)),
                entry["audit_data"],
                input_spec,
            )
        )
    defaults = [spec.input_spec for spec in specs if spec.input_spec.is_default]
    if defaults:
        announce_convention(defaults[0])
    input_specs = {spec.input_spec for spec in specs}
    sketches, kept, failures = _load_sketches(discovery.inputs, input_specs, args.per_class)
    failures += [{"source": f.source, "reason": f.reason} for f in discovery.failures]
    if not sketches:
        raise SketchError(f"no readable sketches under {args.data} (images, .ndjson or .npy)")
    comparison = measure_models(
        specs,
        sketches,
        [item.true_class for item in kept],
        method=args.method or "gradcam",
        sources=[item.source for item in kept],
    )
    summary = {"data_dir": str(args.data), **comparison.summary, "failures": failures}
    _write_outputs(output_dir, comparison, summary, args)
    _report(summary, output_dir)
    return ExitStatus.PARTIAL_FAILURE if failures else ExitStatus.SUCCESS


def _write_outputs(
    output_dir: Path, comparison: Any, summary: dict, args: argparse.Namespace
) -> None:
    """The JSON, the mean-map figure (when a class has explained inputs) and the HTML page."""
    import base64

    from src.explain.comparison_summary import class_mean_maps
    from src.reports.model_comparison import render_comparison
    from src.utils.atomic_write import write_text_atomic
    from src.visualization.figures import save_model_comparison_figure
    from src.visualization.overlay import overlay_heatmap, to_png_bytes

    write_json_atomic(output_dir / JSON_NAME, summary)
    means = class_mean_maps(comparison)
    figure = None
    if means:
        first_pair = summary["pairs"][0]["per_class"]
        correlations = {entry["class"]: entry["mean_map_rank_correlation"] for entry in first_pair}
        names = [run.spec.name for run in comparison.runs]
        figure = save_model_comparison_figure(
            means, names, correlations, output_dir / FIGURE_NAME
        ).name
    overlays: dict[int, dict[str, str]] = {}
    for number in {n for pair in summary["pairs"] for n in pair["most_different"]}:
        overlays[number] = {}
        for run in comparison.runs:
            seen = run.spec.input_spec.decode(run.inputs[number])
            rgb = overlay_heatmap(seen, run.heatmaps[number], args.alpha, args.colormap)
            encoded = base64.b64encode(to_png_bytes(rgb)).decode("ascii")
            overlays[number][run.spec.name] = f"data:image/png;base64,{encoded}"
    write_text_atomic(
        output_dir / HTML_NAME, render_comparison(summary, overlays, figure, JSON_NAME)
    )


def _report(summary: dict[str, Any], output_dir: Path) -> None:
    """A few lines on stdout: accuracy and ink share per model, agreement per pair."""
    for model in summary["models"]:
        top1 = "-" if model["top1"] is None else f"{model['top1']:.1%}"
        share = model["ink"]["mean_share"]
        flag = " (flagged: attention off the drawing)" if model["ink"]["flagged"] else ""
        emit(f"{model['name']}: top-1 {top1}, heat near ink {share}{flag}")
    for pair in summary["pairs"]:
        agreement = pair["agreement"]
        emit(
            f"{pair['name']}: same answer {agreement['same_answer']}, McNemar p "
            f"{agreement['mcnemar_p_value']}, map rank correlation "
            f"{pair['map_rank_correlation']['mean']}"
        )
    emit(f"Results written to {output_dir}")
