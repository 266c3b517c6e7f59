"""One time-ordered incident timeline from four sources.

- `incident`: every state change of the incident over its stored versions (the raw
  log, `incidents.history`): started, detected, acknowledged, mitigated, resolved, reopened,
  severity and service changes ..., each with the version that introduced it;
- `alert`: alerts of the incident's services (its own service and those of its linked
  alerts) that fired from 2 h before the start to the end, plus every linked alert;
- `change`: changes to those services deployed (or, with no deploy time, started) from
  24 h before the start to the end, plus the change named in `caused_by_change`;
- `chat`: chat messages posted from 2 h before the start to the end (every channel, or the
  channels asked for).

The end is the resolution, or `now` while the incident is open. Both ends are inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, or_

from opsledger.incidents.history import Version, incident_versions, state_changes
from opsledger.incidents.service import (
    ALERT,
    before,
    check_text,
    duration_text,
    get_record,
    iso,
    require_incident,
    select_records,
)
from opsledger.records.tables import RECORD_TABLES
from opsledger.records.validation import Record

ALERTS_BEFORE = timedelta(hours=2)
CHAT_BEFORE = timedelta(hours=2)
CHANGES_BEFORE = timedelta(hours=24)
# at the same instant: causes first (a change, then the alert it set off), the incident last
SOURCE_RANK = {"change": 0, "alert": 1, "chat": 2, "incident": 3}
EVENT_RANK = {
    "deployed": 0,
    "started": 0,
    "fired": 1,
    "detected": 2,
    "acknowledged": 3,
    "message": 4,
    "mitigated": 5,
    "resolved": 6,
    "reopened": 7,
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: str  # incident | alert | change | chat
    event: str
    ref: str  # the record's id
    text: str
    service: str | None = None
    version: Version | None = None  # incident entries: the stored version that introduced it

    def key(self) -> tuple[Any, ...]:
        seq = self.version.seq if self.version is not None else 0
        return (self.at, SOURCE_RANK[self.source], EVENT_RANK.get(self.event, 9), self.ref, seq)

    def details(self) -> str:
        """The text, and for an incident entry the version that introduced it."""
        if self.version is None:
            return self.text
        return f"{self.text} [{self.version.note()}]"


@dataclass(frozen=True)
class Timeline:
    incident: Record
    start: datetime
    end: datetime
    services: tuple[str, ...]
    channels: tuple[str, ...] | None
    entries: tuple[Entry, ...]

    def as_json(self) -> dict[str, Any]:
        return {
            "incident": self.incident["id"],
            "start": iso(self.start),
            "end": iso(self.end),
            "open": self.incident.get("resolved_at") is None,
            "services": list(self.services),
            "channels": None if self.channels is None else list(self.channels),
            "windows": {
                "alerts_from": iso(before(self.start, ALERTS_BEFORE)),
                "changes_from": iso(before(self.start, CHANGES_BEFORE)),
                "chat_from": iso(before(self.start, CHAT_BEFORE)),
                "to": iso(self.end),
            },
            "entries": [
                {
                    "at": iso(e.at),
                    "offset_seconds": (e.at - self.start).total_seconds(),
                    "source": e.source,
                    "event": e.event,
                    "id": e.ref,
                    "service": e.service,
                    "text": e.text,
                    "version": e.version.as_json() if e.version is not None else None,
                }
                for e in self.entries
            ],
        }


def _incident_entries(conn: Connection, inc: Record) -> list[Entry]:
    """Every state change over the incident's stored versions."""
    iid = inc["id"]
    return [
        Entry(c.at, "incident", c.event, iid, c.text, c.version.record.get("service"), c.version)
        for c in state_changes(incident_versions(conn, iid))
    ]


def _alert_entries(alert: Record, iid: str, end: datetime) -> list[Entry]:
    name, svc = alert["name"], alert.get("service")
    linked = " [linked]" if alert.get("incident") == iid else ""
    facts = ", ".join(x for x in (alert.get("severity"), svc) if x)
    out = [Entry(alert["fired_at"], "alert", "fired",
                 alert["id"], f"{name} fired" + (f" ({facts})" if facts else "") + linked, svc)]
    ack = alert.get("acknowledged_at")
    if ack is not None and ack <= end:
        by = f" by {alert['acknowledged_by']}" if alert.get("acknowledged_by") else ""
        out.append(Entry(ack, "alert", "acknowledged", alert["id"], f"{name} acknowledged{by}",
                         svc))
    resolved = alert.get("resolved_at")
    if resolved is not None and resolved <= end:
        out.append(Entry(resolved, "alert", "resolved", alert["id"], f"{name} resolved", svc))
    return out


def _change_entry(change: Record, cause: str | None) -> Entry | None:
    at, event = change.get("deployed_at"), "deployed"
    if at is None:
        at, event = change.get("started_at"), "started"
    if at is None:
        return None
    facts = [change.get("type"), f"risk {change['risk']}" if change.get("risk") else None,
             f"outcome {change['outcome']}" if change.get("outcome") else None]
    shown = ", ".join(f for f in facts if f)
    text = f"{change.get('title') or change['id']} {event}" + (f" ({shown})" if shown else "")
    if change["id"] == cause:
        text += " [caused the incident]"
    return Entry(at, "change", event, change["id"], text, change.get("service"))


def _chat_entry(msg: Record) -> Entry:
    channel = f"#{msg['channel']}" if msg.get("channel") else "(no channel)"
    user = msg.get("user") or "(unknown)"
    text = " ".join((msg.get("text") or "").split())
    return Entry(msg["posted_at"], "chat", "message", msg["id"], f"{channel} {user}: {text}")


def build_timeline(
    conn: Connection, iid: str, now: datetime, channels: Sequence[str] | None = None
) -> Timeline:
    inc = require_incident(conn, iid)
    start: datetime = inc["started_at"]
    end: datetime = inc.get("resolved_at") or max(now, start)
    linked = select_records(conn, "alert", ALERT.c.incident == iid)
    services = sorted({s for s in [inc.get("service"), *(a.get("service") for a in linked)] if s})
    entries = _incident_entries(conn, inc)

    alerts = {a["id"]: a for a in linked}
    if services:
        for a in select_records(
            conn, "alert", ALERT.c.service.in_(services),
            ALERT.c.fired_at >= before(start, ALERTS_BEFORE), ALERT.c.fired_at <= end,
        ):
            alerts.setdefault(a["id"], a)
    for a in alerts.values():
        entries += _alert_entries(a, iid, end)

    ch = RECORD_TABLES["change"]
    cause = inc.get("caused_by_change")
    changes: dict[str, Record] = {}
    if services:
        lo = before(start, CHANGES_BEFORE)
        for c in select_records(
            conn, "change", ch.c.service.in_(services),
            or_(
                and_(ch.c.deployed_at >= lo, ch.c.deployed_at <= end),
                and_(ch.c.deployed_at.is_(None), ch.c.started_at >= lo, ch.c.started_at <= end),
            ),
        ):
            changes[c["id"]] = c
    if cause and cause not in changes:
        caused = get_record(conn, "change", cause)
        if caused is not None:
            changes[cause] = caused
    for c in changes.values():
        entry = _change_entry(c, cause)
        if entry is not None:
            entries.append(entry)

    chat = RECORD_TABLES["chat_message"]
    conds = [chat.c.posted_at >= before(start, CHAT_BEFORE), chat.c.posted_at <= end]
    for name in channels or ():
        check_text(name, "channel")
    if channels:
        conds.append(chat.c.channel.in_(list(channels)))
    entries += [_chat_entry(m) for m in select_records(conn, "chat_message", *conds)]

    entries.sort(key=Entry.key)
    return Timeline(inc, start, end, tuple(services),
                    tuple(channels) if channels else None, tuple(entries))


def offset_text(delta: timedelta) -> str:
    """Time from the start as `T+HH:MM:SS` (hours may pass 24; `T-` before the start)."""
    total = int(delta.total_seconds())  # whole seconds, towards zero
    sign = "-" if delta.total_seconds() < 0 else "+"
    hours, rest = divmod(abs(total), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"T{sign}{hours:02d}:{minutes:02d}:{seconds:02d}"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def markdown_table(tl: Timeline) -> str:
    lines = [
        "| time (UTC) | from start | source | event | record | details |",
        "|---|---:|---|---|---|---|",
    ]
    for e in tl.entries:
        lines.append(
            f"| {e.at:%Y-%m-%d %H:%M:%S} | {offset_text(e.at - tl.start)} | {e.source} | "
            f"{e.event} | {_cell(e.ref)} | {_cell(e.details())} |"
        )
    return "\n".join(lines) + "\n"


def markdown(tl: Timeline) -> str:
    inc = tl.incident
    state = "resolved" if inc.get("resolved_at") is not None else "open (until now)"
    chans = ", ".join(f"#{c}" for c in tl.channels) if tl.channels else "every channel"
    head = (
        f"# Timeline of {inc['id']}: {inc.get('title') or ''}".rstrip(": ") + "\n\n"
        f"From {iso(tl.start)} to {iso(tl.end)} ({state}, "
        f"{duration_text((tl.end - tl.start).total_seconds())}). "
        f"Services: {', '.join(tl.services) or 'none'}. Alerts from 2 h and changes from 24 h "
        f"before the start; chat from 2 h before the start, {chans}.\n\n"
    )
    return head + markdown_table(tl)
