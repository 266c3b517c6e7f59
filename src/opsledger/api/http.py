"""uvicorn's HTTP protocol (httptools), with each response written to the socket at once.

uvicorn writes a response in two calls: the status line and headers when the app starts the
response, the body when it sends it. Each call is a `send` on the socket, and on loopback
each is a segment that wakes the client. For the small answers of the webhook receivers
(a 202 of a hundred bytes) the second write was a fifth of the server's time on the request
side (docs/benchmarks.md). Here the headers are held until the body comes, then written
with it in one call; anything held is written before the response is marked complete, before
the connection closes, and before any other write, so the bytes and their order are the same.
A streaming response's headers therefore leave with its first chunk (opsledger streams
nothing).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class _HeldHeaders:
    """A transport that holds the first write of each response (its status line and
    headers) until the next write. Responses on a connection are written one after the
    other, so the first write after the previous response completed (`expect`) is the next
    one's headers; an interim response (1xx: 100 Continue, 101 Switching Protocols) is
    written at once and does not count."""

    __slots__ = ("_held", "_transport", "expect")

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._held: bytes | None = None
        self.expect = True

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
            return
        if self.expect and not _interim(data):
            self.expect = False
            if _is_headers(data):
                self._held = bytes(data)
                return
        self._transport.write(data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:  # everything else: the transport's
        return getattr(self._transport, name)


def _interim(data: bytes | bytearray | memoryview) -> bool:
    return data[:5] == b"HTTP/" and data[8:10] == b" 1"


def _is_headers(data: bytes | bytearray | memoryview) -> bool:
    """A status line and headers, ended by their blank line (no body with them)."""
    return data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n"


class OneWriteHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol whose responses go out in one write (module docstring).
    Pass the class as uvicorn's `http`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _HeldHeaders(transport)  # type: ignore[assignment]

    def on_response_complete(self) -> None:
        held: _HeldHeaders = self.transport  # type: ignore[assignment]
        held.flush()
        held.expect = True  # the next write starts the next response
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        held = self.transport
        if isinstance(held, _HeldHeaders):
            held._held = None  # the peer is gone: nothing more can be written
        super().connection_lost(exc)
