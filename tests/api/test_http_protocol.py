"""api.http.OneWriteHttpToolsProtocol on real uvicorn servers on loopback, read with raw
sockets: each response is one `transport.write` (the status line and headers held until the
body), and the bytes a client receives are those of uvicorn's stock HttpToolsProtocol for the
same app and request (the `date` header aside): HEAD, streaming, 100-continue, keep-alive,
pipelining, `Connection: close`, and opsledger's webhook answers (202, the NUL 400, the 500
of an unexpected error)."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from opsledger.access import create_token
from opsledger.api import hooks
from opsledger.api.app import create_app
from opsledger.api.http import OneWriteHttpToolsProtocol
from opsledger.settings import Settings
from tests.api.test_hook_routes import notification

TIMEOUT = 10.0
DATE = re.compile(rb"\r\ndate: [^\r\n]*")


# --------------------------------------------------------------------------- the servers


class _Recording:
    """The asyncio transport, recording each write (what goes to the socket, per call)."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport = transport
        self._writes = writes

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _recording(base: type[HttpToolsProtocol]) -> type[HttpToolsProtocol]:
    """`base` whose connections record the writes on their socket's transport (in
    `written`, one list of writes a connection, in the order they were made)."""

    class Recording(base):  # type: ignore[valid-type, misc]
        written: ClassVar[list[list[bytes]]] = []

        def connection_made(self, transport: asyncio.Transport) -> None:
            writes: list[bytes] = []
            type(self).written.append(writes)
            super().connection_made(_Recording(transport, writes))

    return Recording


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, port: int, protocol: type[HttpToolsProtocol]) -> None:
        self.port = port
        self.protocol = protocol

    @property
    def connections(self) -> list[list[bytes]]:
        return self.protocol.written  # type: ignore[attr-defined, no-any-return]

    def connect(self) -> Conn:
        return Conn(socket.create_connection(("127.0.0.1", self.port), timeout=TIMEOUT))


@contextmanager
def serve(app: ASGIApp, base: type[HttpToolsProtocol]) -> Iterator[Served]:
    protocol = _recording(base)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, http=protocol, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name=f"uvicorn-{base.__name__}", daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert thread.is_alive(), "uvicorn did not start"
        assert time.monotonic() < deadline, "uvicorn did not start in time"
        time.sleep(0.01)
    try:
        yield Served(port, protocol)
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "uvicorn did not stop"


@contextmanager
def both(app: ASGIApp) -> Iterator[tuple[Served, Served]]:
    """The app on two servers: OneWriteHttpToolsProtocol, and uvicorn's stock protocol."""
    with serve(app, OneWriteHttpToolsProtocol) as one, serve(app, HttpToolsProtocol) as stock:
        yield one, stock


# --------------------------------------------------------------------------- the client


class Conn:
    """A raw HTTP/1.1 client connection: requests are bytes, responses are read as bytes."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Conn:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError(f"connection closed; unread: {self.buf!r}")
        self.buf += data

    def until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            self._fill()
        end = self.buf.index(marker) + len(marker)
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def response(self, head: bool = False) -> bytes:
        """The raw bytes of the next response (no body when `head`)."""
        top = self.until(b"\r\n\r\n")
        status = int(top.split(b" ", 2)[1])
        fields = headers(top)
        if head or status in (204, 304) or status < 200:
            return top
        if "content-length" in fields:
            return top + self.exact(int(fields["content-length"]))
        assert fields.get("transfer-encoding") == "chunked", top
        body = b""
        while True:
            line = self.until(b"\r\n")
            size = int(line, 16)
            body += line + self.exact(size + 2)
            if size == 0:
                return top + body

    def at_eof(self) -> bool:
        """True when the server closed the connection and nothing more was sent."""
        if self.buf:
            return False
        try:
            return self.sock.recv(65536) == b""
        except ConnectionResetError:
            return True


def headers(top: bytes) -> dict[str, str]:
    lines = top.decode("latin-1").split("\r\n")[1:]
    fields = {}
    for line in lines:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    return fields


def undated(data: bytes) -> bytes:
    return DATE.sub(b"", data)


def request(method: str, path: str, *extra: str, body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "host: 127.0.0.1", *extra]
    if body:
        lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --------------------------------------------------------------------------- a test app

CHUNKS = [b"first chunk\n", b"second chunk\n", b"third chunk\n"]
DELAY = 0.2


def make_app(yielded: list[float]) -> Starlette:
    async def small(request: Request) -> Response:
        return PlainTextResponse(f"hello, {request.query_params.get('n', 'world')}")

    async def slowly(parts: list[bytes]) -> AsyncIterator[bytes]:
        """`parts` one after the other, DELAY apart, noting when each was made."""
        for part in parts:
            await asyncio.sleep(DELAY)
            yielded.append(time.monotonic())
            yield part

    async def stream(request: Request) -> Response:
        return StreamingResponse(slowly(CHUNKS), media_type="text/plain")

    async def echo(request: Request) -> Response:
        return Response(await request.body(), media_type="application/octet-stream")

    async def close(request: Request) -> Response:
        return PlainTextResponse("goodbye", headers={"connection": "close"})

    async def lookalike(request: Request) -> Response:
        size = str(sum(map(len, LOOKALIKE)))
        return StreamingResponse(
            slowly(LOOKALIKE), media_type="text/plain", headers={"content-length": size}
        )

    return Starlette(
        routes=[
            Route("/small", small),
            Route("/stream", stream),
            Route("/echo", echo, methods=["POST"]),
            Route("/close", close),
            Route("/lookalike", lookalike),
        ]
    )


@pytest.fixture
def yielded() -> list[float]:
    return []


@pytest.fixture
def servers(yielded: list[float]) -> Iterator[tuple[Served, Served]]:
    with both(make_app(yielded)) as pair:
        yield pair


def exchange(served: Served, *steps: tuple[bytes, bool]) -> tuple[list[bytes], list[bytes]]:
    """Each request (bytes, is it HEAD) on one new connection, its response read before the
    next is sent; the responses, and the writes the server made on the connection."""
    before = len(served.connections)
    with served.connect() as conn:
        answers = []
        for data, head in steps:
            conn.send(data)
            answers.append(conn.response(head=head))
    assert len(served.connections) == before + 1
    return answers, served.connections[before]


# --------------------------------------------------------------------------- the tests


def test_small_get_is_one_write(servers: tuple[Served, Served]) -> None:
    one, stock = servers
    got, one_writes = exchange(one, (request("GET", "/small"), False))
    want, stock_writes = exchange(stock, (request("GET", "/small"), False))
    assert got[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert got[0].endswith(b"\r\n\r\nhello, world")
    assert got[0].count(b"HTTP/1.1") == 1
    assert undated(got[0]) == undated(want[0])
    # stock uvicorn: the headers, then the body; here: all of it in one write
    assert len(stock_writes) == 2
    assert stock_writes[1] == b"hello, world"
    assert one_writes == [got[0]]
    assert undated(b"".join(stock_writes)) == undated(got[0])


def test_head_sends_the_headers_and_keeps_the_connection(
    servers: tuple[Served, Served],
) -> None:
    one, stock = servers
    steps = ((request("HEAD", "/small"), True), (request("GET", "/small"), False))
    got, one_writes = exchange(one, *steps)
    want, stock_writes = exchange(stock, *steps)
    head, get = got
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert headers(head)["content-length"] == "12"  # that of the GET; no body follows it
    assert get.endswith(b"\r\n\r\nhello, world")
    assert [undated(a) for a in got] == [undated(a) for a in want]
    # HEAD: no body is written, so the held headers go out when the response completes
    assert one_writes == [head, get]
    assert len(stock_writes) == 3


def test_head_with_connection_close(servers: tuple[Served, Served]) -> None:
    """The held headers of a HEAD are written before the connection is closed."""
    one, stock = servers
    answers = []
    for served in (one, stock):
        with served.connect() as conn:
            conn.send(request("HEAD", "/small", "connection: close"))
            answers.append(conn.response(head=True))
            assert conn.at_eof()
    got, want = answers
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert headers(got)["connection"] == "close"
    assert undated(got) == undated(want)
    assert one.connections[-1] == [got]


def test_streaming_chunks_each_arrive(
    servers: tuple[Served, Served], yielded: list[float]
) -> None:
    one, stock = servers
    answers = []
    for served in (one, stock):
        yielded.clear()
        with served.connect() as conn:
            conn.send(request("GET", "/stream"))
            top = conn.until(b"\r\n\r\n")
            assert headers(top)["transfer-encoding"] == "chunked"
            body, arrived = b"", []
            for chunk in CHUNKS:
                line = conn.until(b"\r\n")
                assert int(line, 16) == len(chunk)
                data = conn.exact(len(chunk) + 2)
                assert data == chunk + b"\r\n"
                arrived.append(time.monotonic())
                body += line + data
            body += conn.until(b"0\r\n\r\n")
            assert body.endswith(b"\r\n0\r\n\r\n")
            answers.append(top + body)
        # each chunk reached the client before the app made the next one
        assert len(yielded) == len(CHUNKS)
        for n in range(len(CHUNKS) - 1):
            assert arrived[n] < yielded[n + 1], n
    got, want = answers
    assert undated(got) == undated(want)
    one_writes, stock_writes = one.connections[-1], stock.connections[-1]
    framed = [b"%x\r\n%s\r\n" % (len(c), c) for c in CHUNKS]
    # the headers go out with the first chunk; the chunks, and the end, one write each
    assert one_writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
    assert one_writes[0].endswith(b"\r\n\r\n" + framed[0])
    assert one_writes[1:] == [*framed[1:], b"0\r\n\r\n"]
    assert stock_writes[1:] == [*framed, b"0\r\n\r\n"]
    assert undated(stock_writes[0] + framed[0]) == undated(one_writes[0])


# a body whose middle part has the shape of a header block
LOOKALIKE = [b"first part\r\n", b"HTTP/1.1 200 OK\r\n\r\n", b"last part"]


def test_a_body_part_shaped_like_headers_is_not_held(
    servers: tuple[Served, Served], yielded: list[float]
) -> None:
    one, _ = servers
    with one.connect() as conn:
        conn.send(request("GET", "/lookalike"))
        top = conn.until(b"\r\n\r\n")
        assert top.startswith(b"HTTP/1.1 200 OK\r\n")
        arrived = []
        for part in LOOKALIKE:
            assert conn.exact(len(part)) == part
            arrived.append(time.monotonic())
    # each part reached the client before the app made the next one (only the first write
    # of a response is held)
    assert len(yielded) == len(LOOKALIKE)
    for n in range(len(LOOKALIKE) - 1):
        assert arrived[n] < yielded[n + 1], n


def test_expect_100_continue(servers: tuple[Served, Served]) -> None:
    one, stock = servers
    body = b"the body, sent after the 100"
    top = request("POST", "/echo", "expect: 100-continue", f"content-length: {len(body)}")
    answers = []
    for served in (one, stock):
        with served.connect() as conn:
            conn.send(top)  # the headers only: the server must answer 100 first
            interim = conn.until(b"\r\n\r\n")
            assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
            assert conn.buf == b""
            conn.send(body)
            answers.append(conn.response())
    got, want = answers
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert got.endswith(b"\r\n\r\n" + body)
    assert undated(got) == undated(want)
    assert one.connections[-1] == [b"HTTP/1.1 100 Continue\r\n\r\n", got]
    assert len(stock.connections[-1]) == 3


def test_keep_alive_several_requests(servers: tuple[Served, Served]) -> None:
    one, stock = servers
    steps = [(request("GET", f"/small?n={n}"), False) for n in range(4)]
    got, one_writes = exchange(one, *steps)
    want, stock_writes = exchange(stock, *steps)
    for n, answer in enumerate(got):
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert answer.endswith(b"\r\n\r\nhello, %d" % n)
    assert [undated(a) for a in got] == [undated(a) for a in want]
    assert one_writes == got
    assert len(stock_writes) == 2 * len(steps)


def test_pipelined_requests_answered_in_order(servers: tuple[Served, Served]) -> None:
    one, stock = servers
    pipelined = (
        request("GET", "/small?n=first")
        + request("HEAD", "/small?n=second")
        + request("POST", "/echo", body=b"third")
        + request("GET", "/small?n=fourth")
    )
    answers = []
    for served in (one, stock):
        with served.connect() as conn:
            conn.send(pipelined)
            answers.append(
                [conn.response(), conn.response(head=True), conn.response(), conn.response()]
            )
            assert conn.buf == b""
    got, want = answers
    assert got[0].endswith(b"\r\n\r\nhello, first")
    assert headers(got[1])["content-length"] == str(len("hello, second"))
    assert got[2].endswith(b"\r\n\r\nthird")
    assert got[3].endswith(b"\r\n\r\nhello, fourth")
    assert [undated(a) for a in got] == [undated(a) for a in want]
    assert one.connections[-1] == got


def test_connection_close_from_the_app(servers: tuple[Served, Served]) -> None:
    one, stock = servers
    answers = []
    for served in (one, stock):
        with served.connect() as conn:
            conn.send(request("GET", "/close"))
            answers.append(conn.response())
            assert conn.at_eof()
    got, want = answers
    assert got.startswith(b"HTTP/1.1 200 OK\r\n")
    assert headers(got)["connection"] == "close"
    assert got.endswith(b"\r\n\r\ngoodbye")
    assert undated(got) == undated(want)
    assert one.connections[-1] == [got]
    assert len(stock.connections[-1]) == 2


def test_http_10_request_is_answered_then_closed(servers: tuple[Served, Served]) -> None:
    """HTTP/1.0 without keep-alive: uvicorn adds `connection: close` and closes."""
    one, stock = servers
    answers = []
    for served in (one, stock):
        with served.connect() as conn:
            conn.send(b"GET /small HTTP/1.0\r\nhost: 127.0.0.1\r\n\r\n")
            answers.append(conn.response())
            assert conn.at_eof()
    got, want = answers
    assert headers(got)["connection"] == "close"
    assert got.endswith(b"\r\n\r\nhello, world")
    assert undated(got) == undated(want)
    assert one.connections[-1] == [got]


# --------------------------------------------------------------------------- opsledger's app


@pytest.fixture
def ledger(db_url: str) -> Iterator[tuple[Any, str]]:
    app = create_app(Settings(database_url=db_url))
    with app.state.engine.begin() as conn:
        token = create_token(conn, f"http-protocol-{uuid.uuid4().hex[:10]}", "ingest")
    try:
        yield app, token
    finally:
        app.state.writer.close()  # lifespan is off: what its end would do
        app.state.engine.dispose()


def _raising_too(app: ASGIApp, raised: list[BaseException]) -> ASGIApp:
    """`app`, recording what it raises to the server."""

    async def recording(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await app(scope, receive, send)
        except BaseException as exc:
            raised.append(exc)
            raise

    return recording


def _post(path: str, token: str, body: bytes) -> bytes:
    return request(
        "POST", path, f"authorization: Bearer {token}", "content-type: application/json",
        body=body,
    )


def _one_answer(served: Served, data: bytes) -> tuple[bytes, list[bytes]]:
    answers, writes = exchange(served, (data, False))
    return answers[0], writes


def _body(answer: bytes) -> bytes:
    return answer.split(b"\r\n\r\n", 1)[1]


def test_webhook_202_same_bytes(ledger: tuple[Any, str]) -> None:
    app, token = ledger
    run = uuid.uuid4().hex[:8]
    with both(app) as (one, stock):
        got, one_writes = _one_answer(
            one, _post("/api/v1/hooks/alertmanager", token, notification(f"{run}-one"))
        )
        want, _ = _one_answer(
            stock, _post("/api/v1/hooks/alertmanager", token, notification(f"{run}-stock"))
        )
    assert got.startswith(b"HTTP/1.1 202 Accepted\r\n")
    assert headers(got)["content-type"] == "application/json"
    assert _body(got) == (
        b'{"connector":"alertmanager","records":1,"inserted":1,"replaced":0,"unchanged":0}'
    )
    assert undated(got) == undated(want)
    assert one_writes == [got]


def test_webhook_nul_in_query_400(ledger: tuple[Any, str]) -> None:
    app, token = ledger
    body = notification(uuid.uuid4().hex)
    path = "/api/v1/hooks/alertmanager?x=%00"
    with both(app) as (one, stock):
        got, one_writes = _one_answer(one, _post(path, token, body))
        want, _ = _one_answer(stock, _post(path, token, body))
    assert got.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert headers(got)["content-type"] == "application/problem+json"
    assert b'"detail":"the query string contains a NUL character (%00)"' in _body(got)
    assert b'"instance":"/api/v1/hooks/alertmanager"' in _body(got)
    assert undated(got) == undated(want)
    assert one_writes == [got]


def test_webhook_unexpected_error_500(
    ledger: tuple[Any, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    app, token = ledger

    async def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(hooks, "_receive", boom)
    raised: list[BaseException] = []
    answers, health = [], []
    post = _post("/api/v1/hooks/alertmanager", token, notification(uuid.uuid4().hex))
    with both(_raising_too(app, raised)) as servers:
        for served in servers:
            with served.connect() as conn:
                conn.send(post)
                answers.append(conn.response())
                assert conn.at_eof()  # uvicorn closes the connection after the error
            # the server lives on
            health.append(_one_answer(served, request("GET", "/healthz"))[0])
        one_writes = servers[0].connections[0]
    got, want = answers
    assert got.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert headers(got)["content-type"] == "application/problem+json"
    assert _body(got) == (
        b'{"type":"about:blank","title":"Internal Server Error","status":500,'
        b'"detail":"internal error","instance":"/api/v1/hooks/alertmanager"}'
    )
    assert undated(got) == undated(want)
    assert one_writes == [got]
    assert [type(exc) for exc in raised] == [RuntimeError, RuntimeError]
    for answer in health:
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
        assert b'"status":"ok"' in _body(answer)

