"""``batch --ray`` killed with SIGKILL at random points and resumed: every input exactly once,
every row made with the final settings, and no Ray process left behind.

Usage (from the repository root): ``python -m bench.ray_resume_soak [--count 2000] [--rounds 10]``.
Generates ``--count`` 28x28 bitmaps (random strokes, three class-named .npy files) and a small
untrained project CNN, then runs the CLI (``batch --ray``) ``--rounds`` times into one output
folder, each killed with SIGKILL once results.parquet holds a random number of parts inside what
the round has left to explain (so the kill lands while actors are explaining). Half-way the settings change (--top_k 3
-> 2, with --fresh), so the folder holds rows of the old settings until the change. A last run
finishes. Prints per round the kill time, the parts and rows found and the processes the driver left after
20 s; then the checks: each input exactly once in results.parquet and the summary, every row's
settings key the final run's, every row with the final top-k.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
CLASSES = ("apple", "cake", "fish")
BATCH_SIZE = 16  # inputs per Grad-CAM batch, and so per part file


def write_inputs(folder: Path, count: int, seed: int) -> None:
    """``count`` random-stroke bitmaps (28x28 uint8, ink high) in one .npy per class."""
    import numpy as np

    from src.data.raster import render_strokes

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    for index, name in enumerate(CLASSES):
        share = range(index, count, len(CLASSES))
        bitmaps = [
            render_strokes(
                [rng.integers(0, 256, size=(2, 5)).tolist() for _ in range(2)], size=28
            ).reshape(-1)
            for _ in share
        ]
        np.save(folder / f"{name}.npy", np.stack(bitmaps).astype(np.uint8))


def write_model(folder: Path) -> None:
    """A small untrained project CNN and its label mapping."""
    from src.config import ModelConfig
    from src.data.labels import LabelMap
    from src.models.cnn import build_cnn

    config = ModelConfig(num_classes=len(CLASSES), filters=(8, 8, 16), dense_units=16)
    build_cnn(config).save(folder / "model.h5")
    LabelMap(CLASSES).save(folder / "labels.json")


def command(work: Path, output: Path, top_k: int, fresh: bool) -> list[str]:
    """The CLI run of one round."""
    return [
        sys.executable, "scripts/gradcam_analysis.py", "--model", str(work / "model.h5"),
        "--labels", str(work / "labels.json"), "--output", str(output), "--top_k", str(top_k),
        "batch", "--images_dir", str(work / "inputs"), "--max_per_file", "0", "--batch_size",
        str(BATCH_SIZE), "--ray", *(["--fresh"] if fresh else []),
    ]  # fmt: skip


def killed_round(argv: list[str], output: Path, new_parts: int) -> dict:
    """Run, and SIGKILL the driver as soon as it has written ``new_parts`` new part files
    (explanation under way). Returns the new parts at the kill, whether the run had already
    finished (then nothing was killed), and the driver's descendants still alive 20 s after
    the kill (of how many seen)."""
    from src.batch.ray_watchdog import descendants, start_time

    before = part_names(output)
    driver = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, str] = {}
    while driver.poll() is None and len(part_names(output) - before) < new_parts:
        seen |= descendants(driver.pid)
        time.sleep(0.05)
    finished = driver.poll() is not None
    written = len(part_names(output) - before)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    time.sleep(20)
    left = sum(start_time(pid) == started for pid, started in seen.items())
    return {"parts": written, "finished": finished, "left": left, "seen": len(seen)}


def part_names(output: Path) -> set[str]:
    """The part files in results.parquet (none before the first)."""
    return {path.name for path in (output / "results.parquet").glob("part-*.parquet")}


def rows_of(output: Path) -> list[dict]:
    """results.parquet's rows ([] before the first part)."""
    import pyarrow.parquet as pq

    folder = output / "results.parquet"
    if not folder.is_dir() or not any(folder.glob("part-*.parquet")):
        return []
    return pq.read_table(folder).to_pylist()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from src.utils.tensorflow_logging import configure_tensorflow_logging

    configure_tensorflow_logging()  # this process builds the model: its notices stay out
    chooser = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        write_inputs(work / "inputs", args.count, args.seed)
        write_model(work)
        output = work / "out"
        leftovers = 0
        mid_run = 0
        total_parts = -(-args.count // BATCH_SIZE)
        for round_number in range(1, args.rounds + 1):
            late = round_number > args.rounds // 2
            # The settings change (top_k) starts the folder afresh: nothing of it is done.
            done = 0 if round_number == args.rounds // 2 + 1 else len(part_names(output))
            # A random point in the first share of what is left, so that every round of the
            # phase (5 before the change, 5 after) still finds inputs to explain.
            phase = max(1, args.rounds // 2)
            rounds_left = phase - (round_number - 1) % phase
            target = chooser.randint(1, max(1, (total_parts - done) // (rounds_left + 1)))
            argv = command(work, output, 2 if late else 3, late)
            round_ = killed_round(argv, output, target)
            leftovers += round_["left"]
            mid_run += not round_["finished"]
            when = "finished before the kill" if round_["finished"] else "killed"
            print(
                f"round {round_number:2d}: top_k {2 if late else 3}, {when} after "
                f"{round_['parts']:2d} new parts (aimed at {target}; {done} of {total_parts} "
                f"done before), rows "
                f"{len(rows_of(output)):5d}, processes left after 20 s: {round_['left']} of "
                f"{round_['seen']}",
                flush=True,
            )
        print(f"rounds killed mid-explanation: {mid_run} of {args.rounds}")
        final = subprocess.run(
            command(work, output, 2, True), capture_output=True, text=True, check=False
        )
        print(f"final run: exit {final.returncode}; {final.stdout.strip().splitlines()[0]}")
        rows = rows_of(output)
        summary = json.loads((output / "batch_summary.json").read_text())
        from src.batch.run_settings import settings_key

        key = settings_key(json.loads((output / "run_settings.json").read_text()))
        sources = [row["path"] for row in rows]
        checks = {
            "each input exactly once in results.parquet": sorted(sources) == sorted(set(sources))
            and len(sources) == args.count,
            "each input once in the summary": summary["succeeded"] == args.count
            and len({image["source"] for image in summary["images"]}) == args.count,
            "every row made with the final settings": all(row["settings"] == key for row in rows),
            "every row has the final top_k (2)": all(len(row["top_classes"]) == 2 for row in rows),
            "no Ray process left 20 s after a kill": leftovers == 0,
        }
        for name, passed in checks.items():
            print(f"{'ok  ' if passed else 'FAIL'} {name}")
        return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
