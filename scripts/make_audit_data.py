"""Write a held-out audit folder: ``<output>/<class>.ndjson`` for every class of a label mapping.

A drawing is held out when ``int(sha256(key_id), 16) % 10 == 9``, so the folder is the same on
every machine and for every model (``src.audit.held_out.is_held_out``: training that skips those
drawings never sees them).

Usage (from the repository root)::

    python scripts/make_audit_data.py --strokes_dir ../shared/data/quickdraw \\
        --labels data/label_mapping.json --output /tmp/audit_data --per_class 40
"""

from __future__ import annotations

import argparse
import sys
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.audit.held_out import is_held_out  # noqa: E402
from src.data.labels import LabelMap  # noqa: E402
from src.data.quickdraw import read_ndjson, write_ndjson  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Copy up to ``--per_class`` held-out drawings of each class; print the counts."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strokes_dir", type=Path, default=Path("../shared/data/quickdraw"))
    parser.add_argument("--labels", type=Path, default=Path("data/label_mapping.json"))
    parser.add_argument("--output", type=Path, default=Path("/tmp/audit_data"))
    parser.add_argument("--per_class", type=int, default=40)
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True, exist_ok=True)
    for name in LabelMap.load(args.labels).class_names:
        source = args.strokes_dir / f"{name}.ndjson"
        if not source.is_file():
            print(f"{name}: no {source}", file=sys.stderr)
            continue
        chosen = islice(
            (drawing for drawing in read_ndjson(source) if is_held_out(drawing.key_id)),
            args.per_class,
        )
        count = write_ndjson(chosen, args.output / f"{name}.ndjson")
        print(f"{name}: {count}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
