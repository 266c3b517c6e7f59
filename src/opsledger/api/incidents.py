"""Incident endpoints beyond listing: the lifecycle by hand, timeline, review.

Writes need a token of scope ingest (or admin), reads one of scope read (or admin). Hand
actions go through the same service as the CLI: an unknown incident is 404, a step its
recorded times do not allow (resolve before the start, a second acknowledgement) is 409.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy import Connection

from opsledger.access import TokenInfo
from opsledger.api.deps import engine_of, require
from opsledger.api.problems import Problem
from opsledger.incidents import service as svc
from opsledger.incidents import views
from opsledger.incidents.review import render_review
from opsledger.incidents.timeline import build_timeline
from opsledger.incidents.timeline import markdown as timeline_markdown

router = APIRouter(prefix="/api/v1")
Writer = Annotated[TokenInfo, Depends(require("ingest"))]
Reader = Annotated[TokenInfo, Depends(require("read"))]
Channels = Annotated[list[str] | None, Query(description="Only these chat channels.")]
T = TypeVar("T")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OpenBody(_Body):
    title: str = Field(min_length=1)
    severity: int = Field(ge=1, le=3)
    service: str | None = None
    started_at: AwareDatetime | None = Field(None, description="Default: now.")
    detected_at: AwareDatetime | None = None
    id: str | None = Field(None, min_length=1, description="Default: inc-<YYYYMMDD>-<n>.")


class AckBody(_Body):
    at: AwareDatetime | None = Field(None, description="Default: now.")
    by: str | None = None


class AtBody(_Body):
    at: AwareDatetime | None = Field(None, description="Default: now.")


class ResolveBody(AtBody):
    root_cause: str | None = None
    root_cause_key: str | None = None


class LinkBody(_Body):
    alerts: list[str] = Field(min_length=1)
    move: bool = False


def _now(at: datetime | None) -> datetime:
    return at.astimezone(UTC) if at is not None else datetime.now(UTC)


@contextmanager
def _writing(request: Request) -> Iterator[Connection]:
    try:
        with engine_of(request).begin() as conn:
            yield conn
    except svc.TransitionError as exc:
        raise Problem(409, str(exc)) from None


def _write(request: Request, step: Callable[[Connection], T]) -> T:
    with _writing(request) as conn:
        return step(conn)


def _view(request: Request, iid: str) -> dict[str, Any]:
    with engine_of(request).connect() as conn:
        return views.incident_view(conn, iid)


@router.post("/incidents", status_code=201, tags=["incidents"], summary="Open an incident")
def open_incident(request: Request, body: OpenBody, token: Writer) -> dict[str, Any]:
    started = _now(body.started_at)
    rec = _write(request, lambda c: svc.open_incident(
        c, title=body.title, severity=body.severity, started_at=started, service=body.service,
        detected_at=body.detected_at, iid=body.id, actor=f"api token {token.name}"))
    return _view(request, rec["id"])


@router.post("/incidents/{iid}/ack", tags=["incidents"], summary="Acknowledge an incident")
def ack(request: Request, iid: str, body: AckBody, token: Writer) -> dict[str, Any]:
    when = _now(body.at)
    _write(request, lambda c: svc.acknowledge(c, iid, when, body.by, f"api token {token.name}"))
    return _view(request, iid)


@router.post("/incidents/{iid}/mitigate", tags=["incidents"], summary="Mitigate an incident")
def mitigate(request: Request, iid: str, body: AtBody, token: Writer) -> dict[str, Any]:
    when = _now(body.at)
    _write(request, lambda c: svc.mitigate(c, iid, when, f"api token {token.name}"))
    return _view(request, iid)


@router.post("/incidents/{iid}/resolve", tags=["incidents"], summary="Resolve an incident")
def resolve(request: Request, iid: str, body: ResolveBody, token: Writer) -> dict[str, Any]:
    when = _now(body.at)
    _write(request, lambda c: svc.resolve(c, iid, when, body.root_cause, body.root_cause_key,
                                          f"api token {token.name}"))
    return _view(request, iid)


@router.post("/incidents/{iid}/link", tags=["incidents"], summary="Link alerts to an incident")
def link(request: Request, iid: str, body: LinkBody, token: Writer) -> dict[str, Any]:
    results = _write(request, lambda c: svc.link_alerts(
        c, iid, body.alerts, body.move, f"api token {token.name}"))
    return {
        "incident": iid,
        "linked": [{"alert": r.alert, "previous": r.previous, "changed": r.changed}
                   for r in results],
    }


@router.get("/incidents/{iid}", tags=["incidents"], summary="One incident")
def show(request: Request, iid: str, _: Reader) -> dict[str, Any]:
    """The incident, its status and durations, linked alerts, recurrence (prior incidents
    with the same root_cause_key in the 720 h before) and action items."""
    return _view(request, iid)


@router.get("/incidents/{iid}/timeline", tags=["incidents"], summary="An incident's timeline",
            response_model=None)
def timeline(
    request: Request, iid: str, _: Reader, channel: Channels = None, format: str = "json"
) -> dict[str, Any] | PlainTextResponse:
    """Time-ordered entries from the incident, alerts, changes and chat (`format=markdown`
    for the Markdown table)."""
    if format not in ("json", "markdown"):
        raise Problem(422, f"format {format!r}: use json or markdown")
    with engine_of(request).connect() as conn:
        tl = build_timeline(conn, iid, datetime.now(UTC), channel)
    if format == "markdown":
        return PlainTextResponse(timeline_markdown(tl), media_type="text/markdown")
    return tl.as_json()


@router.get("/incidents/{iid}/review", tags=["incidents"], summary="Post-incident review",
            response_class=PlainTextResponse)
def review(request: Request, iid: str, _: Reader, channel: Channels = None) -> PlainTextResponse:
    """The post-incident review as Markdown (text/markdown)."""
    with engine_of(request).connect() as conn:
        text = render_review(conn, iid, datetime.now(UTC), channel)
    return PlainTextResponse(text, media_type="text/markdown")
