"""The benchmark's asyncio load generator against a tiny stdlib HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from bench.async_client import LoadError, requests_per_second


class _Recorder(BaseHTTPRequestHandler):
    """Answers every POST with a fixed JSON body (or 500 when the body says so)."""

    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn answers
    bodies: list[bytes] = []
    connections: set[int] = set()

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's naming)
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).bodies.append(body)
        type(self).connections.add(self.client_address[1])
        answer = b'{"success": true, "padding": "' + b"x" * 5000 + b'"}'
        self.send_response(500 if body == b'{"fail": true}' else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client that hangs up after a 500 is expected here."""


@pytest.fixture()
def server() -> Iterator[int]:
    """The recording server on a free loopback port."""
    _Recorder.bodies, _Recorder.connections = [], set()
    httpd = _QuietServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield int(httpd.server_address[1])
    httpd.shutdown()
    httpd.server_close()


def test_every_request_is_sent_whole_on_its_own_connection(server: int) -> None:
    rate, timed = requests_per_second(server, "/predict", b'{"image": "abc"}', 4, 40)
    assert timed == 40 and rate > 0
    # 40 timed requests plus one warm-up per connection, all with the exact body.
    assert _Recorder.bodies == [b'{"image": "abc"}'] * 44
    assert len(_Recorder.connections) == 4


def test_a_failed_request_stops_the_run(server: int) -> None:
    with pytest.raises(LoadError, match="500"):
        requests_per_second(server, "/predict", b'{"fail": true}', 2, 4)
