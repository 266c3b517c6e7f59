"""Webhook receivers: POST /api/v1/hooks/{connector}, and POST /v2/enqueue (PagerDuty Events
API v2 compatible). Every refusal is logged in the rejected-payload log."""

from __future__ import annotations

import os
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from opsledger.access import allows, verify_token
from opsledger.api.deps import bearer, engine_of
from opsledger.api.problems import Problem, problem_response
from opsledger.connectors.base import Connector, PayloadError, get_connector
from opsledger.errors import RecordError
from opsledger.ingest.inbound import ingest_payload, log_rejected

MAX_BODY = 1024 * 1024
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


def _authorise(request: Request, connector: Connector, body: bytes) -> str:
    """Returns who is sending; raises Problem(401/403)."""
    headers = request.headers
    secret = secret_for(connector.name)
    if connector.verify is not None and secret is not None:
        signed = connector.verify(body, headers, secret)
        if signed is True:
            return f"signature:{connector.name}"
        if signed is False:
            raise Problem(401, f"{connector.name} signature does not match")
        # None: no signature sent; a bearer token may authenticate instead
    token = bearer(request)
    if token is None and connector.token_in_body is not None:
        token = connector.token_in_body(body)
    if token is None:
        raise Problem(401, "missing bearer token (Authorization: Bearer <token>)")
    with engine_of(request).connect() as conn:
        info = verify_token(conn, token)
    if info is None:
        raise Problem(401, "invalid or revoked token")
    if not allows(info.scope, "ingest"):
        raise Problem(403, f"token '{info.name}' has scope {info.scope}; webhooks need ingest")
    return info.name


def _process(request: Request, name: str, body: bytes) -> dict[str, Any]:
    connector = get_connector(name)
    if connector is None:
        raise Problem(404, f"unknown connector '{name}'")
    _authorise(request, connector, body)
    try:
        with engine_of(request).begin() as conn:
            result = ingest_payload(
                conn, connector, body, request.headers, request.app.state.policy
            )
    except PayloadError as exc:
        raise Problem(exc.status, str(exc)) from None
    except RecordError as exc:
        raise Problem(422, str(exc)) from None
    if connector.respond is not None:
        return connector.respond(body, result)
    totals = result.totals()
    return {
        "connector": name,
        "records": totals.total,
        "inserted": totals.inserted,
        "replaced": totals.replaced,
        "unchanged": totals.unchanged,
    }


async def _receive(request: Request, name: str) -> JSONResponse:
    body = b""
    try:
        body = await read_body(request)
        summary = await run_in_threadpool(_process, request, name, body)
    except Problem as exc:
        remote = request.client.host if request.client else None
        await run_in_threadpool(_log, request, name, exc.status, exc.detail, body, remote)
        return problem_response(exc.status, exc.detail, request.url.path)
    return JSONResponse(summary, status_code=202)


def _log(
    request: Request, name: str, status: int, reason: str, body: bytes, remote: str | None
) -> None:
    with engine_of(request).begin() as conn:
        log_rejected(conn, name, status, reason, body, remote)


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
