"""Slow clients: a connection whose request headers do not arrive in time gets 408 and is closed.

A real uvicorn server (in a thread, on a free port) and raw sockets, so the protocol is tested as
clients meet it; the app is a minimal ASGI callable, because the timer lives below the app.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HEADER_TIMEOUT_S = 0.5


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers every HTTP request with 200 and ``hello``."""
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"5")]}
    )
    await send({"type": "http.response.body", "body": b"hello"})


@pytest.fixture(scope="module")
def server_port() -> Iterator[int]:
    import uvicorn

    from src.web.header_timeout import protocol_with_header_timeout

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        hello_app,
        log_level="warning",
        http=protocol_with_header_timeout(HEADER_TIMEOUT_S),
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])))
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "server did not start"
        time.sleep(0.02)
    yield port
    server.should_exit = True
    thread.join(10)


def _read_until_closed(connection: socket.socket, limit_s: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and the seconds that took."""
    start = time.monotonic()
    connection.settimeout(limit_s)
    received = b""
    while chunk := connection.recv(4096):
        received += chunk
    return received, time.monotonic() - start


def _get(connection: socket.socket) -> bytes:
    """One keep-alive GET on an open connection; returns the response head and body."""
    connection.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n")
    received = b""
    while not received.endswith(b"hello"):
        chunk = connection.recv(4096)
        assert chunk, "server closed a keep-alive connection mid-response"
        received += chunk
    return received


def test_client_that_sends_nothing_gets_408_and_is_closed(server_port: int) -> None:
    with socket.create_connection(("127.0.0.1", server_port)) as connection:
        received, seconds = _read_until_closed(connection, limit_s=10)
    assert received.startswith(b"HTTP/1.1 408 ")
    assert b'"error": "request headers not received within 0.5 s"' in received
    assert HEADER_TIMEOUT_S * 0.8 <= seconds < 5


def test_slowloris_is_cut_while_a_normal_client_is_served(server_port: int) -> None:
    slow = socket.create_connection(("127.0.0.1", server_port))
    slow.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
    start = time.monotonic()
    answers = []
    # A header line every 0.1 s: each one used to cancel uvicorn's only timer.
    closed_after = None
    slow.settimeout(0.1)
    while time.monotonic() - start < 5:
        try:
            slow.sendall(b"X-Padding: a\r\n")
        except OSError:
            closed_after = time.monotonic() - start
            break
        with socket.create_connection(("127.0.0.1", server_port)) as normal:
            answers.append(_get(normal).split(b"\r\n", 1)[0])
        try:
            data = slow.recv(4096)
        except TimeoutError:
            continue
        if data.startswith(b"HTTP/1.1 408"):
            closed_after = time.monotonic() - start
            break
    slow.close()
    assert closed_after is not None and closed_after < 3
    assert answers and set(answers) == {b"HTTP/1.1 200 OK"}


def test_keep_alive_client_with_pauses_between_requests_is_not_cut(server_port: int) -> None:
    # Three requests spread over more than the header timeout: each request's headers arrive
    # at once, so none is late.
    with socket.create_connection(("127.0.0.1", server_port)) as connection:
        connection.settimeout(5)
        for _ in range(3):
            assert _get(connection).startswith(b"HTTP/1.1 200 OK")
            time.sleep(HEADER_TIMEOUT_S * 0.6)


def test_header_timeout_must_be_positive() -> None:
    from src.web.header_timeout import protocol_with_header_timeout

    for bad in (0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="header timeout must be positive"):
            protocol_with_header_timeout(bad)


def test_server_entry_point_passes_the_setting_to_uvicorn(
    sketch_model_path: Path,
    sketch_labels_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import uvicorn

    from src.web.__main__ import main
    from src.web.header_timeout import HeaderTimeoutProtocol

    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append(options))
    monkeypatch.setenv("SKETCH_HEADER_TIMEOUT_S", "2.5")
    monkeypatch.setenv("SKETCH_WARM_UP", "false")
    arguments = ["--model_path", str(sketch_model_path), "--label_mapping", str(sketch_labels_path)]
    assert main(arguments) == 0
    protocol = calls[0]["http"]
    assert issubclass(protocol, HeaderTimeoutProtocol) and protocol.header_timeout_s == 2.5
