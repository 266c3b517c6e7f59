"""The reads behind `incidents show` and GET /api/v1/incidents/{id}: linked alerts, action
items, recurrence, durations, and the list of incidents."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import Connection, select

from opsledger.incidents.service import (
    ALERT,
    INC,
    RECURRENCE_HOURS,
    before,
    check_text,
    fields_of,
    plain,
    require_incident,
    select_records,
    status_of,
)
from opsledger.records.tables import RECORD_TABLES
from opsledger.records.validation import Record


def linked_alerts(conn: Connection, iid: str) -> list[Record]:
    return select_records(conn, "alert", ALERT.c.incident == iid, order=ALERT.c.fired_at)


def action_items(conn: Connection, iid: str) -> list[Record]:
    ai = RECORD_TABLES["action_item"]
    return select_records(conn, "action_item", ai.c.incident == iid)


def prior_incidents(conn: Connection, rec: Record) -> list[Record]:
    """Incidents with the same root_cause_key that started in the 720 h before this one."""
    key = rec.get("root_cause_key")
    if not key:
        return []
    start = rec["started_at"]
    return select_records(
        conn,
        "incident",
        INC.c.root_cause_key == key,
        INC.c.id != rec["id"],
        INC.c.started_at >= before(start, timedelta(hours=RECURRENCE_HOURS)),
        INC.c.started_at < start,
        order=INC.c.started_at,
    )


def durations(rec: Record) -> dict[str, dict[str, Any]]:
    """Time to detect, acknowledge, mitigate and resolve, with the times each is measured
    between (acknowledge counts from detection, or from the start when detection is not
    recorded, as the MTTA KPI does)."""
    start = rec["started_at"]
    detected = rec.get("detected_at")
    spans = {
        "time_to_detect": ("started_at", start, "detected_at", detected),
        "time_to_acknowledge": (
            "detected_at" if detected is not None else "started_at",
            detected if detected is not None else start,
            "acknowledged_at",
            rec.get("acknowledged_at"),
        ),
        "time_to_mitigate": ("started_at", start, "mitigated_at", rec.get("mitigated_at")),
        "time_to_resolve": ("started_at", start, "resolved_at", rec.get("resolved_at")),
    }
    out: dict[str, dict[str, Any]] = {}
    for name, (a_name, a, b_name, b) in spans.items():
        seconds = (b - a).total_seconds() if b is not None else None
        out[name] = {
            "from": a_name,
            "to": b_name,
            "seconds": seconds,
            "minutes": None if seconds is None else round(seconds / 60, 2),
        }
    return out


def incident_view(conn: Connection, iid: str) -> dict[str, Any]:
    """Everything `incidents show` and GET /api/v1/incidents/{id} return."""
    rec = require_incident(conn, iid)
    return {
        "incident": plain(rec),
        "status": status_of(rec),
        "durations": durations(rec),
        "alerts": [plain(a) for a in linked_alerts(conn, iid)],
        "recurrence": {
            "root_cause_key": rec.get("root_cause_key"),
            "window_hours": RECURRENCE_HOURS,
            "prior": [plain(p) for p in prior_incidents(conn, rec)],
        },
        "action_items": [plain(a) for a in action_items(conn, iid)],
    }


def list_incidents(
    conn: Connection, service: str | None = None, open_only: bool = False, limit: int = 100
) -> list[Record]:
    conds: list[Any] = []
    check_text(service, "service")
    if service is not None:
        conds.append(INC.c.service == service)
    if open_only:
        conds.append(INC.c.resolved_at.is_(None))
    q = select(*fields_of("incident")).where(*conds).order_by(INC.c.started_at.desc(), INC.c.id)
    return [dict(r._mapping) for r in conn.execute(q.limit(limit))]
