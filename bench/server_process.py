"""Start ``python -m src.web`` for a benchmark and wait until every worker is ready.

Shared by ``bench.web_load``; kept apart so the load generator and the report stay short.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def start_server(
    model: Path, labels: Path, workers: int = 1
) -> tuple[subprocess.Popen[bytes], int, int]:
    """``python -m src.web`` on a free loopback port; returns once /health answers.

    Returns:
        The server process, its port, and its batcher's largest batch (from /health), the batch
        size at which the engine baseline must be measured.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    command = [
        sys.executable,
        "-m",
        "src.web",
        "--model_path",
        str(model),
        "--label_mapping",
        str(labels),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log_level",
        "warning",
        "--workers",
        str(workers),
    ]
    server = subprocess.Popen(command, cwd=REPO_ROOT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited with status {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            response = connection.getresponse()
            if response.status == 200:
                batch_size = int(json.loads(response.read())["batch_max_size"])
                if workers > 1:
                    wait_until_idle(server.pid)
                return server, port, batch_size
        except OSError:
            time.sleep(0.2)
    server.terminate()
    raise SystemExit("server did not start within 120 s")


def wait_until_idle(pid: int, timeout_s: float = 120.0) -> None:
    """Wait until ``pid`` and its children use under 5% of a core (every worker has loaded).

    /health answers as soon as the first worker is up; the others are still loading TensorFlow
    and would steal the measurement's CPU. Linux only (reads /proc); elsewhere it returns.
    """
    deadline = time.monotonic() + timeout_s
    previous = _tree_cpu_seconds(pid)
    while previous is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        current = _tree_cpu_seconds(pid)
        if current is None or current - previous < 0.025:
            return
        previous = current


def _tree_cpu_seconds(pid: int) -> float | None:
    """CPU seconds of ``pid`` and its direct children from /proc, or None without /proc."""
    total = 0.0
    try:
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return None
    for entry in entries:
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if int(entry) == pid or int(fields[1]) == pid:
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total
