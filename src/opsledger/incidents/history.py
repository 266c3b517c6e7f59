"""An incident's stored versions, from the append-only raw log, and the state changes
between them (the incident's own entries of its timeline).

Every write of an incident record (an import, a webhook, a hand step, an auto-open) appends
the whole record to the raw log (`ingest.rawlog`), tied to its import (`imports`: source
and time). So the log holds every version the ledger ever stored, in order;
`incident_versions` reads them back exactly as `opsledger rebuild` replays them, and
`state_changes` turns the differences between consecutive versions into entries:

- a time field (started, detected, acknowledged, mitigated, resolved) set or changed: an
  entry *at that time* (when it happened); a changed one says which value it replaces;
- a time field cleared: `reopened` (resolved_at), `unacknowledged`, `unmitigated` or
  `detection cleared`, at the time the clearing version was recorded (the record says no more);
- severity, service, title, the acknowledger, the root cause and the causing change, changed
  after the first version: an entry at the time that version was recorded.

Each entry names the version that introduced it (its number, recording time and the import's
source). Versions that leave a field as it was add nothing for it, so nothing is listed
twice; a value set again after it was cleared is a new state change, marked `(again)`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opsledger.errors import NotFoundError, RecordError
from opsledger.incidents.service import iso
from opsledger.ingest.rawlog import versions
from opsledger.ingest.reader import KIND_KEY
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.validation import Record, validate_csv_row, validate_json_line

# time field -> (event when set, event when cleared, text when cleared)
TIME_FIELDS = {
    "started_at": ("started", "start cleared", "Start time {} no longer recorded"),
    "detected_at": ("detected", "detection cleared", "Detection time {} no longer recorded"),
    "acknowledged_at": (
        "acknowledged", "unacknowledged", "Acknowledgement at {} no longer recorded"
    ),
    "mitigated_at": ("mitigated", "unmitigated", "Mitigation at {} no longer recorded"),
    "resolved_at": ("resolved", "reopened", "Reopened: the resolution at {} no longer recorded"),
}


@dataclass(frozen=True)
class Version:
    """One stored version of a record: its place in the raw log and its import."""

    number: int  # 1 for the first stored version
    seq: int  # raw_chunks.seq of the chunk that holds it
    recorded_at: datetime  # imports.imported_at: when the ledger stored it
    source: str  # imports.source: `cli: incidents ack ...`, `pagerduty webhook`, ...
    record: Record

    def note(self) -> str:
        return f"version {self.number}, recorded {iso(self.recorded_at)}, {self.source}"

    def as_json(self) -> dict[str, Any]:
        return {"number": self.number, "recorded_at": iso(self.recorded_at),
                "source": self.source}


@dataclass(frozen=True)
class Change:
    """One state change of an incident, with the version that introduced it."""

    at: datetime
    event: str
    text: str
    version: Version


def incident_versions(conn: Connection, iid: str) -> list[Version]:
    """Every stored version of an incident, oldest first (the raw log's lines of it)."""
    try:
        stored = versions(conn, "incident", iid)
    except NotFoundError:
        return []
    spec = KIND_BY_NAME["incident"]
    out = []
    for n, v in enumerate(stored, 1):
        raw = v.raw
        where = f"raw chunk {raw.seq}, line {raw.line + 1}"
        if raw.format == "csv":
            row = json.loads(raw.payload)
            row.pop(KIND_KEY, None)
            _, record = validate_csv_row(spec, row, "raw log", where, raw.lenient)
        else:
            kind, record = validate_json_line(raw.payload, "raw log", where, raw.lenient)
            if kind != "incident":
                raise RecordError("raw log", where, "kind", f"event says incident, payload {kind}")
        full = {f.name: record.get(f.name) for f in spec.fields}
        recorded_at = v.imported_at
        assert isinstance(recorded_at, datetime)
        out.append(Version(n, raw.seq, recorded_at, v.source, full))
    return out


def _sev(value: Any) -> str:
    return f"Sev-{value}" if value is not None else "(none)"


def _shown(value: Any) -> str:
    return "(none)" if value is None or value == "" else str(value)


def _set_text(field: str, rec: Record) -> str:
    if field == "started_at":
        where = f" on {rec['service']}" if rec.get("service") else ""
        title = rec.get("title") or rec["id"]
        return f"Impact started: {title} ({_sev(rec.get('severity'))}{where})"
    if field == "detected_at":
        return "Detected"
    if field == "acknowledged_at":
        by = rec.get("acknowledged_by")
        return f"Acknowledged by {by}" if by else "Acknowledged"
    if field == "mitigated_at":
        return "Mitigated (service restored)"
    return "Resolved"


def _root_cause_text(rec: Record) -> str:
    cause = rec.get("root_cause")
    key = rec.get("root_cause_key")
    text = f"root cause: {cause}" if cause else "root cause: (none)"
    return text + (f" (key {key})" if key else "")


def _time_changes(
    v: Version, prev: Record, held: set[tuple[str, Any]], cause_changed: bool
) -> list[Change]:
    """The time fields that version `v` sets, changes or clears."""
    rec = v.record
    out = []
    for field, (set_event, clear_event, cleared) in TIME_FIELDS.items():
        new, old = rec.get(field), prev.get(field)
        if new == old:
            continue
        if new is None:
            out.append(Change(v.recorded_at, clear_event, cleared.format(iso(old)), v))
            continue
        text = _set_text(field, rec)
        if old is not None:
            text += f" (replaces {iso(old)})"
        elif (field, new) in held:
            text += " (again)"
        held.add((field, new))
        if field == "resolved_at" and cause_changed:
            text += f"; {_root_cause_text(rec)}"
        out.append(Change(new, set_event, text, v))
    return out


def _field_changes(v: Version, prev: Record, cause_changed: bool) -> list[Change]:
    """The other fields that version `v` changes (after the first version)."""
    rec = v.record

    def diff(field: str, event: str, label: str, shown: Any = _shown) -> Change:
        return Change(v.recorded_at, event,
                      f"{label} {shown(prev.get(field))} -> {shown(rec.get(field))}", v)

    out = []
    if rec.get("severity") != prev.get("severity"):
        out.append(diff("severity", "severity", "Severity", _sev))
    if rec.get("service") != prev.get("service"):
        out.append(diff("service", "reassigned", "Service"))
    if rec.get("title") != prev.get("title"):
        out.append(diff("title", "retitled", "Title"))
    if (rec.get("acknowledged_by") != prev.get("acknowledged_by")
            and rec.get("acknowledged_at") == prev.get("acknowledged_at")):
        out.append(diff("acknowledged_by", "acknowledger", "Acknowledged by"))
    resolved_here = rec.get("resolved_at") not in (None, prev.get("resolved_at"))
    if cause_changed and not resolved_here:
        out.append(Change(v.recorded_at, "root cause", "R" + _root_cause_text(rec)[1:], v))
    if rec.get("caused_by_change") != prev.get("caused_by_change"):
        out.append(diff("caused_by_change", "cause", "Caused by change"))
    return out


def state_changes(versions: Sequence[Version]) -> list[Change]:
    """The state changes between consecutive versions (see the module's docstring)."""
    out: list[Change] = []
    held: set[tuple[str, Any]] = set()  # (time field, value) of every earlier version
    prev: Record = {}
    for v in versions:
        rec = v.record
        cause_changed = any(
            rec.get(f) != prev.get(f) for f in ("root_cause", "root_cause_key")
        )
        out += _time_changes(v, prev, held, cause_changed)
        if v.number > 1:
            out += _field_changes(v, prev, cause_changed)
        prev = rec
    return out
