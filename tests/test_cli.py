"""The command-line tools as docs/usage_guide.md runs them: scripts/gradcam_analysis.py and predict.py.

Two subprocess runs prove the guide's two scripts work verbatim from the repository root; the
rest runs in-process through ``main([...])`` with the same arguments (a TensorFlow start costs
seconds per subprocess).
Expected values come from the model's own ``predict``, not from the CLI's code.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.cli.gradcam_analysis import main
from src.data.preprocess import image_file_to_model_input
from src.utils.exit_status import ExitStatus
from tests.conftest import TINY_CLASSES, run_as_user

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def keras_model(sketch_model_path: Path):  # type: ignore[no-untyped-def]
    """The fixture model loaded with plain Keras, the independent oracle for predictions."""
    import keras

    return keras.models.load_model(sketch_model_path, compile=False)


def model_argmax(keras_model, image_path: Path) -> tuple[int, np.ndarray]:  # type: ignore[no-untyped-def]
    """The model's own prediction for an image file."""
    batch = image_file_to_model_input(image_path)[np.newaxis]
    probabilities = np.asarray(keras_model.predict(batch, verbose=0))[0]
    return int(np.argmax(probabilities)), probabilities


def engine_args(model: Path, labels: Path, output: Path) -> list[str]:
    """The global options every command takes."""
    return ["--model", str(model), "--labels", str(labels), "--output", str(output)]


def no_partial_files(directory: Path) -> bool:
    """Atomic writes leave no temporary files behind."""
    return not [path for path in directory.rglob("*") if path.name.endswith(".partial")]


def check_single_outputs(output: Path, image: Path, keras_model, top_k: int = 3) -> dict:  # type: ignore[no-untyped-def]
    """The files and fields ``single`` promises, checked against the model's own predict."""
    summary = json.loads((output / "analysis_summary.json").read_text())
    expected_index, probabilities = model_argmax(keras_model, image)
    assert summary["predicted_class"] == expected_index
    assert summary["predicted_label"] == TINY_CLASSES[expected_index]
    assert summary["confidence"] == pytest.approx(float(probabilities[expected_index]), abs=1e-4)
    top = summary["top_predictions"]
    assert [entry["rank"] for entry in top] == list(range(1, top_k + 1))
    confidences = [entry["confidence"] for entry in top]
    assert confidences == sorted(confidences, reverse=True) and sum(confidences) <= 1.0 + 1e-6
    for entry in top:
        assert entry["class_name"] == TINY_CLASSES[entry["class_index"]]
        name = f"gradcam_top{entry['rank']}_{entry['class_name']}.png"
        assert (output / "top_predictions" / name).is_file()
    assert (output / "gradcam_prediction.png").stat().st_size > 1000
    assert {"image_path", "model_path", "layer", "method"} <= summary.keys()
    assert no_partial_files(output)
    return summary


@pytest.mark.slow
def test_spec_single_command_runs_from_the_repository_root(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    keras_model,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    image = sketch_model_dir / "sketches" / "square" / "0.png"
    output = tmp_path / "gradcam_results"
    completed = run_as_user(
        "scripts/gradcam_analysis.py",
        *engine_args(sketch_model_path, sketch_labels_path, output),
        "single",
        "--image",
        image,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""  # no TensorFlow start-up lines: only the command's own output
    summary = check_single_outputs(output, image, keras_model)
    assert summary["layer"] == "last_conv" and summary["method"] == "gradcam"
    assert "Predicted:" in completed.stdout
    assert "Results written to" in completed.stdout


def test_spec_custom_layer_command_uses_that_layer(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    keras_model,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    image = sketch_model_dir / "sketches" / "circle" / "0.png"
    output = tmp_path / "layer_analysis"
    status = main(
        [
            "--model", str(sketch_model_path),
            "--labels", str(sketch_labels_path),
            "--layer", "conv2_2",
            "--output", str(output),
            "single", "--image", str(image),
        ]
    )  # fmt: skip
    assert status == ExitStatus.SUCCESS
    assert check_single_outputs(output, image, keras_model)["layer"] == "conv2_2"


def test_spec_class_command_writes_the_class_analysis(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    keras_model,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    image = sketch_model_dir / "sketches" / "line" / "0.png"
    output = tmp_path / "class_analysis"
    status = main(
        [
            *engine_args(sketch_model_path, sketch_labels_path, output),
            "class", "--image", str(image), "--class_name", "circle",
        ]
    )  # fmt: skip
    assert status == ExitStatus.SUCCESS
    analysis = json.loads((output / "class_analysis_circle.json").read_text())
    expected_index, probabilities = model_argmax(keras_model, image)
    assert analysis["target_class"] == "circle" and analysis["target_class_index"] == 0
    assert analysis["target_class_confidence"] == pytest.approx(float(probabilities[0]), abs=1e-4)
    assert analysis["predicted_class_index"] == expected_index
    assert analysis["predicted_class"] == TINY_CLASSES[expected_index]
    assert analysis["predicted_class_confidence"] == pytest.approx(
        float(probabilities.max()), abs=1e-4
    )
    assert (output / analysis["figure"]).is_file()


@pytest.fixture()
def batch_folder(sketch_model_dir: Path, tmp_path: Path) -> Path:
    """Class sub-folders of sketches, one corrupt PNG and one unrelated text file."""
    folder = tmp_path / "sketch directory"
    shutil.copytree(sketch_model_dir / "sketches", folder)
    (folder / "circle" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (folder / "notes.txt").write_text("not a sketch")
    return folder


def test_spec_batch_command_finishes_despite_a_corrupt_file(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    keras_model,
    batch_folder: Path,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    output = tmp_path / "batch_results"
    status = main(
        [
            *engine_args(sketch_model_path, sketch_labels_path, output),
            "batch", "--images_dir", str(batch_folder),
        ]
    )  # fmt: skip
    assert status == ExitStatus.PARTIAL_FAILURE
    summary = json.loads((output / "batch_summary.json").read_text())
    images = sorted(path for path in batch_folder.rglob("*.png") if path.name != "broken.png")
    assert summary["succeeded"] == len(images) and summary["failed"] == 1
    assert summary["failures"][0]["source"] == "circle/broken.png"
    assert summary["ignored"] == ["notes.txt"]
    records = {record["source"]: record for record in summary["images"]}
    truth, predicted = [], []
    for image in images:
        record = records[image.relative_to(batch_folder).as_posix()]
        expected_index, _ = model_argmax(keras_model, image)
        assert record["predicted_class_index"] == expected_index
        assert record["true_class"] == image.parent.name
        assert (output / record["overlay"]).is_file()
        truth.append(TINY_CLASSES.index(image.parent.name))
        predicted.append(expected_index)
    assert summary["accuracy"] == pytest.approx(np.mean(np.array(truth) == np.array(predicted)))
    matrix = np.zeros((3, 3), int)
    np.add.at(matrix, (truth, predicted), 1)
    assert summary["class_metrics"]["confusion_matrix"]["matrix"] == matrix.tolist()
    with (output / "batch_summary.csv").open() as stream:
        rows = list(csv.DictReader(stream))
    assert len(rows) == len(images) + 1
    assert [row["status"] for row in rows].count("failed") == 1
    check_report_links(output, summary)
    assert no_partial_files(output)
    # The matrix is a table in the report; its matplotlib figure is opt-in (--confusion_figure).
    assert "Confusion matrix" in (output / "report.html").read_text()
    assert not (output / "confusion_matrix.png").exists()


def test_batch_mean_maps_and_optional_confusion_figure(
    sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path, tmp_path: Path
) -> None:
    """Mean maps equal the per-class means of the engine's maps, over chunks of any size."""
    import keras

    from src.visualization.gradcam import GradCAM
    from src.visualization.overlay import overlay_heatmap

    output = tmp_path / "out"
    status = main(
        [
            *engine_args(sketch_model_path, sketch_labels_path, output),
            "batch", "--images_dir", str(sketch_model_dir / "sketches"),
            "--batch_size", "3", "--workers", "2", "--confusion_figure",
        ]
    )  # fmt: skip
    assert status == ExitStatus.SUCCESS
    summary = json.loads((output / "batch_summary.json").read_text())
    assert summary["class_metrics"]["confusion_matrix"]["figure"] == "confusion_matrix.png"
    assert (output / "confusion_matrix.png").is_file()
    check_report_links(output, summary)

    model = keras.models.load_model(sketch_model_path, compile=False)
    sources = [record["source"] for record in summary["images"]]
    images = np.stack(
        [image_file_to_model_input(sketch_model_dir / "sketches" / source) for source in sources]
    )
    heatmaps = GradCAM(model).explain(images).heatmaps
    predicted = np.array([record["predicted_class_index"] for record in summary["images"]])
    for name, entry in summary["mean_maps"].items():
        rows = predicted == TINY_CLASSES.index(name)
        assert entry["count"] == rows.sum()
        expected = overlay_heatmap(images[rows].mean(axis=0), heatmaps[rows].mean(axis=0))
        with Image.open(output / entry["file"]) as written:
            pixels = np.asarray(written.convert("RGB")).astype(int)
        # Written at twice the size (nearest neighbour); float sums may round one level apart.
        assert np.abs(pixels[::2, ::2] - expected).max() <= 1


def check_report_links(output: Path, summary: dict) -> None:  # type: ignore[type-arg]
    """report.html links only files that exist, and shows every explained image."""
    html = (output / "report.html").read_text()
    found = set(re.findall(r"(?:src|href)='([^']+)'", html))
    # In-page links (an overlay opened enlarged) name an element of the page instead of a file.
    anchors = {link[1:] for link in found if link.startswith("#")}
    assert anchors <= set(re.findall(r"id='([^']+)'", html))
    links = found - {f"#{anchor}" for anchor in anchors}
    assert links and all((output / link).exists() for link in links)
    assert {"batch_summary.csv", "batch_summary.json", "overlays/"} <= links
    assert {record["overlay"] for record in summary["images"]} <= links
    for entry in summary["mean_maps"].values():
        assert entry["file"] in links


@pytest.mark.slow
def test_spec_predict_script_with_gradcam_writes_the_single_outputs(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    keras_model,
    tmp_path: Path,
) -> None:  # type: ignore[no-untyped-def]
    image = sketch_model_dir / "sketches" / "circle" / "1.png"
    output = tmp_path / "gradcam_visualizations"
    completed = run_as_user(
        "src/inference/predict.py",
        "--model_path",
        sketch_model_path,
        "--image_path",
        image,
        "--label_mapping",
        sketch_labels_path,
        "--gradcam",
        "--output_dir",
        output,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    summary = check_single_outputs(output, image, keras_model)
    assert completed.stdout.startswith(f"Predicted: {summary['predicted_label']}")


def test_predict_prints_the_ranking_in_process(
    sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path, keras_model, capsys
) -> None:  # type: ignore[no-untyped-def]
    from src.cli.predict import main as predict_main

    image = sketch_model_dir / "sketches" / "line" / "1.png"
    code = predict_main(
        [
            "--model_path",
            str(sketch_model_path),
            "--image_path",
            str(image),
            "--label_mapping",
            str(sketch_labels_path),
            "--top_k",
            "2",
        ]
    )
    lines = capsys.readouterr().out.splitlines()
    expected_index, _ = model_argmax(keras_model, image)
    assert code == 0
    assert lines[0].startswith(f"Predicted: {TINY_CLASSES[expected_index]} ")
    assert len(lines) == 4 and lines[1].strip().startswith(f"1. {TINY_CLASSES[expected_index]}")
    assert lines[3].startswith("Open-set score: ")


@pytest.fixture()
def not_an_image(tmp_path: Path) -> Path:
    """A text file with an image suffix."""
    path = tmp_path / "fake.png"
    path.write_text("this is not a PNG")
    return path


@pytest.mark.parametrize(
    ("case", "expected_status", "message"),
    [
        ("unknown_class", ExitStatus.UNKNOWN_CLASS, "closest: circle"),
        ("missing_image", ExitStatus.INVALID_IMAGE, "image file not found"),
        ("not_an_image", ExitStatus.INVALID_IMAGE, "not a readable image"),
        ("not_a_model", ExitStatus.MODEL_ERROR, "not a valid Keras model"),
        ("missing_model", ExitStatus.MODEL_ERROR, "model file not found"),
        ("missing_labels", ExitStatus.LABELS_ERROR, "label mapping not found"),
        ("unknown_layer", ExitStatus.LAYER_NOT_FOUND, "candidate layers: "),
        ("missing_folder", ExitStatus.INVALID_IMAGE, "images folder not found"),
    ],
)
def test_errors_exit_with_documented_codes_and_one_stderr_line(
    case: str,
    expected_status: ExitStatus,
    message: str,
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    not_an_image: Path,
    tmp_path: Path,
    capsys,
) -> None:  # type: ignore[no-untyped-def]
    image = str(sketch_model_dir / "sketches" / "circle" / "0.png")
    fake_model = tmp_path / "model.h5"
    fake_model.write_bytes(b"not hdf5 at all")
    model, labels, output = str(sketch_model_path), str(sketch_labels_path), str(tmp_path / "out")
    arguments = {
        "unknown_class": [
            "--model",
            model,
            "--labels",
            labels,
            "--output",
            output,
            "class",
            "--image",
            image,
            "--class_name",
            "circel",
        ],
        "missing_image": [
            "--model",
            model,
            "--labels",
            labels,
            "--output",
            output,
            "single",
            "--image",
            str(tmp_path / "missing.png"),
        ],
        "not_an_image": [
            "--model",
            model,
            "--labels",
            labels,
            "--output",
            output,
            "single",
            "--image",
            str(not_an_image),
        ],
        "not_a_model": ["--model", str(fake_model), "--labels", labels, "single", "--image", image],
        "missing_model": [
            "--model",
            str(tmp_path / "nope.h5"),
            "--labels",
            labels,
            "single",
            "--image",
            image,
        ],
        "missing_labels": [
            "--model",
            model,
            "--labels",
            str(tmp_path / "nope.json"),
            "single",
            "--image",
            image,
        ],
        "unknown_layer": [
            "--model",
            model,
            "--labels",
            labels,
            "--layer",
            "conv9",
            "--output",
            output,
            "single",
            "--image",
            image,
        ],
        "missing_folder": [
            "--model",
            model,
            "--labels",
            labels,
            "--output",
            output,
            "batch",
            "--images-dir",
            str(tmp_path / "nowhere"),
        ],
    }[case]
    code = main(arguments)
    captured = capsys.readouterr()
    assert code == expected_status
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradcam_analysis: error: ")
    assert message in lines[0]


def test_traceback_flag_re_raises(
    sketch_model_path: Path, sketch_labels_path: Path, tmp_path: Path
) -> None:
    from src.errors import UnknownClassError

    with pytest.raises(UnknownClassError, match="closest"):
        main(
            [
                "--model",
                str(sketch_model_path),
                "--labels",
                str(sketch_labels_path),
                "--traceback",
                "--output",
                str(tmp_path),
                "class",
                "--image",
                "x.png",
                "--class-name",
                "squar",
            ]
        )


@pytest.mark.parametrize(
    "arguments",
    [
        ["--alpha", "2", "layers"],
        ["--colormap", "no_such_map", "layers"],
        ["--top_k", "0", "layers"],
        ["--method", "magic", "layers"],
        ["single"],
        [],
    ],
)
def test_bad_arguments_exit_with_usage_status(arguments: list[str], capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(arguments) == ExitStatus.USAGE
    assert "usage:" in capsys.readouterr().err


def test_help_lists_the_subcommands_without_loading_tensorflow() -> None:
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from src.cli.gradcam_analysis import main; code = main(['--help']); "
            "assert 'tensorflow' not in sys.modules; sys.exit(code)",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    for command in ("single", "class", "batch", "layers"):
        assert command in completed.stdout


def test_layers_lists_candidates_with_shapes_and_marks_the_default(
    sketch_model_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    assert main(["--model", str(sketch_model_path), "layers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1].startswith("last_conv") and lines[-1].endswith("(default)")
    assert any(line.startswith("conv2_2") and "(None, 16, 16, 8)" in line for line in lines)


def test_class_names_with_spaces_and_slashes_make_safe_file_names(
    sketch_model_path: Path, sketch_model_dir: Path, tmp_path: Path, keras_model
) -> None:  # type: ignore[no-untyped-def]
    labels = tmp_path / "labels.json"
    labels.write_text(json.dumps({"0": "smiley face", "1": "../evil/line", "2": "square"}))
    output = tmp_path / "out"
    image = str(sketch_model_dir / "sketches" / "line" / "0.png")
    common = ["--model", str(sketch_model_path), "--labels", str(labels), "--output", str(output)]
    assert main([*common, "--top_k", "3", "single", "--image", image]) == 0
    assert main([*common, "class", "--image", image, "--class_name", "../evil/line"]) == 0
    written = {path.relative_to(output).as_posix() for path in output.rglob("*") if path.is_file()}
    assert "class_analysis_evil_line.json" in written
    # The safe names, by hand (README's rule): the space and the slashes become "_", and the
    # leading dots and underscore are dropped.
    safe_names = {0: "smiley_face", 1: "evil_line", 2: "square"}
    _, probabilities = model_argmax(keras_model, Path(image))
    ranked = np.argsort(-probabilities, kind="stable")
    for rank, class_index in enumerate(ranked, start=1):
        expected = f"top_predictions/gradcam_top{rank}_{safe_names[int(class_index)]}.png"
        assert expected in written
    assert {path.name for path in tmp_path.iterdir()} == {"labels.json", "out"}
    assert not (tmp_path / "evil").exists()


def test_batch_reads_drawings_and_bitmaps_in_process(
    sketch_model_path: Path, sketch_labels_path: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import draw_circle_strokes, draw_square_strokes

    folder = tmp_path / "mixed"
    folder.mkdir()
    drawings = [
        {"word": "circle", "drawing": draw_circle_strokes()},
        {"word": "square", "drawing": draw_square_strokes()},
    ]
    lines = [json.dumps(drawing) for drawing in drawings]
    (folder / "shapes.ndjson").write_text("\n".join([lines[0], "{broken", lines[1]]) + "\n")
    bitmaps = np.zeros((3, 784), np.uint8)
    bitmaps[:, 28 * 14 : 28 * 15] = 255  # a horizontal line
    np.save(folder / "line.npy", bitmaps)
    output = tmp_path / "out"
    code = main(
        [
            "--model",
            str(sketch_model_path),
            "--labels",
            str(sketch_labels_path),
            "--output",
            str(output),
            "batch",
            "--images_dir",
            str(folder),
            "--batch_size",
            "2",
        ]
    )
    summary = json.loads((output / "batch_summary.json").read_text())
    assert code == ExitStatus.PARTIAL_FAILURE  # the malformed ndjson line
    assert summary["succeeded"] == 5 and summary["failed"] == 1
    assert "line 2" in summary["failures"][0]["reason"]
    sources = {record["source"]: record for record in summary["images"]}
    assert set(sources) == {
        "line.npy#1",
        "line.npy#2",
        "line.npy#3",
        "shapes.ndjson#1",
        "shapes.ndjson#2",
    }
    assert (
        sources["shapes.ndjson#2"]["true_class"] == "square"
        and sources["line.npy#1"]["true_class"] == "line"
    )
    check_report_links(output, summary)
    assert "Report:" in capsys.readouterr().out


def test_batch_rerun_with_output_inside_the_folder_skips_its_own_files(
    sketch_model_path: Path, sketch_labels_path: Path, sketch_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "sketches"
    shutil.copytree(sketch_model_dir / "sketches" / "circle", folder / "circle")
    common = ["--model", str(sketch_model_path), "--labels", str(sketch_labels_path)]
    arguments = [*common, "--output", str(folder / "results"), "batch", "--images_dir", str(folder)]
    assert main(arguments) == ExitStatus.SUCCESS
    assert main(arguments) == ExitStatus.SUCCESS
    summary = json.loads((folder / "results" / "batch_summary.json").read_text())
    assert [record["source"] for record in summary["images"]] == ["circle/0.png", "circle/1.png"]
