"""scripts/make_audit_data.py never writes outside its output folder, nor over its input."""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest

from src.audit.run import load_audit_data
from src.config import TrainConfig
from src.data.quickdraw import Drawing, read_ndjson, write_ndjson
from src.training.dataset import held_out_strokes

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "make_audit_data.py"
DRAWINGS_PER_FILE = 60


def _script() -> ModuleType:
    """The script as a module, so its main() runs in-process."""
    spec = importlib.util.spec_from_file_location("make_audit_data_under_test", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _held_out_count(workspace: Path, name: str, per_class: int) -> int:
    """How many drawings of ``name`` the training split holds out, capped at ``per_class``."""
    strokes = workspace / "data" / "strokes"
    config = TrainConfig(strokes_dir=strokes, bitmap_dir=workspace / "data" / "bitmaps")
    drawings = list(read_ndjson(strokes / f"{name}.ndjson"))
    return min(per_class, len(held_out_strokes(config, name, drawings)))


def _tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (relative path) with the SHA-256 of its bytes."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture()
def workspace(tmp_path: Path) -> Path:
    """strokes/{line,box}.ndjson (60 drawings each), an empty bitmaps/ and labels.json."""
    strokes = tmp_path / "data" / "strokes"
    for name in ("line", "box"):
        drawings = [
            Drawing(name, [[[0, 10 + n, 20], [0, 5, 30]]], key_id=str(n))
            for n in range(DRAWINGS_PER_FILE)
        ]
        write_ndjson(drawings, strokes / f"{name}.ndjson")
    (tmp_path / "data" / "bitmaps").mkdir()
    (tmp_path / "labels.json").write_text(json.dumps({"0": "line", "1": "box"}))
    return tmp_path


def _run(workspace: Path, *extra: str, output: Path | None = None, labels: str = "") -> int:
    """main() with the workspace's folders and ``extra`` arguments."""
    return _script().main(
        [
            "--strokes_dir",
            str(workspace / "data" / "strokes"),
            "--bitmap_dir",
            str(workspace / "data" / "bitmaps"),
            "--labels",
            labels or str(workspace / "labels.json"),
            "--output",
            str(output if output is not None else workspace / "out"),
            *extra,
        ]
    )


@pytest.mark.parametrize(
    "output", ["data/strokes", "data/strokes/audit", "data", "data/bitmaps", "data/./strokes/.."]
)
def test_output_that_is_holds_or_sits_in_an_input_is_refused(
    workspace: Path, output: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _tree_digest(workspace)
    status = _run(workspace, "--per_class", "2", output=workspace / output)
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--output" in err[0]
    assert _tree_digest(workspace) == before


def test_output_through_a_symlink_into_the_input_is_refused(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link = workspace / "link"
    link.symlink_to(workspace / "data" / "strokes")
    before = _tree_digest(workspace / "data")
    assert _run(workspace, "--per_class", "2", output=link) == 2
    assert _tree_digest(workspace / "data") == before


def test_hostile_class_names_stay_inside_the_output(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A drawing file just outside the strokes folder, reachable as "../escape".
    write_ndjson([Drawing("escape", [[[0, 1], [0, 1]]])], workspace / "data" / "escape.ndjson")
    absolute = workspace / "elsewhere" / "abs"
    absolute.parent.mkdir()
    write_ndjson([Drawing("abs", [[[0, 1], [0, 1]]])], absolute.with_suffix(".ndjson"))
    labels = workspace / "hostile.json"
    labels.write_text(json.dumps(["line", "../escape", str(absolute), "../../escape"]))
    before = _tree_digest(workspace)
    status = _run(workspace, "--per_class", "3", labels=str(labels))
    after = _tree_digest(workspace)
    new_files = sorted(set(after) - set(before))
    assert all(name.startswith("out/") for name in new_files), new_files
    assert {name: after[name] for name in before} == before
    # The plain class is written; each hostile name is read from nowhere and named on stderr.
    expected = _held_out_count(workspace, "line", 3)
    assert expected >= 1
    assert (workspace / "out" / "line.ndjson").read_text().count("\n") == expected
    assert len(capsys.readouterr().err.strip().splitlines()) == 3
    assert status == 9


def test_class_file_names_follow_the_safe_name_rule(workspace: Path) -> None:
    write_ndjson(
        [Drawing("alarm clock", [[[0, n], [0, 1]]], key_id=str(n)) for n in range(60)],
        workspace / "data" / "strokes" / "alarm clock.ndjson",
    )
    labels = workspace / "spaced.json"
    labels.write_text(json.dumps(["alarm clock"]))
    assert _run(workspace, "--per_class", "5", labels=str(labels)) == 0
    assert [path.name for path in (workspace / "out").iterdir()] == ["alarm_clock.ndjson"]
    # `audit` reads the safe spelling back as the class it names.
    read_back = load_audit_data(workspace / "out", ("line", "alarm clock"), 5)
    assert read_back.counts == {"alarm clock": _held_out_count(workspace, "alarm clock", 5)}


@pytest.mark.parametrize("count", ["0", "-1", "-100"])
def test_per_class_below_one_exits_2(
    workspace: Path, count: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        _run(workspace, "--per_class", count)
    assert stopped.value.code == 2
    assert not (workspace / "out").exists()


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_strokes_path_that_is_not_a_folder_exits_8(
    workspace: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    target = workspace / "nowhere"
    if kind == "file":
        target.write_text("not a folder")
    status = _script().main(
        [
            "--strokes_dir",
            str(target),
            "--bitmap_dir",
            str(workspace / "data" / "bitmaps"),
            "--labels",
            str(workspace / "labels.json"),
            "--output",
            str(workspace / "out"),
        ]
    )
    assert status == 8
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(target) in err[0]
    assert not (workspace / "out").exists()


def test_a_bad_file_is_one_line_and_the_others_are_written(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "data" / "strokes" / "line.ndjson").write_bytes(b'{"word": "\xff\xfe"}\n')
    status = _run(workspace, "--per_class", "4")
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if "line.ndjson" in line] == err and len(err) == 1
    expected = _held_out_count(workspace, "box", 4)
    assert expected >= 1
    assert (workspace / "out" / "box.ndjson").read_text().count("\n") == expected
    assert not (workspace / "out" / "line.ndjson").exists()
    assert status == 9


def test_unwritable_output_exits_10(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A folder under a regular file cannot be made, whoever runs the test (root included).
    blocked = workspace / "labels.json" / "audit"
    assert _run(workspace, "--per_class", "2", output=blocked) == 10
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(workspace / "labels.json") in err[0]
