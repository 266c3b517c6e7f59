"""Webhook receivers: POST /api/v1/hooks/{connector}, and POST /v2/enqueue (PagerDuty Events
API v2 compatible). Every refusal is logged in the rejected-payload log. The payloads are
stored by the webhook writer (api/writer.py): one thread, many payloads a transaction."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from opsledger.access import TokenCache, TokenInfo, allows, token_hash, verify_token_hash
from opsledger.api.deps import bearer, engine_of
from opsledger.api.problems import Problem, problem_response
from opsledger.api.writer import Logged, Writer
from opsledger.connectors.base import Connector, NativeRecord, PayloadError, get_connector

MAX_BODY = 1024 * 1024
INLINE_PARSE = 64 * 1024  # bodies up to this size are parsed on the event loop
router = APIRouter()


def secret_for(connector: str) -> str | None:
    return os.environ.get(f"OPSLEDGER_{connector.upper()}_WEBHOOK_SECRET") or None


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise Problem(413, f"body of {declared} bytes is over the limit of {MAX_BODY} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise Problem(413, f"body is over the limit of {MAX_BODY} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _authorise(request: Request, connector: Connector, body: bytes) -> str | None:
    """The hash of the sending token, or None for a payload signed by the vendor; raises
    Problem(401/403). A token found valid is cached (access.TokenCache); the writer checks
    it again in the transaction that stores the payload."""
    headers = request.headers
    secret = secret_for(connector.name)
    if connector.verify is not None and secret is not None:
        signed = connector.verify(body, headers, secret)
        if signed is True:
            return None
        if signed is False:
            raise Problem(401, f"{connector.name} signature does not match")
        # None: no signature sent; a bearer token may authenticate instead
    token = bearer(request)
    if token is None and connector.token_in_body is not None:
        token = connector.token_in_body(body)
    if token is None:
        raise Problem(401, "missing bearer token (Authorization: Bearer <token>)")
    digest = token_hash(token)
    cache: TokenCache = request.app.state.tokens
    info = cache.get(digest)
    if info is None:
        info = await run_in_threadpool(_lookup, engine_of(request), digest)
        if info is None:
            raise Problem(401, "invalid or revoked token")
        cache.put(digest, info)
    if not allows(info.scope, "ingest"):
        raise Problem(403, f"token '{info.name}' has scope {info.scope}; webhooks need ingest")
    return digest


def _lookup(engine: Engine, digest: str) -> TokenInfo | None:
    with engine.connect() as conn:
        return verify_token_hash(conn, digest)


async def _parse(connector: Connector, body: bytes, request: Request) -> list[NativeRecord]:
    """The connector's records of the payload (pure; a large body off the event loop)."""
    try:
        if len(body) <= INLINE_PARSE:
            return connector.parse(body, request.headers)
        return await run_in_threadpool(connector.parse, body, request.headers)
    except PayloadError as exc:
        raise Problem(exc.status, str(exc)) from None


async def _receive(request: Request, name: str) -> JSONResponse:
    """Read, authenticate and parse the payload here; the writer stores it (group commit)
    and answers after its transaction committed. Every refusal is logged."""
    body = b""
    writer: Writer = request.app.state.writer
    remote = request.client.host if request.client else None
    try:
        body = await read_body(request)
        connector = get_connector(name)
        if connector is None:
            raise Problem(404, f"unknown connector '{name}'")
        digest = await _authorise(request, connector, body)
        records = await _parse(connector, body, request)
        result = await writer.ingest(connector, records, body, digest, remote)
    except Logged as exc:
        return problem_response(exc.status, exc.detail, request.url.path)
    except Problem as exc:
        await writer.reject(name, exc.status, exc.detail, body, remote)
        return problem_response(exc.status, exc.detail, request.url.path)
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
    return JSONResponse(summary, status_code=202)


@router.post(
    "/api/v1/hooks/{connector}",
    status_code=202,
    tags=["hooks"],
    summary="Receive a webhook payload of a connector",
)
async def receive_hook(connector: str, request: Request) -> JSONResponse:
    """Authenticate (bearer token with scope ingest, or the vendor's signature), parse the
    vendor payload, keep it verbatim, and apply its records. 413 over 1 MiB."""
    return await _receive(request, connector)


@router.post(
    "/v2/enqueue",
    status_code=202,
    tags=["hooks"],
    summary="PagerDuty Events API v2 compatible endpoint",
)
async def enqueue(request: Request) -> JSONResponse:
    """trigger / acknowledge / resolve events with a dedup_key; the routing_key may be an
    ingest token."""
    return await _receive(request, "events")
