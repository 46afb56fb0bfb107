"""A resumable folder's part files (results.parquet/ and mean_map_sums/), read with care.

Every part is checked when read: it must be a parquet file with the result columns, its
mean-map sums must load and count its rows. A part that fails (truncated, empty, foreign, its
sums missing) is set aside into ``damaged/`` and its inputs are explained again. Rows are
matched on their key: source, content SHA-256, label and the run's settings key.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.batch.run_folder import RESULTS_DIR, SUMS_DIR

logger = logging.getLogger(__name__)

DAMAGED_DIR = "damaged"
# A row's resume key: (source, content SHA-256, label or "", settings key).
RowKey = tuple[str, str, str, str]


def row_key(row: dict[str, Any]) -> RowKey:
    """The resume key of a results.parquet row."""
    return (row["path"], row["sha256"], row["label"] or "", row["settings"] or "")


@dataclass
class Part:
    """One checked part: its file, its sums file and its rows."""

    path: Path
    sums: Path
    rows: list[dict[str, Any]] = field(default_factory=list)


def read_parts(output_dir: Path, set_aside: list[str]) -> list[Part]:
    """Every sound part in the folder; each unsound file is moved to ``damaged/`` and its name
    appended to ``set_aside``."""
    results = output_dir / RESULTS_DIR
    if not results.is_dir():
        return []
    parts = []
    for path in sorted(results.iterdir()):
        if path.name.startswith("."):
            continue  # a temporary file of an atomic write
        part = _checked_part(output_dir, path)
        if part is None:
            _set_aside(output_dir, path, set_aside)
        else:
            parts.append(part)
    return parts


def done_keys(parts: list[Part]) -> frozenset[RowKey]:
    """The keys of every row in ``parts``."""
    return frozenset(row_key(row) for part in parts for row in part.rows)


def delete_stale_parts(parts: list[Part], current: set[RowKey]) -> bool:
    """Delete the parts (and sums) holding a row whose key is not a current input's; True when
    any was deleted."""
    stale = False
    for part in parts:
        if any(row_key(row) not in current for row in part.rows):
            logger.info("%s holds inputs that changed; explaining them again", part.path.name)
            part.sums.unlink(missing_ok=True)
            part.path.unlink(missing_ok=True)
            stale = True
    return stale


def _checked_part(output_dir: Path, path: Path) -> Part | None:
    """The part at ``path`` with its rows, or None when it or its sums are unusable."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from src.batch.ray_worker import RESULT_COLUMNS, sums_row_count

    if not (path.is_file() and path.name.startswith("part-") and path.suffix == ".parquet"):
        return None
    sums = output_dir / SUMS_DIR / f"{path.stem}.npz"
    try:
        table = pq.read_table(path)
        if not set(RESULT_COLUMNS) <= set(table.column_names) or table.num_rows == 0:
            return None
        if sums_row_count(sums) != table.num_rows:
            return None
        return Part(path, sums, table.to_pylist())
    except (OSError, ValueError, KeyError, pa.ArrowException) as error:
        logger.info("%s is unreadable: %s", path.name, error)
        return None


def _set_aside(output_dir: Path, path: Path, set_aside: list[str]) -> None:
    """Move a bad part (and its sums) into ``damaged/``; its inputs are explained again."""
    damaged = output_dir / DAMAGED_DIR
    damaged.mkdir(exist_ok=True)
    for source in (path, output_dir / SUMS_DIR / f"{path.stem}.npz"):
        if source.exists() or source.is_symlink():
            os.replace(source, damaged / f"{source.parent.name}__{source.name}")
    set_aside.append(f"{RESULTS_DIR}/{path.name}")
