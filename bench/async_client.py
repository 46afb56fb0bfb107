"""A light HTTP/1.1 load generator: many keep-alive connections driven by one asyncio loop.

The concurrent phase of ``bench.web_load`` used one ``http.client`` thread per client. Sixteen
Python threads parsing responses under the GIL took a large share of the two cores the server
also runs on, so the benchmark measured its own client as much as the server. Here one thread
multiplexes the connections with asyncio streams and does only what a load generator such as
``wrk`` does: send a prebuilt request, read the status line and headers, read exactly
Content-Length bytes of body, and check the status.
"""

from __future__ import annotations

import asyncio
import time


class LoadError(RuntimeError):
    """The server answered with a non-200 status or an unreadable response."""


def build_post(host: str, port: int, path: str, body: bytes) -> bytes:
    """The bytes of one keep-alive ``POST`` of a JSON ``body``."""
    head = (
        f"POST {path} HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    return head.encode("ascii") + body


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """(status, body) of one response framed by Content-Length.

    Raises:
        LoadError: for a response without Content-Length (chunked answers are not expected from
            the JSON endpoints this drives) or a malformed status line.
    """
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise LoadError(f"malformed status line {status_line!r}")
    length = None
    for line in header_lines:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length is None:
        raise LoadError("response has no Content-Length")
    return int(parts[1]), await reader.readexactly(length)


async def _post(
    connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], request: bytes, count: int
) -> None:
    """Send ``request`` ``count`` times on one connection, one in flight, checking each answer."""
    reader, writer = connection
    for _ in range(count):
        writer.write(request)
        status, payload = await read_response(reader)
        if status != 200:
            raise LoadError(f"request failed with {status}: {payload[:200]!r}")


async def _run(host: str, port: int, request: bytes, clients: int, per_client: int) -> float:
    """Seconds for ``clients`` connections to finish ``per_client`` requests each."""
    connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
    try:
        # One warm-up request per connection, so the clock starts with every one of them open.
        await asyncio.gather(*(_post(connection, request, 1) for connection in connections))
        began = time.perf_counter()
        await asyncio.gather(
            *(_post(connection, request, per_client) for connection in connections)
        )
        return time.perf_counter() - began
    finally:
        for _, writer in connections:
            writer.close()


def requests_per_second(
    port: int, path: str, body: bytes, clients: int, requests: int, host: str = "127.0.0.1"
) -> tuple[float, int]:
    """Throughput of ``clients`` concurrent keep-alive connections POSTing ``body`` to ``path``.

    Args:
        port: the server's port on ``host``.
        path: the endpoint, for example ``/predict_with_gradcam``.
        body: the JSON request body, sent unchanged every time.
        clients: concurrent connections, each with one request in flight.
        requests: total timed requests, split evenly (at least one per client).

    Returns:
        (requests per second, requests timed).

    Raises:
        LoadError: if any response is not a 200 with a Content-Length body.
    """
    per_client = max(1, requests // clients)
    request = build_post(host, port, path, body)
    seconds = asyncio.run(_run(host, port, request, clients, per_client))
    return per_client * clients / seconds, per_client * clients
