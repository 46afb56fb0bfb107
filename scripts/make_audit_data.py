"""Write a held-out audit folder: ``<output>/<class>.ndjson`` for every class of a label mapping.

The drawings are the ones the shipped model's training never saw, chosen by the training's own
split (``src.training.dataset.held_out_strokes``): for classes that also have Google bitmaps, the
cross-domain half of their strokes; for the stroke-only classes, their test split.

The output never overlaps the input folders (exit 2), each class file is named by the project's
safe-name rule (``alarm clock`` -> ``alarm_clock.ndjson``; ``audit`` reads both spellings), and a
class name holding a path (``../x``, ``/x``) is read from nowhere. Exit codes: 0 done, 2 bad
arguments, 5 bad label mapping, 8 no strokes folder or no readable class file, 9 some class files
could not be read (one line each, the others written), 10 the output cannot be written.

Usage (from the repository root)::

    python scripts/make_audit_data.py --strokes_dir ../shared/data/quickdraw \\
        --bitmap_dir ../shared/data/quickdraw_bitmap --output /tmp/audit_data --per_class 40
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.config import TrainConfig  # noqa: E402
from src.data.labels import LabelMap  # noqa: E402
from src.data.quickdraw import read_ndjson, write_ndjson  # noqa: E402
from src.errors import DataFormatError  # noqa: E402
from src.training.dataset import held_out_strokes  # noqa: E402
from src.utils.arguments import positive_int  # noqa: E402
from src.utils.exit_status import ExitStatus, run_guarded  # noqa: E402
from src.utils.filenames import path_inside  # noqa: E402
from src.utils.output_errors import naming_target  # noqa: E402

PROGRAM = "make_audit_data"


def _parser() -> argparse.ArgumentParser:
    """The script's options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes_dir", type=Path, default=Path("../shared/data/quickdraw"))
    parser.add_argument("--bitmap_dir", type=Path, default=Path("../shared/data/quickdraw_bitmap"))
    parser.add_argument("--labels", type=Path, default=Path("data/label_mapping.json"))
    parser.add_argument("--output", type=Path, default=Path("/tmp/audit_data"))
    parser.add_argument("--per_class", type=positive_int, default=40)
    return parser


def overlapping_input(output: Path, inputs: list[Path]) -> Path | None:
    """The first input folder that ``output`` is, lies inside or contains (resolved), else None."""
    target = output.resolve()
    for folder in inputs:
        source = folder.resolve()
        if target.is_relative_to(source) or source.is_relative_to(target):
            return folder
    return None


def _is_plain_name(name: str) -> bool:
    """Whether ``name`` can only mean a file inside the strokes folder (no separator, no ``..``)."""
    separators = {"/", os.sep, os.altsep or "/", "\0"}
    return name not in ("", ".", "..") and not any(mark in name for mark in separators)


def _copy_class(args: argparse.Namespace, config: TrainConfig, name: str, target: Path) -> int:
    """Write up to ``--per_class`` held-out drawings of one class to ``target``; the count."""
    drawings = list(read_ndjson(args.strokes_dir / f"{name}.ndjson"))
    held_out = held_out_strokes(config, name, drawings)
    try:
        return write_ndjson(held_out[: args.per_class], target)
    except OSError as error:
        raise naming_target(error, target) from error


def _write_audit_folder(args: argparse.Namespace) -> int:
    """Check the folders, then copy each class; the exit code."""
    if not args.strokes_dir.is_dir():
        raise DataFormatError(
            f"--strokes_dir {args.strokes_dir} is not a folder; pass the folder of Quick, Draw! "
            "<class>.ndjson files"
        )
    inputs = [args.strokes_dir] + ([args.bitmap_dir] if args.bitmap_dir.is_dir() else [])
    clash = overlapping_input(args.output, inputs)
    if clash is not None:
        print(
            f"{PROGRAM}: error: --output {args.output} overlaps the input folder {clash}; "
            "pass a folder outside the data",
            file=sys.stderr,
        )
        return ExitStatus.USAGE
    class_names = LabelMap.load(args.labels).class_names
    args.output.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(strokes_dir=args.strokes_dir, bitmap_dir=args.bitmap_dir)
    written: set[Path] = set()
    failures = 0
    for name in class_names:
        problem = _class_problem(args, name, written)
        if problem is not None:
            failures += problem != ""
            continue
        target = path_inside(args.output, f"{name}.ndjson")
        try:
            count = _copy_class(args, config, name, target)
        except DataFormatError as error:
            print(f"{PROGRAM}: skipped {name!r}: {error}", file=sys.stderr)
            failures += 1
            continue
        written.add(target)
        print(f"{name}: {count}")
    if not written:
        raise DataFormatError(
            f"{args.strokes_dir} has no readable <class>.ndjson file of the classes in {args.labels}"
        )
    return ExitStatus.PARTIAL_FAILURE if failures else ExitStatus.SUCCESS


def _class_problem(args: argparse.Namespace, name: str, written: set[Path]) -> str | None:
    """Why a class is not copied ("" when its file is simply absent), else None; says it once."""
    if not _is_plain_name(name):
        print(
            f"{PROGRAM}: skipped {name!r}: a class name holding a path is not read", file=sys.stderr
        )
        return "path"
    source = args.strokes_dir / f"{name}.ndjson"
    if not source.is_file():
        print(f"{name}: no {source}", file=sys.stderr)
        return ""
    if path_inside(args.output, f"{name}.ndjson") in written:
        print(
            f"{PROGRAM}: skipped {name!r}: its file name is taken by another class",
            file=sys.stderr,
        )
        return "clash"
    return None


def main(argv: list[str] | None = None) -> int:
    """Copy up to ``--per_class`` held-out drawings of each class; print the counts."""
    args = _parser().parse_args(argv)
    return run_guarded(PROGRAM, lambda: _write_audit_folder(args), show_traceback=False)


if __name__ == "__main__":
    raise SystemExit(main())
