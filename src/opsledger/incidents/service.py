"""The incident lifecycle: open, acknowledge, mitigate, resolve, link alerts; and the record
helpers the other incident modules share (reading, writing, times).

Every change is a whole native record written through the import path (`apply_items`, with
its raw event), so `opsledger rebuild` replays hand actions exactly as it replays imports.
Times come from the caller: the surfaces read the clock only when a person acts "now".
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from opsledger.errors import NotFoundError, UsageError
from opsledger.ingest.importer import ImportResult, apply_items
from opsledger.ingest.reader import Item
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import RECORD_TABLES
from opsledger.records.validation import Record, canonical, validate_json_line

RECURRENCE_HOURS = 720
SEVERITIES = (1, 2, 3)
INC = RECORD_TABLES["incident"]
ALERT = RECORD_TABLES["alert"]


class TransitionError(UsageError):
    """A lifecycle step the incident's recorded times do not allow (exit code 2, HTTP 409)."""


# --- times ------------------------------------------------------------------------------------


def iso(value: datetime | None) -> str | None:
    """RFC 3339 UTC with a Z, microseconds only when there are any."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str, what: str) -> datetime:
    """An RFC 3339 timestamp with an offset; a naive one is an error, never guessed."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"{what}: {text!r} is not an RFC 3339 timestamp (e.g. 2026-10-04T13:22:05Z)"
        ) from None
    if value.tzinfo is None:
        raise UsageError(
            f"{what}: {text!r} has no UTC offset (write e.g. 2026-10-04T13:22:05Z); "
            "it is never guessed"
        )
    return value.astimezone(UTC)


def duration_text(seconds: float | None) -> str:
    """`1 h 05 min`, `12 min 30 s`, `45 s`; `-` when unknown."""
    if seconds is None:
        return "-"
    total = round(seconds)
    sign = "-" if total < 0 else ""
    total = abs(total)
    days, rest = divmod(total, 86_400)
    hours, rest = divmod(rest, 3_600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours:02d} h {minutes:02d} min"
    if hours:
        return f"{sign}{hours} h {minutes:02d} min" + (f" {secs:02d} s" if secs else "")
    if minutes:
        return f"{sign}{minutes} min" + (f" {secs:02d} s" if secs else "")
    return f"{sign}{secs} s"


def before(value: datetime, delta: timedelta) -> datetime:
    """`value - delta`, or the earliest time there is (no overflow near year 1)."""
    try:
        return value - delta
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC)


def check_text(value: str | None, what: str) -> None:
    """Text a database can store: UTF-8 (no lone surrogates), and no NUL, which PostgreSQL
    refuses."""
    if value is None:
        return
    if "\x00" in value:
        raise UsageError(f"{what}: contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError(f"{what}: not valid Unicode text") from None


# --- reading ------------------------------------------------------------------------------------


def fields_of(kind: str) -> list[Any]:
    table = RECORD_TABLES[kind]
    return [table.c[f.name] for f in KIND_BY_NAME[kind].fields]


def get_record(conn: Connection, kind: str, rid: str) -> Record | None:
    check_text(rid, f"{kind} id")
    table = RECORD_TABLES[kind]
    row = conn.execute(select(*fields_of(kind)).where(table.c.id == rid)).first()
    return dict(row._mapping) if row is not None else None


def select_records(
    conn: Connection, kind: str, *conditions: Any, order: Any = None
) -> list[Record]:
    table = RECORD_TABLES[kind]
    q = select(*fields_of(kind)).where(*conditions)
    q = q.order_by(order if order is not None else table.c.id, table.c.id)
    return [dict(r._mapping) for r in conn.execute(q)]


def require_incident(conn: Connection, iid: str) -> Record:
    rec = get_record(conn, "incident", iid)
    if rec is None:
        raise NotFoundError(f"no incident with id {iid!r}")
    return rec


def status_of(rec: Record) -> str:
    """Derived from the recorded times: resolved, mitigated, acknowledged or open."""
    for field, status in (
        ("resolved_at", "resolved"),
        ("mitigated_at", "mitigated"),
        ("acknowledged_at", "acknowledged"),
    ):
        if rec.get(field) is not None:
            return status
    return "open"


def plain(rec: Record) -> dict[str, Any]:
    """A stored record as JSON values, fields in their spec order, absent ones left out."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, datetime):
            out[k] = iso(v)
        elif isinstance(v, date):
            out[k] = v.isoformat()
        elif v is not None:
            out[k] = v
    return out


# --- writing ------------------------------------------------------------------------------------


def write(conn: Connection, records: Sequence[tuple[str, Record]], source: str) -> ImportResult:
    """Whole records through the import path: validated, raw event kept, upserted."""
    items = []
    for n, (kind, rec) in enumerate(records, 1):
        for field, value in rec.items():
            if isinstance(value, str):
                check_text(value, f"{kind} {field}")
        line = '{"kind":' + json.dumps(kind) + "," + canonical(rec)[1:]
        got, record = validate_json_line(line, source, f"record {n}")
        items.append(Item(got, record, "json", line))
    return apply_items(conn, items, source)


def next_incident_id(conn: Connection, started_at: datetime) -> str:
    """`inc-<YYYYMMDD>-<n>`: one more than the highest n of that UTC day."""
    prefix = f"inc-{started_at.astimezone(UTC):%Y%m%d}-"
    pattern = re.compile(re.escape(prefix) + r"(\d+)$")
    highest = 0
    for (rid,) in conn.execute(select(INC.c.id).where(INC.c.id.like(prefix + "%"))):
        m = pattern.match(rid)
        if m:
            highest = max(highest, int(m.group(1)))
    return f"{prefix}{highest + 1}"


def open_incident(
    conn: Connection,
    *,
    title: str,
    severity: int,
    started_at: datetime,
    service: str | None = None,
    detected_at: datetime | None = None,
    iid: str | None = None,
    actor: str = "cli",
) -> Record:
    if severity not in SEVERITIES:
        raise UsageError(f"severity {severity}: use 1, 2 or 3 (Sev-1 is the worst)")
    if not title.strip():
        raise UsageError("an incident needs a title")
    if iid is not None and not iid.strip():
        raise UsageError("--id must not be empty")
    if detected_at is not None and detected_at < started_at:
        raise TransitionError(
            f"detected at {iso(detected_at)} is before the impact started ({iso(started_at)})"
        )
    iid = iid or next_incident_id(conn, started_at)
    if get_record(conn, "incident", iid) is not None:
        raise TransitionError(f"incident {iid} exists already")
    rec: Record = {
        "id": iid,
        "title": title,
        "severity": severity,
        "service": service,
        "started_at": started_at,
        "detected_at": detected_at,
    }
    write(conn, [("incident", rec)], f"{actor}: incidents open {iid}")
    return require_incident(conn, iid)


def _not_before_start(rec: Record, at: datetime, step: str) -> None:
    if at < rec["started_at"]:
        raise TransitionError(
            f"cannot {step} incident {rec['id']} at {iso(at)}: that is before it started "
            f"({iso(rec['started_at'])})"
        )


def _not_after_resolution(rec: Record, at: datetime, step: str) -> None:
    resolved = rec.get("resolved_at")
    if resolved is not None and at > resolved:
        raise TransitionError(
            f"cannot {step} incident {rec['id']} at {iso(at)}: it was resolved at {iso(resolved)}"
        )


def acknowledge(
    conn: Connection, iid: str, at: datetime, by: str | None = None, actor: str = "cli"
) -> Record:
    rec = require_incident(conn, iid)
    if rec.get("acknowledged_at") is not None:
        who = f" by {rec['acknowledged_by']}" if rec.get("acknowledged_by") else ""
        raise TransitionError(
            f"incident {iid} was acknowledged already at {iso(rec['acknowledged_at'])}{who}"
        )
    _not_before_start(rec, at, "acknowledge")
    _not_after_resolution(rec, at, "acknowledge")
    rec.update(acknowledged_at=at, acknowledged_by=by or rec.get("acknowledged_by"))
    write(conn, [("incident", rec)], f"{actor}: incidents ack {iid}")
    return require_incident(conn, iid)


def mitigate(conn: Connection, iid: str, at: datetime, actor: str = "cli") -> Record:
    rec = require_incident(conn, iid)
    if rec.get("mitigated_at") is not None:
        raise TransitionError(
            f"incident {iid} was mitigated already at {iso(rec['mitigated_at'])}"
        )
    _not_before_start(rec, at, "mitigate")
    _not_after_resolution(rec, at, "mitigate")
    rec["mitigated_at"] = at
    write(conn, [("incident", rec)], f"{actor}: incidents mitigate {iid}")
    return require_incident(conn, iid)


def resolve(
    conn: Connection,
    iid: str,
    at: datetime,
    root_cause: str | None = None,
    root_cause_key: str | None = None,
    actor: str = "cli",
) -> Record:
    rec = require_incident(conn, iid)
    if rec.get("resolved_at") is not None:
        raise TransitionError(f"incident {iid} was resolved already at {iso(rec['resolved_at'])}")
    _not_before_start(rec, at, "resolve")
    mitigated = rec.get("mitigated_at")
    if mitigated is not None and at < mitigated:
        raise TransitionError(
            f"cannot resolve incident {iid} at {iso(at)}: that is before it was mitigated "
            f"({iso(mitigated)})"
        )
    rec["resolved_at"] = at
    if root_cause is not None:
        rec["root_cause"] = root_cause
    if root_cause_key is not None:
        rec["root_cause_key"] = root_cause_key
    write(conn, [("incident", rec)], f"{actor}: incidents resolve {iid}")
    return require_incident(conn, iid)


@dataclass(frozen=True)
class LinkResult:
    alert: str
    previous: str | None  # the incident it was linked to before, if another
    changed: bool


def link_alerts(
    conn: Connection, iid: str, alert_ids: Sequence[str], move: bool = False, actor: str = "cli"
) -> list[LinkResult]:
    """Link alerts to an incident (the alert's `incident` field). An alert linked to another
    incident moves only with `move`; every id is checked before anything is written."""
    require_incident(conn, iid)
    if not alert_ids:
        raise UsageError("name at least one alert id to link")
    results: list[LinkResult] = []
    writes: list[tuple[str, Record]] = []
    for aid in dict.fromkeys(alert_ids):
        alert = get_record(conn, "alert", aid)
        if alert is None:
            raise NotFoundError(f"no alert with id {aid!r}; nothing was linked")
        previous = alert.get("incident")
        if previous == iid:
            results.append(LinkResult(aid, None, False))
            continue
        if previous is not None and not move:
            raise TransitionError(
                f"alert {aid} is linked to incident {previous}; pass --move to link it to "
                f"{iid} instead (nothing was linked)"
            )
        alert["incident"] = iid
        writes.append(("alert", alert))
        results.append(LinkResult(aid, previous, True))
    if writes:
        write(conn, writes, f"{actor}: incidents link {iid}")
    return results
