"""PagerDuty: webhooks v3 (signed with X-PagerDuty-Signature) and REST API exports.

Every `incident.*` webhook whose `event.data` is an incident becomes one native `incident`
record `pd-<incident id>`; the REST API's `/incidents` list and `/log_entries` list (files, or
a directory of page files) give the same records for `opsledger import --from pagerduty`.
The mapping rules are stated in docs/connectors/pagerduty.md; in short:

- `title` = title; `service` = the PagerDuty service's name (`service.summary`), as is.
- `severity`: priority P1 -> 1, P2 -> 2, P3/P4/P5 -> 3; no priority (or another priority
  name) -> urgency high -> 2, low -> 3; neither -> 3.
- `started_at` and `detected_at` = `created_at` (for `incident.triggered` without one: the
  event time); log entries: `detected_at` = the first `trigger_log_entry`. PagerDuty records
  no mitigation, so `mitigated_at` is never set here.
- `acknowledged_at` = the first acknowledgement (`incident.acknowledged`), `resolved_at` =
  the latest resolution (`incident.resolved`); a later event that shows the incident open
  again (status triggered/acknowledged) clears an earlier resolution.

Payloads update records (patch): `merge` combines a parsed record with the stored one, so
re-deliveries change nothing and out-of-order deliveries keep what they should. Parsed
records may carry two private keys that `merge` removes: `_open_at` (a time at which the
incident was seen open) and `_where` (where in the input, for error messages).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from opsledger.connectors.base import (
    Connector,
    NativeRecord,
    PayloadError,
    hmac_sha256_hex,
    load_json,
    register,
    timestamp,
)

NAME = "pagerduty"
SIGNATURE_HEADER = "X-PagerDuty-Signature"
STATUSES = ("triggered", "acknowledged", "resolved")
_PRIORITY = re.compile(r"P([1-5])", re.IGNORECASE)
_OPEN_AT = "_open_at"
_WHERE = "_where"


# -- signature ---------------------------------------------------------------------------


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is None:
        lowered = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == lowered), None)
    return value


def verify(body: bytes, headers: Mapping[str, str], secret: str) -> bool | None:
    """PagerDuty's v1 signature: `v1=<hex HMAC-SHA256 of the raw body>`, one or more of them
    comma-separated (several during a secret rotation); any match passes. None when no
    signature was sent. Compared in constant time."""
    header = _header(headers, SIGNATURE_HEADER)
    if header is None or not header.strip():
        return None
    expected = ("v1=" + hmac_sha256_hex(secret, body)).encode()
    matched = False
    for candidate in header.split(","):
        if hmac.compare_digest(candidate.strip().encode("utf-8", "replace"), expected):
            matched = True
    return matched


# -- field rules -------------------------------------------------------------------------


def _obj(value: Any, where: str, what: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(NAME, where, f"must be {what}, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(NAME, where, f"must be a string, got {_shown(value)}")
    return value or None


def _incident_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(
            NAME, where, f"an incident id must be a non-empty string, got {_shown(value)}"
        )
    return value.strip()


def severity(incident: Mapping[str, Any], where: str) -> int:
    """Priority P1 -> 1, P2 -> 2, P3..P5 -> 3; otherwise urgency high -> 2, low -> 3;
    neither -> 3."""
    urgency = incident.get("urgency")
    if urgency not in (None, "high", "low"):
        raise PayloadError(NAME, f"{where}.urgency", f"must be high or low, got {_shown(urgency)}")
    priority = incident.get("priority")
    if priority is not None:
        summary = _obj(priority, f"{where}.priority", "an object or null").get("summary")
        if summary is not None and not isinstance(summary, str):
            raise PayloadError(NAME, f"{where}.priority.summary", "must be a string")
        match = _PRIORITY.fullmatch((summary or "").strip())
        if match:
            return min(int(match.group(1)), 3)
    return 2 if urgency == "high" else 3


def _service(incident: Mapping[str, Any], where: str) -> str | None:
    service = incident.get("service")
    if service is None:
        return None
    return _text(_obj(service, f"{where}.service").get("summary"), f"{where}.service.summary")


def _status(incident: Mapping[str, Any], where: str, required: bool) -> str | None:
    status = incident.get("status")
    if status is None and not required:
        return None
    if status not in STATUSES:
        raise PayloadError(
            NAME, f"{where}.status", f"must be one of {', '.join(STATUSES)}, got {_shown(status)}"
        )
    return str(status)


def _base(incident: Mapping[str, Any], where: str) -> NativeRecord:
    rec: NativeRecord = {
        "kind": "incident",
        "id": "pd-" + _incident_id(incident.get("id"), f"{where}.id"),
        "severity": severity(incident, where),
        _WHERE: where,
    }
    title = _text(incident.get("title"), f"{where}.title")
    if title:
        rec["title"] = title
    service = _service(incident, where)
    if service:
        rec["service"] = service
    if incident.get("created_at") is not None:
        # PagerDuty created the incident when an event or a person triggered it: detection
        created = timestamp(NAME, f"{where}.created_at", incident["created_at"])
        rec["started_at"] = rec["detected_at"] = created
    return rec


# -- webhooks v3 -------------------------------------------------------------------------


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    """One v3 webhook payload -> at most one incident record (none for events that carry no
    incident: notes, responders, status updates, services, pings)."""
    payload = _obj(load_json(NAME, body), "", "a JSON object")
    event = _obj(payload.get("event"), "event", "an object (a v3 webhook payload)")
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise PayloadError(NAME, "event.event_type", "must be a non-empty string")
    occurred = timestamp(NAME, "event.occurred_at", event.get("occurred_at"))
    data = event.get("data")
    if data is None:
        return []
    data = _obj(data, "event.data")
    if data.get("type") != "incident":
        return []
    rec = _base(data, "event.data")
    status = _status(data, "event.data", required=False)
    if "started_at" not in rec and event_type == "incident.triggered":
        rec["started_at"] = rec["detected_at"] = occurred  # the event of its creation
    if "started_at" not in rec:
        rec[_WHERE] = "event.data.created_at"  # what an unknown incident would need
    if event_type == "incident.acknowledged":
        rec["acknowledged_at"] = occurred
    elif event_type == "incident.resolved":
        rec["resolved_at"] = occurred
    if status in ("triggered", "acknowledged") and event_type != "incident.resolved":
        rec[_OPEN_AT] = occurred
    return [rec]


# -- REST API exports --------------------------------------------------------------------


def _rest_incident(incident: Any, where: str) -> NativeRecord:
    incident = _obj(incident, where)
    rec = _base(incident, where)
    if "started_at" not in rec:
        raise PayloadError(NAME, f"{where}.created_at", "missing (every incident has one)")
    acks = incident.get("acknowledgements") or []
    if not isinstance(acks, list):
        raise PayloadError(NAME, f"{where}.acknowledgements", "must be a list")
    times = [
        timestamp(
            NAME,
            f"{where}.acknowledgements[{i}].at",
            _obj(a, f"{where}.acknowledgements[{i}]").get("at"),
        )
        for i, a in enumerate(acks)
    ]
    if times:
        rec["acknowledged_at"] = min(times, key=_t)
    status = _status(incident, where, required=True)
    changed = incident.get("last_status_change_at")
    if status == "resolved":
        if incident.get("resolved_at") is not None:
            rec["resolved_at"] = timestamp(NAME, f"{where}.resolved_at", incident["resolved_at"])
        elif changed is not None:
            # status resolved: its last status change is the resolution
            rec["resolved_at"] = timestamp(NAME, f"{where}.last_status_change_at", changed)
        else:
            raise PayloadError(
                NAME,
                where,
                "status is resolved but neither resolved_at nor last_status_change_at says when",
            )
    elif changed is not None:
        rec[_OPEN_AT] = timestamp(NAME, f"{where}.last_status_change_at", changed)
    return rec


_LOG_FIELDS = {
    "trigger_log_entry": "detected_at",
    "acknowledge_log_entry": "acknowledged_at",
    "resolve_log_entry": "resolved_at",
}


def _log_entries(entries: Any, where: str, times: dict[str, dict[str, list[str]]]) -> None:
    """trigger_log_entry, acknowledge_log_entry and resolve_log_entry times, per incident
    record id, into `times`. Other entry types change no native field and are skipped."""
    if not isinstance(entries, list):
        raise PayloadError(NAME, where, "must be a list")
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        entry = _obj(entry, at)
        etype = entry.get("type")
        if not isinstance(etype, str):
            raise PayloadError(NAME, f"{at}.type", "must be a string")
        if etype not in _LOG_FIELDS:
            continue
        when = timestamp(NAME, f"{at}.created_at", entry.get("created_at"))
        incident = _obj(entry.get("incident"), f"{at}.incident")
        rid = "pd-" + _incident_id(incident.get("id"), f"{at}.incident.id")
        per = times.setdefault(
            rid, {"detected_at": [], "acknowledged_at": [], "resolved_at": [], _WHERE: [at]}
        )
        per[_LOG_FIELDS[etype]].append(when)


def _log_patch(rid: str, per: dict[str, list[str]]) -> NativeRecord:
    """The first trigger, the first acknowledgement and the latest resolution of the log
    entries."""
    patch: NativeRecord = {"kind": "incident", "id": rid}
    if per["detected_at"]:
        patch["detected_at"] = min(per["detected_at"], key=_t)
    if per["acknowledged_at"]:
        patch["acknowledged_at"] = min(per["acknowledged_at"], key=_t)
    if per["resolved_at"]:
        patch["resolved_at"] = max(per["resolved_at"], key=_t)
    patch[_WHERE] = f"{per[_WHERE][0]} (log entries of incident {rid[3:]})"
    return patch


def _files(path: Path) -> list[Path]:
    return sorted(path.rglob("*.json")) if path.is_dir() else [path]


def parse_path(path: Path) -> list[NativeRecord]:
    """REST API exports: a JSON file (or a directory of them, e.g. one per page) holding the
    `/incidents` list response ({"incidents": [...]}), the `/log_entries` list response
    ({"log_entries": [...]}), a single incident ({"incident": {...}}), or several of these."""
    incidents: dict[str, NativeRecord] = {}
    times: dict[str, dict[str, list[str]]] = {}
    files = _files(path)
    if not files:
        raise PayloadError(NAME, str(path), "no .json files in this directory")
    for file in files:
        doc = _obj(load_json(NAME, file.read_bytes()), file.name, "a JSON object")
        if not any(k in doc for k in ("incidents", "incident", "log_entries")):
            raise PayloadError(
                NAME,
                file.name,
                "not a PagerDuty REST API export: expected incidents, incident or log_entries",
            )
        listed = doc.get("incidents", [])
        if not isinstance(listed, list):
            raise PayloadError(NAME, f"{file.name}: incidents", "must be a list")
        found = [(f"{file.name}: incidents[{i}]", inc) for i, inc in enumerate(listed)]
        if "incident" in doc:
            found.append((f"{file.name}: incident", doc["incident"]))
        for where, inc in found:
            rec = _rest_incident(inc, where)
            earlier = incidents.get(rec["id"])
            incidents[rec["id"]] = (
                rec if earlier is None else _keep_private(_combine(earlier, rec), rec)
            )
        if "log_entries" in doc:
            _log_entries(doc["log_entries"], f"{file.name}: log_entries", times)
    out: list[NativeRecord] = []
    for rid, rec in incidents.items():
        if rid in times:
            # the log entries first, the incident (its state at export) on top
            rec = _keep_private(_combine(_log_patch(rid, times.pop(rid)), rec), rec)
        out.append(rec)
    out.extend(_log_patch(rid, per) for rid, per in times.items())
    return out


def _keep_private(combined: NativeRecord, rec: NativeRecord) -> NativeRecord:
    """`combined` with the private keys of `rec`, for the merge with the stored record."""
    return combined | {k: v for k, v in rec.items() if k.startswith("_")}


# -- merge -------------------------------------------------------------------------------


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _combine(base: NativeRecord, update: NativeRecord) -> NativeRecord:
    """The update's fields replace the base's, except: the earliest `started_at`,
    `detected_at` and `acknowledged_at` and the latest `resolved_at` win, and an `_open_at`
    later than the resolution clears it. Private keys of the update are dropped."""
    update = dict(update)
    open_at = update.pop(_OPEN_AT, None)
    update.pop(_WHERE, None)
    out = {**{k: v for k, v in base.items() if not k.startswith("_")}, **update}
    for field, pick in (
        ("started_at", min), ("detected_at", min), ("acknowledged_at", min), ("resolved_at", max)
    ):
        if base.get(field) and update.get(field):
            out[field] = pick(base[field], update[field], key=_t)
    if open_at and out.get("resolved_at") and _t(out["resolved_at"]) < _t(open_at):
        del out["resolved_at"]
    return out


def merge(stored: NativeRecord, update: NativeRecord) -> NativeRecord:
    """Combine a parsed record with the stored one ({} when none)."""
    out = _combine(stored, update)
    if not stored:
        missing = [f for f in ("severity", "started_at") if f not in out]
        if missing:
            raise PayloadError(
                NAME,
                str(update.get(_WHERE, "")),
                f"incident {out['id'][3:]} is not in the ledger, and this input does not give "
                f"its {' and '.join(missing)}: deliver its incident.triggered webhook or import "
                "it from the /incidents export first",
            )
    return out


CONNECTOR = register(
    Connector(
        NAME,
        parse,
        verify=verify,
        description="PagerDuty webhooks v3 and REST API exports (incidents, log entries)",
        parse_path=parse_path,
        merge=merge,
    )
)
