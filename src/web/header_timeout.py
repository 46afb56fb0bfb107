"""Disconnect clients that do not finish their request headers in time (slowloris).

uvicorn arms its keep-alive timer only after a response and cancels it on every byte received,
so a client that connects and then sends a header line every few seconds, or nothing at all,
holds a connection (and a file descriptor) forever. This protocol arms a header timer when a
connection opens and when each new request begins, and cancels it once the headers are complete;
when it fires, the client gets a 408 JSON answer and the connection is closed. The request body
and the compute are bounded elsewhere (the body-size limit and the per-request deadline).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEADER_TIMEOUT_S = 10.0


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline on each request's headers.

    Subclasses made by ``protocol_with_header_timeout`` set ``header_timeout_s``.
    """

    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm_header_timer(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(self.header_timeout_s, self._headers_late)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_late(self) -> None:
        """The timer fired: answer 408 and close, unless the connection is already closing."""
        self._header_timer = None
        if self.transport.is_closing():
            return
        body = json.dumps(
            {
                "error": f"request headers not received within {self.header_timeout_s:g} s",
                "fix": "send the complete request headers promptly",
            }
        ).encode()
        self.transport.write(
            b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
            b"connection: close\r\ncontent-length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Start the header timer as soon as the client connects (it may send nothing at all)."""
        super().connection_made(transport)
        self._arm_header_timer()

    def on_message_begin(self) -> None:
        """A new request on a kept-alive connection: its headers get the same deadline."""
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        """Headers complete: the request is in the app's hands now."""
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop the timer with the connection."""
        self._cancel_header_timer()
        super().connection_lost(exc)


def protocol_with_header_timeout(seconds: float) -> type[HeaderTimeoutProtocol]:
    """A ``HeaderTimeoutProtocol`` subclass with this deadline, for ``uvicorn.Config(http=...)``.

    Raises:
        ValueError: ``seconds`` is not positive.
    """
    if not seconds > 0:
        raise ValueError(f"header timeout must be positive, got {seconds!r}")
    return type("HeaderTimeoutProtocol", (HeaderTimeoutProtocol,), {"header_timeout_s": seconds})
