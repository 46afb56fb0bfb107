"""``python -m src.web --workers 2``: every worker ends with the server, however it ends."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import draw_square_strokes, free_port
from tests.test_web_workers import _get_json

START_WITHIN_S = 240  # two workers each import TensorFlow and load the model
GRACE_S = 3  # SKETCH_SHUTDOWN_GRACE_S for these servers
STOP_WITHIN_S = 60
CHILDREN_GONE_WITHIN_S = 15


def _process_table() -> dict[int, tuple[int, int]]:
    """Every live (non-zombie) process: pid -> (parent pid, process group), read from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while the table was read
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def _descendants(root: int) -> set[int]:
    """The live processes below ``root`` (children, grandchildren, ...)."""
    table = _process_table()
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, (parent, _) in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _left_of(group: int, started: set[int]) -> set[int]:
    """Processes of the server's group, or started by it, still alive."""
    table = _process_table()
    return {pid for pid, (_, pgid) in table.items() if pgid == group} | (started & set(table))


def _wait_until_gone(group: int, started: set[int]) -> set[int]:
    """Wait up to CHILDREN_GONE_WITHIN_S for the server's processes to end; those left."""
    deadline = time.monotonic() + CHILDREN_GONE_WITHIN_S
    while _left_of(group, started) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _left_of(group, started)


def _hammer(port: int, stop: threading.Event, answers: list[tuple[float, object]]) -> None:
    """Send /predict_with_gradcam until ``stop``; record (finish time, status or error kind)."""
    body = json.dumps({"strokes": draw_square_strokes()}).encode()
    while not stop.is_set():
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            connection.request(
                "POST", "/predict_with_gradcam", body, {"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            response.read()
            answers.append((time.monotonic(), response.status))
        except (OSError, http.client.HTTPException) as error:
            answers.append((time.monotonic(), type(error).__name__))
            time.sleep(0.05)


def _stalled_uploads(port: int, count: int) -> list[socket.socket]:
    """Connections that send their headers and 10 bytes of a 100 kB body, then nothing."""
    stalled = []
    for _ in range(count):
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100000\r\n\r\n" + b'{"image": '
        )
        stalled.append(connection)
    return stalled


def _launch(
    model: Path, labels: Path, settings: dict[str, str]
) -> tuple[subprocess.Popen[bytes], int]:
    """A two-worker server in its own process group, just started (``settings`` added to its
    environment); the process and its port."""
    port = free_port()
    command = [sys.executable, "-m", "src.web", "--model_path", str(model)]
    command += ["--label_mapping", str(labels), "--port", str(port)]
    command += ["--workers", "2", "--log_level", "warning"]
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **settings}
    environment["SKETCH_SHUTDOWN_GRACE_S"] = str(GRACE_S)
    return subprocess.Popen(command, env=environment, start_new_session=True), port


def _wait_until_ready(process: subprocess.Popen[bytes], port: int) -> set[int]:
    """Wait until the server answers; the children it started (its workers)."""
    deadline = time.monotonic() + START_WITHIN_S
    ready = 0
    while ready < 2:  # two answers in a row: both workers have had time to load
        assert process.poll() is None, "server exited during start-up"
        try:
            ready += _get_json(port, "GET", "/health")[0] == 200
        except OSError:
            ready = 0
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.5)
    started = _descendants(process.pid)
    assert len(started) >= 2  # the two workers (and multiprocessing's resource tracker)
    return started


@pytest.fixture(scope="module")
def servers(sketch_model_path: Path, sketch_labels_path: Path) -> Iterator[list[tuple]]:
    """Two servers, ready: PID, port and started children each. The first is stopped with
    SIGTERM under load; the second serves first (with settings other than the defaults, which
    its workers must read), then is killed.

    Both start at once: each parent loads the model on one core before its workers start, so
    side by side their start-ups overlap instead of queueing.
    """
    settings = [{}, {"SKETCH_BATCH_MAX_SIZE": "5", "SKETCH_HEADER_TIMEOUT_S": "1"}]
    launched = [_launch(sketch_model_path, sketch_labels_path, each) for each in settings]
    try:
        yield [(process, port, _wait_until_ready(process, port)) for process, port in launched]
    finally:
        for process, _ in launched:
            if process.poll() is None:
                process.kill()
            for pid in _left_of(process.pid, set()):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
def test_sigterm_under_load_answers_in_flight_and_leaves_no_process(servers: list[tuple]) -> None:
    process, port, started = servers[0]
    stop = threading.Event()
    answers: list[tuple[float, object]] = []
    clients = [threading.Thread(target=_hammer, args=(port, stop, answers)) for _ in range(6)]
    for client in clients:
        client.start()
    # Several stalled uploads, so the kernel hands at least one to each worker's socket.
    stalled = _stalled_uploads(port, 6)
    try:
        while len(answers) < 12:  # the load is on
            time.sleep(0.05)
        signalled = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_WITHIN_S) == 0
        stop.set()
        for client in clients:
            client.join(60)
    finally:
        stop.set()
        for connection in stalled:
            connection.close()
    assert not _wait_until_gone(process.pid, started)
    statuses = [status for _, status in answers if isinstance(status, int)]
    assert statuses and set(statuses) == {200}
    # Requests in flight at the signal were answered after it.
    assert any(when > signalled and status == 200 for when, status in answers)


@pytest.mark.slow
def test_two_workers_serve_with_the_servers_settings(servers: list[tuple]) -> None:
    _, port, _ = servers[1]
    status, health = _get_json(port, "GET", "/health")
    assert status == 200 and health["batch_max_size"] == 5
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda _: _get_json(
                    port, "POST", "/predict_with_gradcam", {"strokes": draw_square_strokes()}
                ),
                range(4),
            )
        )
    assert all(status == 200 for status, _ in answers)
    assert len({answer["prediction"] for _, answer in answers}) == 1
    # Workers also cut a client that never sends its headers.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as silent:
        assert silent.recv(4096).startswith(b"HTTP/1.1 408 ")


@pytest.mark.slow
def test_workers_end_when_the_server_is_killed(servers: list[tuple]) -> None:
    process, _, started = servers[1]
    process.send_signal(signal.SIGKILL)
    process.wait(STOP_WITHIN_S)
    assert not _wait_until_gone(process.pid, started)
