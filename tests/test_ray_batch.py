"""``batch --ray``: the same answers and maps as the local batch, resume, actor death, bad input.

One local Ray (2 CPUs, no dashboard) serves the whole module and is shut down after it. Models
and sketches are the tiny ones of tests/conftest.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.cli.gradcam_analysis import main
from src.config import PROJECT_ROOT
from src.data.preprocess import INK_THRESHOLD
from src.utils.exit_status import ExitStatus
from tests.conftest import STROKES_BY_CLASS
from tests.test_nothing_drawn import (
    check_batch_counts_the_blank_apart,
    make_mixed_folder,
    run_batch_cli,
)

ray = pytest.importorskip("ray")
pq = pytest.importorskip("pyarrow.parquet")

pytestmark = pytest.mark.slow

CRASH_SOURCE = "drawings.ndjson#2"
# Runs use one replica: the answers, and what a rerun explains again, are decided per input
# whatever the pool size; each replica pays a TensorFlow start-up.
ONE_ACTOR = ("--ray", "--ray_actors", "1")


@pytest.fixture(scope="module")
def crash_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crash") / "crashed"


@pytest.fixture(scope="module", autouse=True)
def local_ray(crash_marker: Path):  # type: ignore[no-untyped-def]
    """A local Ray with 2 CPUs for the module; workers import this checkout's code."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        log_to_driver=False,
        runtime_env={
            "env_vars": {
                "PYTHONPATH": str(PROJECT_ROOT),
                "SKETCHCAM_TEST_CRASH_MARKER": str(crash_marker),
                "SKETCHCAM_TEST_CRASH_SOURCE": CRASH_SOURCE,
            }
        },
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def inputs(sketch_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Class-named PNG folders, an .ndjson of three drawings, an .npy of two bitmaps, and one
    corrupt PNG."""
    root = tmp_path_factory.mktemp("ray_inputs")
    shutil.copytree(sketch_model_dir / "sketches", root, dirs_exist_ok=True)
    with open(root / "drawings.ndjson", "w") as stream:
        for word, draw in STROKES_BY_CLASS.items():
            stream.write(json.dumps({"word": word, "drawing": draw()}) + "\n")
    bitmaps = np.zeros((2, 784), np.uint8)
    bitmaps[0, 28 * 10 : 28 * 12] = 255  # a horizontal bar
    bitmaps[1, 14::28] = 255  # a vertical bar
    np.save(root / "line.npy", bitmaps)
    (root / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return root


def batch(model_dir: Path, images: Path, output: Path, *extra: str) -> int:
    return main(
        [
            "--model", str(model_dir / "model.h5"), "--labels", str(model_dir / "label_mapping.json"),
            "--output", str(output), "batch", "--images_dir", str(images), "--batch_size", "4",
            *extra,
        ]
    )  # fmt: skip


def summary_of(output: Path) -> dict:
    return json.loads((output / "batch_summary.json").read_text())


def parquet_rows(output: Path) -> list[dict]:
    return pq.read_table(output / "results.parquet").to_pylist()


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


@pytest.fixture(scope="module")
def local_output(sketch_model_dir: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    output = tmp_path_factory.mktemp("local") / "out"
    assert batch(sketch_model_dir, inputs, output) == ExitStatus.PARTIAL_FAILURE
    return output


@pytest.fixture(scope="module")
def ray_output(sketch_model_dir: Path, inputs: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    output = tmp_path_factory.mktemp("ray") / "out"
    assert batch(sketch_model_dir, inputs, output, *ONE_ACTOR) == ExitStatus.PARTIAL_FAILURE
    return output


def test_ray_gives_the_local_predictions_files_and_failures(
    local_output: Path, ray_output: Path
) -> None:
    local, distributed = summary_of(local_output), summary_of(ray_output)
    assert distributed["succeeded"] == local["succeeded"] == 6 + 3 + 2
    assert [image["source"] for image in distributed["images"]] == [
        image["source"] for image in local["images"]
    ]
    for mine, theirs in zip(distributed["images"], local["images"]):
        assert mine["predicted_class"] == theirs["predicted_class"]
        assert mine["overlay"] == theirs["overlay"]
        assert mine["true_class"] == theirs["true_class"]
        assert [p["class_name"] for p in mine["top_predictions"]] == [
            p["class_name"] for p in theirs["top_predictions"]
        ]
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-5)
        assert mine["recognised"] == theirs["recognised"]
    # The broken file fails alone, listed as in the local run.
    assert [f["source"] for f in distributed["failures"]] == ["square/broken.png"]
    assert [f["source"] for f in local["failures"]] == ["square/broken.png"]
    assert (
        distributed["class_metrics"]["confusion_matrix"]
        == local["class_metrics"]["confusion_matrix"]
    )
    for image in local["images"]:
        difference = pixels(ray_output / image["overlay"]) - pixels(local_output / image["overlay"])
        assert np.abs(difference).max() <= 1, image["source"]
    assert distributed["mean_maps"] == local["mean_maps"]
    for entry in local["mean_maps"].values():
        difference = pixels(ray_output / entry["file"]) - pixels(local_output / entry["file"])
        assert np.abs(difference).max() <= 1, entry["file"]
    for name in ("report.html", "batch_summary.csv"):
        assert (ray_output / name).is_file()


def test_results_parquet_has_one_row_per_input_and_the_maps_summaries(
    sketch_model_dir: Path, inputs: Path, ray_output: Path
) -> None:
    from src.data.preprocess import (
        image_file_to_model_input,
        strokes_to_model_input,
        to_model_input,
    )
    from src.service.explainer import Explainer

    rows = {row["path"]: row for row in parquet_rows(ray_output)}
    assert len(rows) == 11 and len(parquet_rows(ray_output)) == 11
    # Model inputs decoded here, independently of the Ray rows, and explained one at a time.
    images = {
        f"{c}/{n}.png": image_file_to_model_input(inputs / c / f"{n}.png")
        for c in STROKES_BY_CLASS
        for n in (0, 1)
    }
    for number, draw in enumerate(STROKES_BY_CLASS.values(), start=1):
        images[f"drawings.ndjson#{number}"] = strokes_to_model_input(draw())
    for number, bitmap in enumerate(np.load(inputs / "line.npy"), start=1):
        images[f"line.npy#{number}"] = to_model_input(bitmap.reshape(28, 28))
    explainer = Explainer.from_files(
        sketch_model_dir / "model.h5", sketch_model_dir / "label_mapping.json"
    )
    assert set(images) == set(rows)
    for source, image in images.items():
        result = explainer.explain(image[np.newaxis])
        heatmap = result.heatmaps[0].astype(np.float64)
        row = rows[source]
        assert row["predicted_class_index"] == int(np.argmax(result.probabilities[0]))
        assert row["map_mean"] == pytest.approx(heatmap.mean(), abs=1e-5)
        ink = image[..., 0] > INK_THRESHOLD
        assert row["ink_share"] == pytest.approx(heatmap[ink].sum() / heatmap.sum(), abs=1e-5)
        peak = heatmap[row["peak_row"], row["peak_col"]]
        assert peak == pytest.approx(heatmap.max(), abs=1e-5)
        assert row["top_confidences"][0] == pytest.approx(
            float(result.probabilities[0].max()), abs=1e-5
        )
        assert len(row["sha256"]) == 64
    with open(inputs / "circle" / "0.png", "rb") as stream:
        import hashlib

        assert rows["circle/0.png"]["sha256"] == hashlib.sha256(stream.read()).hexdigest()


def test_rerun_skips_done_inputs_and_a_partial_folder_does_only_the_rest(
    sketch_model_dir: Path, inputs: Path, ray_output: Path, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    shutil.copytree(ray_output, output)
    before = sorted((row["path"], row["confidence"]) for row in parquet_rows(output))
    assert batch(sketch_model_dir, inputs, output, *ONE_ACTOR) == ExitStatus.PARTIAL_FAILURE
    again = summary_of(output)
    assert again["ray"]["explained_now"] == 0
    assert again["ray"]["resumed"] == 11
    assert again["succeeded"] == 11
    assert sorted((row["path"], row["confidence"]) for row in parquet_rows(output)) == before
    # Lose one part: only its inputs are explained again.
    parts = sorted((output / "results.parquet").glob("part-*.parquet"))
    lost = pq.read_table(parts[0]).num_rows
    parts[0].unlink()
    assert batch(sketch_model_dir, inputs, output, *ONE_ACTOR) == ExitStatus.PARTIAL_FAILURE
    resumed = summary_of(output)
    assert resumed["ray"]["explained_now"] == lost
    assert resumed["ray"]["resumed"] == 11 - lost
    assert sorted((row["path"], row["confidence"]) for row in parquet_rows(output)) == before
    assert resumed["mean_maps"] == summary_of(ray_output)["mean_maps"]


def test_an_actor_killed_mid_run_is_replaced_and_every_input_is_explained_once(
    sketch_model_dir: Path, inputs: Path, crash_marker: Path, tmp_path: Path
) -> None:
    from src.batch.inputs import discover_sources
    from src.batch.options import BatchOptions
    from src.batch.ray_runner import RayOptions, run_ray_batch
    from src.cli.common import prepare_output_dir
    from src.service.explainer import Explainer
    from tests.ray_crash_actor import CrashOnceActor

    explainer = Explainer.from_files(
        sketch_model_dir / "model.h5", sketch_model_dir / "label_mapping.json"
    )
    discovery = discover_sources(inputs, explainer.labels)
    output = prepare_output_dir(tmp_path / "out")
    summary = run_ray_batch(
        explainer,
        discovery,
        inputs,
        output,
        BatchOptions(batch_size=4, progress=False),
        RayOptions(actors=1, actor_class=CrashOnceActor),
    )
    assert crash_marker.is_file()  # the actor did die on its batch
    assert int(crash_marker.read_text()) != os.getpid()
    sources = [row["path"] for row in parquet_rows(output)]
    assert sorted(sources) == sorted(set(sources))
    assert len(sources) == 11 and CRASH_SOURCE in sources
    assert summary["succeeded"] == 11 and summary["ray"]["explained_now"] == 11


def test_ray_stays_out_of_start_up_and_its_absence_is_one_line(
    sketch_model_dir: Path,
    inputs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A fresh process: this one has imported Ray already.
    code = (
        "import sys; from src.cli.gradcam_analysis import build_parser; build_parser(); "
        "import src.cli.commands.batch; print('ray' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "False"
    # None in sys.modules makes ``import ray`` raise ImportError, as when Ray is not installed.
    monkeypatch.setitem(sys.modules, "ray", None)
    capsys.readouterr()
    status = batch(sketch_model_dir, inputs, tmp_path / "out", "--ray")
    assert status == ExitStatus.ERROR
    assert capsys.readouterr().err.strip().splitlines() == [
        "gradcam_analysis: error: --ray needs Ray: install with pip install -e '.[ray]'"
    ]


def copy_run(inputs: Path, ray_output: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the inputs and of the module's finished Ray output (sources are relative)."""
    folder, output = tmp_path / "inputs", tmp_path / "out"
    shutil.copytree(inputs, folder)
    shutil.copytree(ray_output, output)
    return folder, output


def test_inputs_whose_content_or_label_changed_are_explained_again_and_counted_once(
    sketch_model_dir: Path, inputs: Path, ray_output: Path, tmp_path: Path
) -> None:
    import hashlib

    folder, output = copy_run(inputs, ray_output, tmp_path)
    changed = folder / "circle" / "0.png"
    shutil.copyfile(folder / "square" / "0.png", changed)  # new content, same name
    drawings = [json.loads(line) for line in (folder / "drawings.ndjson").read_text().splitlines()]
    assert drawings[0]["word"] == "circle"
    drawings[0]["word"] = "square"  # same strokes, another label
    (folder / "drawings.ndjson").write_text("".join(json.dumps(d) + "\n" for d in drawings))
    assert batch(sketch_model_dir, folder, output, *ONE_ACTOR) == ExitStatus.PARTIAL_FAILURE
    summary = summary_of(output)
    rows = parquet_rows(output)
    assert len(rows) == summary["succeeded"] == 11
    assert [row["sha256"] for row in rows if row["path"] == "circle/0.png"] == [
        hashlib.sha256(changed.read_bytes()).hexdigest()
    ]
    assert {row["path"]: row["label"] for row in rows}["drawings.ndjson#1"] == "square"
    # Both inputs were in the first block of 4 (circle/0.png, circle/1.png, drawings.ndjson#1
    # and #2, in sorted order): that part was explained again, the other 7 inputs were not.
    assert summary["ray"]["explained_now"] == 4 and summary["ray"]["resumed"] == 7
    first = next(i for i in summary["images"] if i["source"] == "drawings.ndjson#1")
    assert first["true_class"] == "square"
    square = next(image for image in summary["images"] if image["source"] == "square/0.png")
    circle = next(image for image in summary["images"] if image["source"] == "circle/0.png")
    assert circle["predicted_class"] == square["predicted_class"]
    assert circle["confidence"] == pytest.approx(square["confidence"], abs=1e-6)


def test_a_rerun_with_other_settings_is_refused_and_fresh_gives_only_new_rows(
    sketch_model_dir: Path,
    inputs: Path,
    ray_output: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, output = copy_run(inputs, ray_output, tmp_path)
    renamed = tmp_path / "model"
    renamed.mkdir()
    shutil.copyfile(sketch_model_dir / "model.h5", renamed / "model.h5")
    # The same model and convention (its card), only the label names differ.
    shutil.copyfile(sketch_model_dir / "model_card.json", renamed / "model_card.json")
    (renamed / "label_mapping.json").write_text(json.dumps(["ring", "bar", "box"]))
    capsys.readouterr()
    top_k_2 = ["--top_k", "2", "--model", str(sketch_model_dir / "model.h5"), "--labels",
               str(sketch_model_dir / "label_mapping.json"), "--output", str(output), "batch",
               "--images_dir", str(folder), "--batch_size", "4", "--ray"]  # fmt: skip
    assert main(top_k_2) == ExitStatus.USAGE
    assert batch(renamed, folder, output, *ONE_ACTOR) == ExitStatus.USAGE
    top_k_line, labels_line = capsys.readouterr().err.strip().splitlines()
    assert "other settings (top_k 3 -> 2)" in top_k_line and "--fresh" in top_k_line
    assert "other settings (labels_sha256 " in labels_line
    assert len(parquet_rows(output)) == 11  # nothing touched
    assert batch(renamed, folder, output, *ONE_ACTOR, "--fresh") == ExitStatus.PARTIAL_FAILURE
    summary = summary_of(output)
    assert summary["ray"]["explained_now"] == 11 and summary["ray"]["resumed"] == 0
    rows = parquet_rows(output)
    assert len(rows) == 11
    assert {row["predicted_class"] for row in rows} <= {"ring", "bar", "box"}
    assert {image["predicted_class"] for image in summary["images"]} <= {"ring", "bar", "box"}
    assert (output / "report.html").is_file()


def test_damaged_parts_are_set_aside_and_their_inputs_explained_again(
    sketch_model_dir: Path,
    inputs: Path,
    ray_output: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder, output = copy_run(inputs, ray_output, tmp_path)
    results = output / "results.parquet"
    parts = sorted(results.glob("part-*.parquet"))
    assert [pq.read_table(part).num_rows for part in parts] and len(parts) == 3
    parts[0].write_bytes(parts[0].read_bytes()[:100])  # truncated
    parts[1].write_bytes(b"")  # zero bytes
    (output / "mean_map_sums" / f"{parts[2].stem}.npz").unlink()  # a part without its sums
    (results / "notes.txt").write_text("not a part")  # a foreign file
    capsys.readouterr()
    assert batch(sketch_model_dir, folder, output, *ONE_ACTOR) == ExitStatus.PARTIAL_FAILURE
    summary = summary_of(output)
    assert summary["ray"]["explained_now"] == 11
    assert sorted(summary["ray"]["set_aside"]) == sorted(
        f"results.parquet/{name}" for name in [*(part.name for part in parts), "notes.txt"]
    )
    assert "Set aside damaged parts (inputs explained again): " in capsys.readouterr().out
    sources = [row["path"] for row in parquet_rows(output)]
    assert len(sources) == len(set(sources)) == summary["succeeded"] == 11
    assert len(list((output / "damaged").iterdir())) == 6  # 4 files and the 2 sums found
    assert summary["mean_maps"] == summary_of(ray_output)["mean_maps"]


def test_a_pool_the_cluster_cannot_place_stops_within_the_wait(
    sketch_model_dir: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    code = batch(sketch_model_dir, inputs, tmp_path / "out", "--ray", "--ray_cpus_per_actor",
                 "64", "--ray_wait", "3")  # fmt: skip
    assert code == ExitStatus.USAGE
    assert capsys.readouterr().err.strip().splitlines() == [
        "gradcam_analysis: error: the Ray cluster cannot place 1 actor(s) of 64 CPU(s) and 0 "
        "GPU(s) within 3 s: it has 2 CPUs and 0 GPUs; lower --ray_actors, --ray_cpus_per_actor "
        "or --ray_gpus_per_actor, or add nodes"
    ]


def test_an_unwritable_results_folder_is_exit_10_naming_it(
    sketch_model_dir: Path, inputs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    # The tests run as root, whom permissions do not stop: a file where the folder goes.
    (output / "results.parquet").write_text("in the way")
    capsys.readouterr()
    assert batch(sketch_model_dir, inputs, output, "--ray") == ExitStatus.OUTPUT_ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{output / 'results.parquet'}:" in err[0]


def test_actors_feed_the_drivers_input_convention(
    sketch_model_dir: Path, inputs: Path, local_output: Path, tmp_path: Path
) -> None:
    """A model without a card, its convention given by the options: each actor must feed the
    driver's InputSpec (on its own it would find no card and fall back to dark ink), so the
    answers and overlays are the local run's on the carded model (light ink, 0-1)."""
    bare = tmp_path / "bare"
    bare.mkdir()
    for name in ("model.h5", "label_mapping.json"):
        shutil.copy(sketch_model_dir / name, bare / name)
    output = tmp_path / "out"
    code = main(
        [
            "--model", str(bare / "model.h5"), "--labels", str(bare / "label_mapping.json"),
            "--ink", "light", "--value_range", "0-1", "--output", str(output),
            "batch", "--images_dir", str(inputs), "--batch_size", "4", *ONE_ACTOR,
        ]
    )  # fmt: skip
    assert code == ExitStatus.PARTIAL_FAILURE
    local, distributed = summary_of(local_output), summary_of(output)
    assert [image["predicted_class"] for image in distributed["images"]] == [
        image["predicted_class"] for image in local["images"]
    ]
    for image in local["images"]:
        difference = pixels(output / image["overlay"]) - pixels(local_output / image["overlay"])
        assert np.abs(difference).max() <= 1, image["source"]


def test_ray_batch_counts_a_blank_input_apart(
    sketch_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mixed = make_mixed_folder(sketch_model_dir, tmp_path / "mixed")
    output = tmp_path / "out"
    assert run_batch_cli(sketch_model_dir, mixed, output, *ONE_ACTOR) == 0
    check_batch_counts_the_blank_apart(output, capsys.readouterr().out)
