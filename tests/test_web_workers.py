"""Serving from several processes: ``python -m src.web --workers N``."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
from pathlib import Path

import pytest


def test_workers_flag_is_a_positive_whole_number() -> None:
    from src.web.__main__ import build_parser

    parser = build_parser()
    assert parser.parse_args([]).workers == 1
    assert parser.parse_args(["--workers", "2"]).workers == 2
    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--workers", bad])


@pytest.mark.slow
def test_bad_model_with_workers_is_one_line_and_exit_2(
    tmp_path: Path, sketch_labels_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from src.web.__main__ import main

    model = tmp_path / "model.h5"
    model.write_bytes(b"not a model")
    status = main(
        ["--model_path", str(model), "--label_mapping", str(sketch_labels_path), "--workers", "2"]
    )
    error = capsys.readouterr().err.strip()
    assert status == 2
    assert error.startswith("error: cannot start the web app:") and "\n" not in error


def test_worker_sockets_share_a_port_and_accept_with_tcp_nodelay() -> None:
    from src.web.workers import reuse_port_socket

    first = reuse_port_socket("127.0.0.1", 0)
    port = first.getsockname()[1]
    second = reuse_port_socket("127.0.0.1", port)  # a second worker binds the same port
    second.close()

    async def nodelay_of_accepted_connection() -> int:
        accepted: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            connection = writer.get_extra_info("socket")
            accepted.set_result(connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=first)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(accepted, 5)
        writer.close()
        server.close()
        return value

    # Without TCP_NODELAY every keep-alive response waits ~40 ms for a delayed ACK.
    assert asyncio.run(nodelay_of_accepted_connection()) != 0


def _get_json(port: int, method: str, path: str, body: object = None) -> tuple[int, dict]:  # type: ignore[type-arg]
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    payload = None if body is None else json.dumps(body).encode()
    connection.request(method, path, payload, {"Content-Type": "application/json"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())
