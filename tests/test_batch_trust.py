"""Batch runs that can be trusted, without Ray: the settings that key a resumed folder, one run
per output folder, symlink loops and globs, checked Ray options, and the watchdog that ends a
local Ray's processes with a killed driver."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from src.batch.file_walk import glob_files, walk_files
from src.batch.options import BatchOptions
from src.batch.run_folder import check_run_settings, claim_output_folder
from src.batch.run_settings import run_settings, settings_key
from src.cli.gradcam_analysis import main
from src.config import PROJECT_ROOT
from src.errors import UsageError
from src.utils.exit_status import ExitStatus


def fake_engine(model: Path, **changes: object) -> SimpleNamespace:
    """The attributes run_settings reads, with hand-chosen values."""
    fields = {
        "model_path": model,
        "class_names": ("apple", "cake"),
        "gradcam": SimpleNamespace(method="gradcam", layer_name="last_conv"),
        "input_size": 64,
        "open_set_rule": None,
        **changes,
    }
    return SimpleNamespace(**fields)


def test_run_settings_hold_every_setting_that_decides_a_row(tmp_path: Path) -> None:
    model = tmp_path / "model.h5"
    model.write_bytes(b"model one")
    settings = run_settings(fake_engine(model), BatchOptions(top_k=3))
    assert settings["model_sha256"] == hashlib.sha256(b"model one").hexdigest()
    assert settings["labels_sha256"] == hashlib.sha256(b'["apple", "cake"]').hexdigest()
    assert (settings["method"], settings["layer"], settings["top_k"]) == ("gradcam", "last_conv", 3)
    assert settings["input"] == {"size": 64}
    spec = SimpleNamespace(height=28, width=32, channels=1, ink="dark", value_range=(0.0, 1.0))
    with_spec = run_settings(fake_engine(model, input_spec=spec), BatchOptions())
    assert with_spec["input"] == {
        "height": 28, "width": 32, "channels": 1, "ink": "dark", "value_range": [0.0, 1.0]
    }  # fmt: skip
    other_model = tmp_path / "other.h5"
    other_model.write_bytes(b"model two")
    changed = [
        run_settings(fake_engine(other_model), BatchOptions()),
        run_settings(fake_engine(model, class_names=("apple", "fish")), BatchOptions()),
        run_settings(
            fake_engine(model, gradcam=SimpleNamespace(method="scorecam", layer_name="last_conv")),
            BatchOptions(),
        ),
        run_settings(
            fake_engine(model, gradcam=SimpleNamespace(method="gradcam", layer_name="conv_a")),
            BatchOptions(),
        ),
        run_settings(fake_engine(model), BatchOptions(top_k=5)),
        run_settings(fake_engine(model, input_size=28), BatchOptions()),
        with_spec,
    ]
    keys = {settings_key(settings)} | {settings_key(other) for other in changed}
    assert len(keys) == 1 + len(changed)


def test_a_folder_made_with_other_settings_is_refused_or_started_afresh(tmp_path: Path) -> None:
    old = {"method": "gradcam", "top_k": 3}
    new = {"method": "gradcam", "top_k": 5}
    check_run_settings(tmp_path, old, fresh=False, record=True)
    (tmp_path / "results.parquet").mkdir()
    (tmp_path / "results.parquet" / "part-1.parquet").write_bytes(b"old rows")
    (tmp_path / "overlays").mkdir()
    with pytest.raises(UsageError, match=r"other settings \(top_k 3 -> 5\).*--fresh"):
        check_run_settings(tmp_path, new, fresh=False, record=True)
    assert (tmp_path / "results.parquet" / "part-1.parquet").is_file()
    check_run_settings(tmp_path, new, fresh=True, record=True)
    assert not (tmp_path / "results.parquet").exists() and not (tmp_path / "overlays").exists()
    assert json.loads((tmp_path / "run_settings.json").read_text()) == new
    # Results without recorded settings are of unknown settings: refused too.
    (tmp_path / "run_settings.json").unlink()
    (tmp_path / "results.parquet").mkdir()
    (tmp_path / "results.parquet" / "part-2.parquet").write_bytes(b"rows")
    with pytest.raises(UsageError, match="settings unknown"):
        check_run_settings(tmp_path, new, fresh=False, record=False)


def batch(model_dir: Path, images: Path | str, output: Path, *extra: str) -> int:
    return main(
        [
            "--model", str(model_dir / "model.h5"), "--labels", str(model_dir / "label_mapping.json"),
            "--output", str(output), "batch", "--images_dir", str(images), *extra,
        ]
    )  # fmt: skip


def test_a_second_run_on_a_held_folder_is_refused_and_a_dead_holders_lock_is_taken(
    sketch_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "out"
    output.mkdir()
    with claim_output_folder(output):
        code = batch(sketch_model_dir, sketch_model_dir / "sketches", output)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == ExitStatus.USAGE
    assert err == [
        f"gradcam_analysis: error: output folder {output} is in use by another batch run "
        f"(PID {os.getpid()}); wait for it to end or pass another --output"
    ]
    assert not (output / "batch_summary.json").exists()
    # A killed run leaves its PID in the file but no lock: the next run goes ahead.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], text=True,
                          capture_output=True, check=True).stdout.strip()  # fmt: skip
    (output / "batch.lock").write_text(dead)
    assert batch(sketch_model_dir, sketch_model_dir / "sketches", output) == ExitStatus.SUCCESS
    assert json.loads((output / "batch_summary.json").read_text())["succeeded"] == 6


def bounded(action, seconds: float = 60.0):  # type: ignore[no-untyped-def]
    """Run ``action`` in a thread; fail (instead of hanging the suite) if it never ends."""
    outcome: list[object] = []
    worker = threading.Thread(target=lambda: outcome.append(action()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert outcome, f"still running after {seconds} s"
    return outcome[0]


@pytest.fixture
def looped_folder(tmp_path: Path) -> Path:
    """4 real files; links back up (loops) and a second way into a folder."""
    root = tmp_path / "in"
    for name in ("a/x.png", "a/deep/y.png", "b/z.png", "w.png"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"png")
    (root / "a" / "deep" / "up").symlink_to("..")
    (root / "b" / "top").symlink_to("../..")
    (root / "again").symlink_to("a")
    (root / "b" / "also.png").symlink_to("../w.png")
    return root


def test_symlink_loops_are_walked_once_and_listed(looped_folder: Path) -> None:
    walk = bounded(lambda: walk_files(looped_folder))
    assert [path.relative_to(looped_folder).as_posix() for path in walk.files] == [
        "a/deep/y.png", "a/x.png", "b/z.png", "w.png"
    ]  # fmt: skip
    assert sorted(walk.skipped_links) == ["a/deep/up", "again", "b/top"]
    matched = bounded(lambda: glob_files(f"{looped_folder}/**/*.png"))
    assert sorted(path.relative_to(looped_folder).as_posix() for path in matched.files) == [
        "a/deep/y.png", "a/x.png", "b/z.png", "w.png"
    ]  # fmt: skip
    shallow = glob_files(f"{looped_folder}/*/*.png")
    assert sorted(path.relative_to(looped_folder).as_posix() for path in shallow.files) == [
        "a/x.png", "b/z.png"
    ]  # fmt: skip


def test_a_glob_over_its_own_output_folder_leaves_the_overlays_out(
    sketch_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    root = tmp_path / "work"
    shutil.copytree(sketch_model_dir / "sketches", root)
    (root / "circle" / "loop").symlink_to("..")
    output = root / "out"
    pattern = f"{root}/**/*.png"
    assert batch(sketch_model_dir, pattern, output) == ExitStatus.SUCCESS
    assert "Skipped symlinked folders (loops or walked already): circle/loop" in (
        capsys.readouterr().out
    )
    assert batch(sketch_model_dir, pattern, output) == ExitStatus.SUCCESS
    summary = json.loads((output / "batch_summary.json").read_text())
    assert summary["succeeded"] == 6
    assert summary["skipped_links"] == ["circle/loop"]
    assert not any("out/" in image["source"] for image in summary["images"])


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--ray_gpus_per_actor", "-1", "must be a finite number >= 0"),
        ("--ray_gpus_per_actor", "nan", "must be a finite number >= 0"),
        ("--ray_cpus_per_actor", "-2", "must be at least 1"),
        ("--ray_wait", "0", "must be greater than 0"),
        ("--ray", "not an address", "not a Ray address"),
        ("--ray", "host:99999", "not a Ray address"),
    ],
)
def test_bad_ray_options_exit_2_before_any_work(
    option: str, value: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["--model", "m.h5", "--output", str(tmp_path), "batch", "--images_dir",
                 str(tmp_path), "--ray", option, value])  # fmt: skip
    assert code == ExitStatus.USAGE
    assert message in capsys.readouterr().err


def test_a_ray_address_where_nothing_listens_is_one_line(
    sketch_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    code = bounded(
        lambda: batch(
            sketch_model_dir, sketch_model_dir / "sketches", tmp_path, "--ray", "127.0.0.1:1"
        )  # fmt: skip
    )
    assert code == ExitStatus.ERROR
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "gradcam_analysis: error: no Ray cluster answers at 127.0.0.1:1 (Connection refused); "
        "start one with `ray start --head` or check the address"
    ]


DRIVER = """
import subprocess, sys, time
from src.batch.ray_watchdog import start_watchdog
sleeper = "import time; time.sleep(600)"
parent = (
    "import subprocess, sys, time; "
    f"child = subprocess.Popen([sys.executable, '-c', {sleeper!r}]); "
    "print(child.pid, flush=True); time.sleep(600)"
)
child = subprocess.Popen([sys.executable, "-c", parent], stdout=subprocess.PIPE, text=True)
grandchild = child.stdout.readline().strip()
watchdog = start_watchdog()
time.sleep(2)
print(child.pid, grandchild, flush=True)
time.sleep(600)
"""


def running(pid: int) -> bool:
    """Whether /proc shows the process alive (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] != "Z"


def test_the_watchdog_ends_the_drivers_descendants_after_a_sigkill() -> None:
    driver = subprocess.Popen(
        [sys.executable, "-c", DRIVER], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True
    )
    pids = [int(pid) for pid in driver.stdout.readline().split()]  # type: ignore[union-attr]
    assert len(pids) == 2 and all(running(pid) for pid in pids)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    deadline = time.monotonic() + 20
    while any(running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(running(pid) for pid in pids)
