"""The watchdog of a local Ray that a batch started: it ends Ray's processes with the driver.

Ray ties its head processes to the driver (Linux's parent-death signal), but their own children
(the dashboard agent, the runtime-env agent, idle workers) outlive a SIGKILLed driver for a while.
The driver starts this module with a pipe on its stdin (``start_watchdog``); the watchdog keeps
a list of the driver's descendants (from /proc) and, when the pipe closes (the driver ended,
however), stops every one still running: SIGTERM, then SIGKILL after a short grace.

Run as ``python -m src.batch.ray_watchdog DRIVER_PID``.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

# How often the list of the driver's descendants is refreshed (new workers appear as it runs).
SNAPSHOT_INTERVAL_S = 0.5
GRACE_S = 3.0


def start_watchdog() -> subprocess.Popen[bytes]:
    """Start the watchdog for this process; keep the returned handle open while Ray runs."""
    return subprocess.Popen(
        [sys.executable, "-m", "src.batch.ray_watchdog", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # Its own session: a Ctrl-C on the terminal must not stop it before it cleans up.
        start_new_session=True,
    )


def stop_watchdog(watchdog: subprocess.Popen[bytes]) -> None:
    """Close the pipe: the watchdog stops what is left of Ray, then exits."""
    if watchdog.stdin is not None:
        watchdog.stdin.close()


def watch(driver_pid: int) -> None:
    """Track the driver's descendants until stdin closes, then stop those still running."""
    known: dict[int, str] = {}  # pid -> start time, so a reused PID is never signalled
    myself = os.getpid()
    while not _closed(sys.stdin.fileno(), SNAPSHOT_INTERVAL_S):
        for pid, started in descendants(driver_pid).items():
            if pid != myself:
                known.setdefault(pid, started)
    _signal_all(known, signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(start_time(pid) == t for pid, t in known.items()):
        time.sleep(0.1)
    _signal_all(known, signal.SIGKILL)


def _closed(descriptor: int, timeout: float) -> bool:
    """Whether the pipe reached end of file within ``timeout`` (anything read is dropped)."""
    readable, _, _ = select.select([descriptor], [], [], timeout)
    return bool(readable) and not os.read(descriptor, 4096)


def descendants(root: int) -> dict[int, str]:
    """Every process below ``root`` with its start time (``start_time``), from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    started: dict[int, str] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit() and (fields := _stat_fields(int(entry.name))) is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
            started[int(entry.name)] = fields[19]
    found: dict[int, str] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        if pid not in found and pid in started:
            found[pid] = started[pid]
            pending.extend(children.get(pid, []))
    return found


def _stat_fields(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command name (state, ppid, ...), or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after its last ")".
    return text[text.rfind(")") + 2 :].split()


def start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot), None when it is gone."""
    fields = _stat_fields(pid)
    return fields[19] if fields is not None and fields[0] != "Z" else None


def _signal_all(known: dict[int, str], number: signal.Signals) -> None:
    """Send a signal to each recorded process that still runs."""
    for pid, started in known.items():
        if start_time(pid) == started:
            with contextlib.suppress(OSError):
                os.kill(pid, number)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
