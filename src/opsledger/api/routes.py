"""Read endpoints: records, the scorecard, the rejected-payload log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from sqlalchemy import select

from opsledger.access import TokenInfo
from opsledger.api.deps import engine_of, require
from opsledger.api.problems import Problem
from opsledger.core.periods import resolve
from opsledger.errors import PeriodError
from opsledger.kpis.engine import scorecard
from opsledger.kpis.model import Scope
from opsledger.kpis.policy import Policy
from opsledger.records.listing import list_records
from opsledger.records.tables import rejected_payloads

router = APIRouter(prefix="/api/v1")
Reader = Annotated[TokenInfo, Depends(require("read"))]
Admin = Annotated[TokenInfo, Depends(require("admin"))]
Limit = Annotated[int, Query(ge=1, le=1000)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise Problem(422, f"{name}: timestamp needs a UTC offset (e.g. 2026-10-04T13:22:05Z)")
    return value


def _records(
    request: Request,
    kind: str,
    time_field: str,
    name: str | None,
    service: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    with engine_of(request).connect() as conn:
        items = list_records(conn, kind, time_field, name=name, service=service, since=since,
                             until=until, limit=limit, offset=offset)
    return {"items": items, "limit": limit, "offset": offset}


@router.get("/alerts", tags=["records"], summary="List alert occurrences")
def list_alerts(
    request: Request,
    _: Reader,
    name: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Alert records, newest first; `since`/`until` bound `fired_at`."""
    return _records(
        request,
        "alert",
        "fired_at",
        name,
        service,
        _aware(since, "since"),
        _aware(until, "until"),
        limit,
        offset,
    )


@router.get("/incidents", tags=["records"], summary="List incidents")
def list_incidents(
    request: Request,
    _: Reader,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Incident records, newest first; `since`/`until` bound `started_at`."""
    return _records(
        request,
        "incident",
        "started_at",
        None,
        service,
        _aware(since, "since"),
        _aware(until, "until"),
        limit,
        offset,
    )


@router.get("/scorecard", tags=["kpis"], summary="The scorecard")
def get_scorecard(
    request: Request,
    _: Reader,
    period: str | None = None,
    team: str | None = None,
    service: str | None = None,
) -> dict[str, Any]:
    """Every KPI for a period (default: the last full month), exactly as the CLI."""
    from datetime import UTC

    try:
        p = resolve(period, None, None, datetime.now(UTC))
    except PeriodError as exc:
        raise Problem(422, str(exc)) from None
    policy: Policy = request.app.state.policy
    with engine_of(request).connect() as conn:
        return scorecard(conn, p, Scope(team, service), policy)


@router.get("/rejected", tags=["admin"], summary="The rejected-payload log")
def list_rejected(
    request: Request, _: Admin, limit: Limit = 100, offset: Offset = 0
) -> dict[str, Any]:
    """Payloads refused by the receivers, newest first, with status and reason."""
    r = rejected_payloads.c
    q = (
        select(r.id, r.connector, r.received_at, r.status, r.reason, r.remote, r.body)
        .order_by(r.id.desc())
        .limit(limit)
        .offset(offset)
    )
    with engine_of(request).connect() as conn:
        items = [
            {**dict(row._mapping), "received_at": row.received_at.isoformat()}
            for row in conn.execute(q)
        ]
    return {"items": items, "limit": limit, "offset": offset}
