"""`opsledger check`: references to ids that no record has, services without a team, runbooks
not reviewed in 182 days, and cost or budget scopes that name neither a team nor a service."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, or_, select

from opsledger.records.spec import KINDS
from opsledger.records.tables import RECORD_TABLES as T

STALE_AFTER = timedelta(days=182)


@dataclass(frozen=True)
class Finding:
    check: str
    kind: str
    id: str
    field: str | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def dangling_references(conn: Connection) -> list[Finding]:
    out: list[Finding] = []
    for kind in KINDS:
        table = T[kind.name]
        for f in kind.fields:
            if f.ref is None or (kind.name == "service" and f.name == "team"):
                continue  # a service's unknown team is reported as service_without_team
            ref = T[f.ref]
            col = table.c[f.name]
            q = (
                select(table.c.id, col)
                .where(col.is_not(None), col.not_in(select(ref.c.id)))
                .order_by(table.c.id)
            )
            out += [
                Finding(
                    "unknown_reference",
                    kind.name,
                    rid,
                    f.name,
                    f"{f.name} '{value}' names no {f.ref} record",
                )
                for rid, value in conn.execute(q)
            ]
    for money in ("budget", "cost"):
        table = T[money]
        q = (
            select(table.c.id, table.c.scope)
            .where(
                table.c.scope.not_in(select(T["service"].c.id)),
                table.c.scope.not_in(select(T["team"].c.id)),
            )
            .order_by(table.c.id)
        )
        out += [
            Finding(
                "unknown_reference",
                money,
                rid,
                "scope",
                f"scope '{scope}' names no service or team",
            )
            for rid, scope in conn.execute(q)
        ]
    return out


def services_without_team(conn: Connection) -> list[Finding]:
    s = T["service"]
    q = (
        select(s.c.id, s.c.team)
        .where(or_(s.c.team.is_(None), s.c.team.not_in(select(T["team"].c.id))))
        .order_by(s.c.id)
    )
    return [
        Finding(
            "service_without_team",
            "service",
            sid,
            "team",
            "no team" if team is None else f"team '{team}' is unknown",
        )
        for sid, team in conn.execute(q)
    ]


def stale_runbooks(conn: Connection, now: datetime) -> list[Finding]:
    rb = T["runbook"]
    cutoff = now - STALE_AFTER
    q = select(rb.c.id, rb.c.last_reviewed_at).where(rb.c.last_reviewed_at < cutoff)
    return [
        Finding(
            "stale_runbook",
            "runbook",
            rid,
            "last_reviewed_at",
            f"last reviewed {t.date()} ({(now - t).days} days ago)",
        )
        for rid, t in conn.execute(q.order_by(rb.c.last_reviewed_at, rb.c.id))
    ]


def run_checks(conn: Connection, now: datetime) -> list[Finding]:
    return dangling_references(conn) + services_without_team(conn) + stale_runbooks(conn, now)
