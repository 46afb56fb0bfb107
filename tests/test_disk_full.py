"""A full disk: one line naming the file and the fix, exit 10, and in a batch the rest is kept.

The full disk is real: writes that should land on one chosen file go to ``/dev/full``, where the
kernel answers every write with ENOSPC, as a full file system does.
"""

from __future__ import annotations

import builtins
import errno
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from src.cli.gradcam_analysis import main
from src.utils.exit_status import ExitStatus
from tests.test_cli import engine_args

pytestmark = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")


def fill_disk_for(monkeypatch: pytest.MonkeyPatch, name: str) -> list[str]:
    """Send every write of a file called ``name`` (or its temporary twin) to /dev/full.

    Returns the list the paths that hit the full disk are appended to.
    """
    from src.utils import atomic_write

    hit: list[str] = []
    real_open = builtins.open

    def full_open(file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        path = Path(str(file))
        if "w" in mode and (path.name == name or path.name.startswith(f".{name}.")):
            hit.append(str(path))
            return real_open("/dev/full", mode, *args, **kwargs)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(atomic_write, "open", full_open, raising=False)
    return hit


def test_atomic_write_on_a_full_disk_names_the_file_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.utils.atomic_write import write_json_atomic
    from src.utils.exit_status import one_line

    hit = fill_disk_for(monkeypatch, "summary.json")
    target = tmp_path / "summary.json"
    with pytest.raises(OSError) as caught:
        write_json_atomic(target, {"a": 1})
    assert hit, "the write did not go to the full disk"
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(target)
    assert one_line(caught.value) == (
        f"file system error: {target}: No space left on device "
        "(free some disk space or pass another --output folder)"
    )
    assert list(tmp_path.iterdir()) == []


def test_figure_on_a_full_disk_names_the_figure_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.visualization.figures import save_atomically

    class TinyFigure:
        """A figure whose savefig writes a few bytes, as matplotlib writes a PNG."""

        def savefig(self, target: Any, *args: Any, **kwargs: Any) -> None:
            target.write(b"\x89PNG")

    hit = fill_disk_for(monkeypatch, "audit.png")
    with pytest.raises(OSError) as caught:
        save_atomically(TinyFigure(), tmp_path / "audit.png")
    assert hit, "the figure was not written through the atomic writer"
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.filename == str(tmp_path / "audit.png")
    assert list(tmp_path.iterdir()) == []


def test_single_with_a_full_disk_is_one_line_naming_the_summary_and_exit_10(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fill_disk_for(monkeypatch, "analysis_summary.json")
    image = next((sketch_model_dir / "sketches").rglob("*.png"))
    output = tmp_path / "out"
    arguments = engine_args(sketch_model_path, sketch_labels_path, output)
    status = main([*arguments, "single", "--image", str(image)])
    assert status == ExitStatus.OUTPUT_ERROR
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in lines[0]
    assert f"{output / 'analysis_summary.json'}: No space left on device" in lines[0]
    assert "free some disk space or pass another --output folder" in lines[0]


def test_batch_with_one_overlay_on_a_full_disk_finishes_the_rest_and_lists_it(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    sketch_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tmp_path / "sketches"
    shutil.copytree(sketch_model_dir / "sketches", folder)
    images = sorted(path.relative_to(folder).as_posix() for path in folder.rglob("*.png"))
    victim = images[0]
    # Overlays are named after their input's path, "/" becoming "__" (circle/0.png: circle__0.png).
    overlay_name = victim.replace("/", "__")
    hit = fill_disk_for(monkeypatch, overlay_name)
    output = tmp_path / "out"
    arguments = engine_args(sketch_model_path, sketch_labels_path, output)
    status = main([*arguments, "batch", "--images_dir", str(folder)])
    assert hit, "no overlay write reached the full disk"
    assert status == ExitStatus.PARTIAL_FAILURE
    summary = json.loads((output / "batch_summary.json").read_text())
    assert summary["failed"] == 1 and summary["succeeded"] == len(images) - 1
    failure = summary["failures"][0]
    assert failure["source"] == victim
    assert failure["reason"] == (
        f"overlay {output / 'overlays' / overlay_name} not written: No space left on device"
    )
    explained = {record["source"] for record in summary["images"]}
    assert explained == set(images) - {victim}
    for record in summary["images"]:
        assert (output / record["overlay"]).is_file()
