"""Webhook receivers: POST /api/v1/hooks/{connector}, and POST /v2/enqueue (PagerDuty Events
API v2 compatible). Every refusal is logged in the rejected-payload log. The payloads are
stored by the webhook writer (api/writer.py): one thread, many payloads a transaction.

The two routes are declared on the FastAPI router (for the OpenAPI document, and for an app
that mounts the router without the middleware), but the app of `create_app` (api.app.App)
answers their requests with `answer_hook`, in front of FastAPI and its middleware: the same
steps (the NUL check, body limit, token or signature, parsing, the writer, problem+json
refusals, a 500 for an unexpected error) without the per-request work of the middleware
stack, routing, the request object, dependency resolution and the response classes. Both
ways run `_receive` below.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from opsledger.access import TokenCache, TokenInfo, allows, token_hash, verify_token_hash
from opsledger.api.deps import bearer_of
from opsledger.api.problems import Problem, nul_in_query, on_opsledger, problem_response
from opsledger.api.writer import Logged, Writer
from opsledger.connectors.base import Connector, NativeRecord, PayloadError, get_connector
from opsledger.errors import OpsledgerError

MAX_BODY = 1024 * 1024
INLINE_PARSE = 64 * 1024  # bodies up to this size are parsed on the event loop
HOOKS = "/api/v1/hooks/"
ENQUEUE = "/v2/enqueue"
router = APIRouter()


def secret_for(connector: str) -> str | None:
    return os.environ.get(f"OPSLEDGER_{connector.upper()}_WEBHOOK_SECRET") or None


def _too_large(declared: str | None) -> None:
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise Problem(413, f"body of {declared} bytes is over the limit of {MAX_BODY} bytes")


async def read_body(request: Request) -> bytes:
    _too_large(request.headers.get("content-length"))
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Problem(413, f"body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_asgi(receive: Receive, headers: Headers) -> bytes:
    """The request body from ASGI messages, as `read_body` reads it through Starlette."""
    _too_large(headers.get("content-length"))
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > MAX_BODY:
                    raise Problem(413, f"body is over the limit of {MAX_BODY} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _authorise(
    state: Any, headers: Mapping[str, str], connector: Connector, body: bytes
) -> str | None:
    """The hash of the sending token, or None for a payload signed by the vendor; raises
    Problem(401/403). A token found valid is cached (access.TokenCache); the writer checks
    it again in the transaction that stores the payload."""
    if connector.verify is not None:
        secret = secret_for(connector.name)
        if secret is not None:
            signed = connector.verify(body, headers, secret)
            if signed is True:
                return None
            if signed is False:
                raise Problem(401, f"{connector.name} signature does not match")
            # None: no signature sent; a bearer token may authenticate instead
    token = bearer_of(headers)
    if token is None and connector.token_in_body is not None:
        token = connector.token_in_body(body)
    if token is None:
        raise Problem(401, "missing bearer token (Authorization: Bearer <token>)")
    digest = token_hash(token)
    cache: TokenCache = state.tokens
    info = cache.get(digest)
    if info is None:
        info = await run_in_threadpool(_lookup, state.engine, digest)
        if info is None:
            raise Problem(401, "invalid or revoked token")
        cache.put(digest, info)
    if not allows(info.scope, "ingest"):
        raise Problem(403, f"token '{info.name}' has scope {info.scope}; webhooks need ingest")
    return digest


def _lookup(engine: Engine, digest: str) -> TokenInfo | None:
    with engine.connect() as conn:
        return verify_token_hash(conn, digest)


async def _parse(
    connector: Connector, body: bytes, headers: Mapping[str, str]
) -> list[NativeRecord]:
    """The connector's records of the payload (pure; a large body off the event loop)."""
    try:
        if len(body) <= INLINE_PARSE:
            return connector.parse(body, headers)
        return await run_in_threadpool(connector.parse, body, headers)
    except PayloadError as exc:
        raise Problem(exc.status, str(exc)) from None


async def _receive(
    state: Any,
    name: str,
    headers: Mapping[str, str],
    read: Callable[[], Awaitable[bytes]],
    remote: str | None,
    instance: Callable[[], str],
) -> Response | bytes:
    """Read, authenticate and parse the payload here; the writer stores it (group commit)
    and answers after its transaction committed. Every refusal is logged. The answer: a
    response, or the body of the usual 202 summary (JSON)."""
    body = b""
    writer: Writer = state.writer
    try:
        body = await read()
        connector = get_connector(name)
        if connector is None:
            raise Problem(404, f"unknown connector '{name}'")
        digest = await _authorise(state, headers, connector, body)
        records = await _parse(connector, body, headers)
        result = await writer.ingest(connector, records, body, digest, remote)
    except Logged as exc:
        return problem_response(exc.status, exc.detail, instance())
    except Problem as exc:
        await writer.reject(name, exc.status, exc.detail, body, remote)
        return problem_response(exc.status, exc.detail, instance())
    if connector.respond is not None:
        return JSONResponse(connector.respond(body, result), status_code=202)
    totals = result.totals()
    summary = {
        "connector": name,
        "records": totals.total,
        "inserted": totals.inserted,
        "replaced": totals.replaced,
        "unchanged": totals.unchanged,
    }
    # the bytes JSONResponse would make of it (compact; the name is a registered one)
    return orjson.dumps(summary)


def _summary(content: Response | bytes) -> Response:
    if isinstance(content, bytes):
        return Response(content, status_code=202, media_type="application/json")
    return content


@router.post(
    "/api/v1/hooks/{connector}",
    status_code=202,
    tags=["hooks"],
    summary="Receive a webhook payload of a connector",
)
async def receive_hook(connector: str, request: Request) -> Response:
    """Authenticate (bearer token with scope ingest, or the vendor's signature), parse the
    vendor payload, keep it verbatim, and apply its records. 413 over 1 MiB."""
    return _summary(await _from_request(request, connector))


@router.post(
    "/v2/enqueue",
    status_code=202,
    tags=["hooks"],
    summary="PagerDuty Events API v2 compatible endpoint",
)
async def enqueue(request: Request) -> Response:
    """trigger / acknowledge / resolve events with a dedup_key; the routing_key may be an
    ingest token."""
    return _summary(await _from_request(request, "events"))


async def _from_request(request: Request, name: str) -> Response | bytes:
    remote = request.client.host if request.client else None
    return await _receive(
        request.app.state,
        name,
        request.headers,
        lambda: read_body(request),
        remote,
        lambda: request.url.path,
    )


def hook_name(scope: Scope) -> str | None:
    """The connector a request is for when it is a webhook POST (the routes above), else
    None. With a root path the routes answer, not the middleware."""
    if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
        return None
    path: str = scope["path"]
    if path == ENQUEUE:
        return "events"
    if path.startswith(HOOKS):
        name = path[len(HOOKS) :]
        if name and "/" not in name:
            return name
    return None


_JSON_202 = (b"content-type", b"application/json")


async def answer_hook(name: str, scope: Scope, receive: Receive, send: Send) -> None:
    """Answer a webhook request (`hook_name(scope)` is `name`) as the FastAPI route would,
    without going through FastAPI (api.app.App calls this first, in front of its middleware
    stack). An unexpected error is answered 500 (problem+json) and raised again for the
    server to log, as Starlette's error middleware does."""
    started = False

    async def sending(message: Any) -> None:
        nonlocal started
        started = True
        await send(message)

    try:
        refusal = nul_in_query(scope.get("query_string", b""), scope["path"])
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        headers = Headers(scope=scope)
        client = scope.get("client")
        try:
            content = await _receive(
                scope["app"].state,
                name,
                headers,
                lambda: _read_asgi(receive, headers),
                client[0] if client else None,
                lambda: Request(scope).url.path,
            )
        except OpsledgerError as exc:  # as the app's handler answers it on the routes
            content = await on_opsledger(Request(scope), exc)
        if isinstance(content, bytes):
            await sending(
                {
                    "type": "http.response.start",
                    "status": 202,
                    "headers": [(b"content-length", b"%d" % len(content)), _JSON_202],
                }
            )
            await sending({"type": "http.response.body", "body": content})
        else:
            await content(scope, receive, sending)
    except Exception:
        if not started:
            await problem_response(500, "internal error", scope["path"])(scope, receive, send)
        raise
