"""One run per output folder, and a folder's resumable results kept to one set of settings.

``claim_output_folder`` takes an exclusive ``flock`` on ``batch.lock`` (the holder's PID inside)
for the whole run: a second run on the folder is refused at once, and a lock left by a killed run
is free again, since the kernel drops a dead process's locks. ``check_run_settings`` compares the
run's settings with the ones the folder's results were made with (``run_settings.json``).
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from src.batch.overlays import OVERLAYS_DIR
from src.batch.run_settings import settings_difference
from src.errors import UsageError
from src.utils.atomic_write import write_json_atomic

logger = logging.getLogger(__name__)

LOCK_FILE = "batch.lock"
SETTINGS_FILE = "run_settings.json"
RESULTS_DIR = "results.parquet"
SUMS_DIR = "mean_map_sums"
# What --fresh removes: the resumable results and the overlays they point to; the settings
# first, so a clear cut short leaves results of unknown settings, never trusted.
RESUMABLE = (SETTINGS_FILE, RESULTS_DIR, SUMS_DIR, OVERLAYS_DIR)


@contextmanager
def claim_output_folder(output_dir: Path) -> Iterator[None]:
    """Hold the folder's lock while the block runs.

    Raises:
        UsageError: another live run holds the folder (names it and the holder's PID).
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(output_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 32, 0).decode(errors="replace").strip() or "unknown"
            raise UsageError(
                f"output folder {output_dir} is in use by another batch run (PID {holder}); "
                "wait for it to end or pass another --output"
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        # Closing drops the lock; the file stays, so the next run locks the same inode.
        os.close(descriptor)


def has_results(output_dir: Path) -> bool:
    """Whether the folder holds resumable results (any file in results.parquet/)."""
    results = output_dir / RESULTS_DIR
    return results.is_dir() and any(results.iterdir())


def check_run_settings(
    output_dir: Path, settings: dict[str, Any], fresh: bool, record: bool
) -> None:
    """Refuse, or with ``fresh`` clear, a folder whose results were made with other settings.

    Args:
        output_dir: the output folder (already claimed).
        settings: this run's ``run_settings``.
        fresh: start the folder afresh when its settings differ (same settings: resume).
        record: write ``settings`` as the folder's (the resuming runner does).

    Raises:
        UsageError: the settings differ and ``fresh`` is False (one line saying which).
    """
    known = _folder_settings(output_dir)
    if known != settings and (known is not None or has_results(output_dir)):
        what = settings_difference(known, settings) if known else "settings unknown"
        if not fresh:
            raise UsageError(
                f"output folder {output_dir} holds results made with other settings ({what}); "
                "pass --fresh to start it afresh, or another --output"
            )
        logger.warning("starting %s afresh (--fresh): its results had other settings", output_dir)
        _clear(output_dir)
    if record:
        write_json_atomic(output_dir / SETTINGS_FILE, settings)


def _folder_settings(output_dir: Path) -> dict[str, Any] | None:
    """The settings the folder's results were made with (None: none recorded or unreadable)."""
    from src.data.json_input import parse_json

    path = output_dir / SETTINGS_FILE
    if not path.is_file():
        return None
    try:
        value = parse_json(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _clear(output_dir: Path) -> None:
    """Remove the folder's resumable results and overlays."""
    for name in RESUMABLE:
        path = output_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
