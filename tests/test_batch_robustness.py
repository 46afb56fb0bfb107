"""The CLI batch under bad inputs and a failing disk, and path safety of every name it writes.

Expectations: what can be done is done; every input that could not be explained is listed in
batch_summary.json with its reason; the exit code is PARTIAL_FAILURE or OUTPUT_ERROR, never 0;
no half-written file (``*.partial``, truncated PNG/JSON) is left; nothing is written outside
the output folder, whatever the class names or input names. Tests run as root, so chmod cannot
make a file unreadable: unreadable inputs are simulated by corrupt, empty and vanishing files,
a directory named like an image, and a dangling symlink; a full disk by an ``os.replace`` that
raises ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from src.cli.gradcam_analysis import main
from src.utils.exit_status import ExitStatus
from tests.conftest import TINY_CLASSES


def run_batch(model: Path, labels: Path, images: Path, output: Path) -> int:
    return main(
        [
            "--model", str(model), "--labels", str(labels), "--output", str(output),
            "batch", "--images_dir", str(images), "--workers", "2", "--batch_size", "2",
        ]
    )  # fmt: skip


def load_summary(output: Path) -> dict:
    return json.loads((output / "batch_summary.json").read_text())


def failures_by_source(summary: dict) -> dict[str, str]:
    return {failure["source"]: failure["reason"] for failure in summary["failures"]}


def assert_no_partial_files(root: Path) -> None:
    """No temporary files, and every PNG and JSON under ``root`` decodes completely."""
    for path in root.rglob("*"):
        assert not path.name.endswith(".partial"), path
        assert not path.name.startswith("."), path
        if path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text())


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file() or path.is_symlink()}


@pytest.fixture
def good_images(tmp_path: Path, sketch_model_dir: Path) -> Path:
    """Four readable sketches: two class folders, plus names with spaces and unicode."""
    images = tmp_path / "images"
    for name in ("circle", "square"):
        (images / name).mkdir(parents=True)
        shutil.copy(sketch_model_dir / "sketches" / name / "0.png", images / name / "0.png")
    shutil.copy(sketch_model_dir / "sketches" / "line" / "0.png", images / "a line é 漢.png")
    shutil.copy(sketch_model_dir / "sketches" / "line" / "1.png", images / "..hidden-ish .png")
    return images


def test_unreadable_inputs_are_listed_and_the_rest_finishes(
    good_images: Path, sketch_model_path: Path, sketch_labels_path: Path, tmp_path: Path
) -> None:
    (good_images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(200))
    (good_images / "empty.png").write_bytes(b"")
    (good_images / "notes.txt").write_text("not a sketch")
    (good_images / "folder.png").mkdir()  # a directory named like an image
    good = (good_images / "circle" / "0.png").read_bytes()
    (good_images / "truncated.png").write_bytes(good[: len(good) // 2])
    output = tmp_path / "out"

    status = run_batch(sketch_model_path, sketch_labels_path, good_images, output)

    assert status == ExitStatus.PARTIAL_FAILURE
    summary = load_summary(output)
    failed = failures_by_source(summary)
    assert set(failed) == {"corrupt.png", "empty.png", "truncated.png"}
    assert "not a readable image" in failed["corrupt.png"]
    assert failed["empty.png"] and failed["truncated.png"]
    assert "notes.txt" in summary["ignored"]
    explained = {image["source"] for image in summary["images"]}
    # "..hidden-ish .png" starts with a dot, so batch skips it as a hidden file.
    assert explained == {"circle/0.png", "square/0.png", "a line é 漢.png"}
    assert summary["total"] == 6 and summary["succeeded"] == 3 and summary["failed"] == 3
    for image in summary["images"]:
        overlay = (output / image["overlay"]).resolve()
        assert overlay.parent == (output / "overlays").resolve() and overlay.is_file()
        assert overlay.name.isascii() and " " not in overlay.name
    csv_rows = (output / "batch_summary.csv").read_text().splitlines()
    assert len(csv_rows) == 1 + 6
    assert_no_partial_files(output)


def test_dangling_symlink_is_reported(
    good_images: Path, sketch_model_path: Path, sketch_labels_path: Path, tmp_path: Path
) -> None:
    (good_images / "gone.png").symlink_to(tmp_path / "nowhere.png")
    output = tmp_path / "out"
    status = run_batch(sketch_model_path, sketch_labels_path, good_images, output)
    assert status == ExitStatus.PARTIAL_FAILURE
    assert "gone.png" in failures_by_source(load_summary(output))


@pytest.mark.parametrize("when", ["after listing", "while decoding"])
def test_file_vanishing_mid_run(
    good_images: Path,
    sketch_model_path: Path,
    sketch_labels_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    when: str,
) -> None:
    import src.cli.commands.batch as batch_command
    import src.data.preprocess as preprocess

    victim = good_images / "square" / "0.png"
    if when == "after listing":
        discover = batch_command.discover_sources

        def discover_then_delete(*args, **kwargs):  # type: ignore[no-untyped-def]
            found = discover(*args, **kwargs)
            victim.unlink()
            return found

        monkeypatch.setattr(batch_command, "discover_sources", discover_then_delete)
    else:
        load = preprocess.load_image

        def delete_then_load(source):  # type: ignore[no-untyped-def]
            if Path(source) == victim and victim.exists():
                victim.unlink()
            return load(source)

        monkeypatch.setattr(preprocess, "load_image", delete_then_load)
    output = tmp_path / "out"

    status = run_batch(sketch_model_path, sketch_labels_path, good_images, output)

    assert status == ExitStatus.PARTIAL_FAILURE
    summary = load_summary(output)
    assert "not found" in failures_by_source(summary)["square/0.png"]
    assert summary["succeeded"] == 2
    assert_no_partial_files(output)


def _replace_failing_for(monkeypatch: pytest.MonkeyPatch, predicate) -> list[str]:  # type: ignore[no-untyped-def]
    """Make os.replace raise ENOSPC for targets matching ``predicate``; returns those names."""
    real_replace = os.replace
    refused: list[str] = []

    def replace(source, target, *args, **kwargs):  # type: ignore[no-untyped-def]
        if predicate(Path(target)):
            refused.append(Path(target).name)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
        return real_replace(source, target, *args, **kwargs)

    monkeypatch.setattr(os, "replace", replace)
    return refused


def test_full_disk_for_some_overlays_is_reported_per_input(
    good_images: Path,
    sketch_model_path: Path,
    sketch_labels_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    output = tmp_path / "out"
    refused = _replace_failing_for(
        monkeypatch, lambda target: target.parent.name == "overlays" and "circle" in target.name
    )

    status = run_batch(sketch_model_path, sketch_labels_path, good_images, output)

    assert refused
    assert_no_partial_files(output)
    assert not any((output / "overlays").glob("*circle*"))
    # The input whose overlay could not be written is listed as failed: exit 9 (README).
    assert status == ExitStatus.PARTIAL_FAILURE
    summary = load_summary(output)
    assert "space" in failures_by_source(summary)["circle/0.png"].lower()
    assert summary["succeeded"] == 2


def test_full_disk_for_an_overlay_leaves_no_partial_file(
    good_images: Path,
    sketch_model_path: Path,
    sketch_labels_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whatever the batch then reports, the failed write leaves no temporary or truncated file."""
    output = tmp_path / "out"
    _replace_failing_for(
        monkeypatch, lambda target: target.parent.name == "overlays" and "circle" in target.name
    )
    status = run_batch(sketch_model_path, sketch_labels_path, good_images, output)
    # The input whose overlay could not be written is listed as failed: exit 9 (README).
    assert status == ExitStatus.PARTIAL_FAILURE
    assert_no_partial_files(output)
    assert not any((output / "overlays").glob("*circle*"))


def test_full_disk_for_the_summary_is_one_line_and_no_truncated_summary(
    good_images: Path,
    sketch_model_path: Path,
    sketch_labels_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    output = tmp_path / "out"
    _replace_failing_for(monkeypatch, lambda target: target.name == "batch_summary.json")

    status = run_batch(sketch_model_path, sketch_labels_path, good_images, output)

    assert status == ExitStatus.OUTPUT_ERROR
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and "No space left on device" in errors[0], errors
    assert not (output / "batch_summary.json").exists()
    assert_no_partial_files(output)


# --- path safety -----------------------------------------------------------------------------

HOSTILE_CLASS_NAMES = ("../../evil", "a/b", "..")


@pytest.fixture
def hostile_labels(tmp_path: Path) -> Path:
    """The fixture model's three outputs renamed with path-like class names."""
    path = tmp_path / "hostile_labels.json"
    path.write_text(json.dumps(dict(enumerate(HOSTILE_CLASS_NAMES))))
    return path


def test_hostile_class_names_never_escape_the_output_folder(
    sketch_model_path: Path, sketch_model_dir: Path, hostile_labels: Path, tmp_path: Path
) -> None:
    images = tmp_path / "in" / "deep"
    images.mkdir(parents=True)
    for name in TINY_CLASSES:
        shutil.copy(sketch_model_dir / "sketches" / name / "0.png", images / f"{name}.png")
    # Sub-folders named like the hostile classes, so true classes and confused pairs use them too.
    (images / "..evil").mkdir()
    shutil.copy(images / "line.png", images / "..evil" / "x.png")
    output = tmp_path / "work" / "out"
    before = files_under(tmp_path)

    status = main(
        [
            "--model", str(sketch_model_path), "--labels", str(hostile_labels),
            "--output", str(output), "--top_k", "3",
            "batch", "--images_dir", str(images),
        ]
    )  # fmt: skip
    assert status == ExitStatus.SUCCESS
    for class_name in HOSTILE_CLASS_NAMES:
        assert main(
            [
                "--model", str(sketch_model_path), "--labels", str(hostile_labels),
                "--output", str(output), "--top_k", "3",
                "class", "--image", str(images / "circle.png"), "--class_name", class_name,
            ]
        ) == ExitStatus.SUCCESS  # fmt: skip
    assert main(
        [
            "--model", str(sketch_model_path), "--labels", str(hostile_labels),
            "--output", str(output), "--top_k", "3",
            "single", "--image", str(images / "square.png"),
        ]
    ) == ExitStatus.SUCCESS  # fmt: skip

    created = files_under(tmp_path) - before
    root = output.resolve()
    assert created, "nothing was written"
    for path in created:
        assert path.resolve().is_relative_to(root), f"{path} escaped {root}"
    names = [path.name for path in created]
    assert all(".." not in name and "/" not in name for name in names), names
    assert len([name for name in names if name.startswith("class_analysis_")]) == 3
    assert_no_partial_files(output)
    assert not (tmp_path / "evil").exists() and not (tmp_path / "work" / "evil").exists()


@pytest.mark.parametrize(
    "source",
    ["../../etc/passwd.png", "a b/ü 漢字.png", "....png", "x/../../y.png", "/abs/path.png", "#1"],
)
def test_overlay_names_stay_inside(tmp_path: Path, source: str) -> None:
    from src.batch.overlays import OverlayNamer

    namer = OverlayNamer(tmp_path / "overlays")
    first, second = namer.path_for(source), namer.path_for(source)
    for path in (first, second):
        assert path.resolve().parent == (tmp_path / "overlays").resolve()
        assert path.name.endswith(".png") and not path.name.startswith(".")
    assert first != second  # a clash gets a counter instead of overwriting
