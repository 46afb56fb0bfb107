"""Write a held-out audit folder: ``<output>/<class>.ndjson`` for every class of a label mapping.

The drawings are the ones the shipped model's training never saw, chosen by the training's own
split (``src.training.dataset.held_out_strokes``): for classes that also have Google bitmaps, the
cross-domain half of their strokes; for the stroke-only classes, their test split.

Usage (from the repository root)::

    python scripts/make_audit_data.py --strokes_dir ../shared/data/quickdraw \\
        --bitmap_dir ../shared/data/quickdraw_bitmap --output /tmp/audit_data --per_class 40
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.config import TrainConfig  # noqa: E402
from src.data.labels import LabelMap  # noqa: E402
from src.data.quickdraw import read_ndjson, write_ndjson  # noqa: E402
from src.training.dataset import held_out_strokes  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Copy up to ``--per_class`` held-out drawings of each class; print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes_dir", type=Path, default=Path("../shared/data/quickdraw"))
    parser.add_argument("--bitmap_dir", type=Path, default=Path("../shared/data/quickdraw_bitmap"))
    parser.add_argument("--labels", type=Path, default=Path("data/label_mapping.json"))
    parser.add_argument("--output", type=Path, default=Path("/tmp/audit_data"))
    parser.add_argument("--per_class", type=int, default=40)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    config = TrainConfig(strokes_dir=args.strokes_dir, bitmap_dir=args.bitmap_dir)
    for name in LabelMap.load(args.labels).class_names:
        source = args.strokes_dir / f"{name}.ndjson"
        if not source.is_file():
            print(f"{name}: no {source}", file=sys.stderr)
            continue
        held_out = held_out_strokes(config, name, list(read_ndjson(source)))
        count = write_ndjson(held_out[: args.per_class], args.output / f"{name}.ndjson")
        print(f"{name}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
