"""Opsgenie: alert webhooks (the Webhook integration), and exports of the REST API (List
Alerts, List Alert Logs, List Incidents: connectors/opsgenie_exports.py).

Every webhook payload ({"action": ..., "alert": {...}}) and every alert of an export
({"data": [...]}) becomes one native `alert` record `og-<alertId>`; every incident of an
Incident API export one native `incident` record `og-<id>`. The mapping rules are
stated in docs/connectors/opsgenie.md; in short:

- `name` = the alert's `message`; `fingerprint` = its `alias` (Opsgenie's de-duplication
  key); `fired_at` = `createdAt`; `severity`: P1/P2 -> critical, P3 -> warning, P4/P5 -> info.
- action `Acknowledge` -> `acknowledged_at` = the alert's `updatedAt` (the time of that
  update) and `acknowledged_by` = `username`; action `Close` -> `resolved_at` = `updatedAt`.
- Opsgenie times are epoch milliseconds (`createdAt`) or nanoseconds (`updatedAt`) in
  webhooks, RFC 3339 strings in the API: all are UTC and converted exactly (to the
  microsecond); a string without an offset is refused.

Webhooks carry no signature: Opsgenie sends the bearer token as a custom header. Payloads
update records (patch); `merge` keeps the first acknowledgement and the latest close.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opsledger.connectors.base import (
    Connector,
    NativeRecord,
    PayloadError,
    load_json,
    register,
    timestamp,
)

NAME = "opsgenie"
SEVERITY = {1: "critical", 2: "critical", 3: "warning", 4: "info", 5: "info"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# epoch milliseconds and nanoseconds of the years 1973..5138: the two ranges cannot overlap
_MS = range(10**11, 10**14)
_NS = range(10**17, 10**20)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _obj(value: Any, where: str, what: str = "an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(NAME, where, f"must be {what}, got {_shown(value)}")
    return value


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(NAME, where, f"must be a string, got {_shown(value)}")
    return value or None


def _required_text(value: Any, where: str) -> str:
    text = _text(value, where)
    if text is None or not text.strip():
        raise PayloadError(NAME, where, "missing or empty")
    return text


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def when(value: Any, where: str) -> str:
    """An Opsgenie time as RFC 3339 UTC: epoch milliseconds or nanoseconds (an integer; the
    magnitude tells which), or an RFC 3339 string with an offset."""
    if isinstance(value, str):
        return timestamp(NAME, where, value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise PayloadError(
            NAME, where, f"expected epoch milliseconds or an RFC 3339 time, got {_shown(value)}"
        )
    if value in _MS:
        micros = value * 1000
    elif value in _NS:
        micros = value // 1000  # nanoseconds cut to microseconds
    else:
        raise PayloadError(
            NAME, where, f"{value} is neither epoch milliseconds nor epoch nanoseconds"
        )
    return _iso(_EPOCH + timedelta(microseconds=micros))


def _severity(value: Any, where: str) -> str | None:
    """P1/P2 -> critical, P3 -> warning, P4/P5 -> info (also the numbers 1..5)."""
    if value is None:
        return None
    level: int | None = None
    if isinstance(value, str) and len(value) == 2 and value[0] in "pP" and value[1] in "12345":
        level = int(value[1])
    elif isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5:
        level = value
    if level is None:
        raise PayloadError(NAME, where, f"must be P1 to P5, got {_shown(value)}")
    return SEVERITY[level]


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    obj = _obj(value, where)
    bad = next((k for k, v in obj.items() if not isinstance(v, str)), None)
    if bad is not None:
        raise PayloadError(NAME, f"{where}.{bad}", "must be a string")
    return obj


def _tags(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise PayloadError(NAME, where, "must be a list of strings")
    return value


def _alert(alert: Mapping[str, Any], where: str, id_key: str) -> NativeRecord:
    """The fields every Opsgenie alert object gives (webhook `alert` or API `data[i]`)."""
    rec: NativeRecord = {
        "kind": "alert",
        "id": "og-" + _required_text(alert.get(id_key), f"{where}.{id_key}").strip(),
        "name": _required_text(alert.get("message"), f"{where}.message"),
        "source": NAME,
        "fired_at": when(alert.get("createdAt"), f"{where}.createdAt"),
    }
    level = _severity(alert.get("priority"), f"{where}.priority")
    if level:
        rec["severity"] = level
    details = _strings(alert.get("details"), f"{where}.details")
    if details:
        rec["labels"] = details
        if details.get("service"):
            rec["service"] = details["service"]
    alias = _text(alert.get("alias"), f"{where}.alias")
    if alias:
        rec["fingerprint"] = alias
    notes = {
        "tags": ",".join(_tags(alert.get("tags"), f"{where}.tags")),
        "entity": _text(alert.get("entity"), f"{where}.entity"),
        "description": _text(alert.get("description"), f"{where}.description"),
        "tiny_id": _text(alert.get("tinyId"), f"{where}.tinyId"),
        "source": _text(alert.get("source"), f"{where}.source"),
    }
    annotations = {k: v for k, v in notes.items() if v}
    if annotations:
        rec["annotations"] = annotations
    return rec


# -- webhooks ----------------------------------------------------------------------------


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    """One webhook payload -> one alert record. Every action carries the alert's current
    fields; Acknowledge and Close also set their time."""
    payload = _obj(load_json(NAME, body), "", "a JSON object")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise PayloadError(NAME, "action", "must be a non-empty string (Create, Close, ...)")
    alert = _obj(payload.get("alert"), "alert")
    rec = _alert(alert, "alert", "alertId")
    if action in ("Acknowledge", "Close"):
        at = when(alert.get("updatedAt"), "alert.updatedAt")
        if action == "Acknowledge":
            rec["acknowledged_at"] = at
            user = _text(alert.get("username"), "alert.username")
            if user:
                rec["acknowledged_by"] = user
        else:
            rec["resolved_at"] = at
    return [rec]


# -- exports: `opsledger import --from opsgenie` (connectors/opsgenie_exports.py) -----------


def parse_path(path: Path) -> list[NativeRecord]:
    """List Alerts, alert logs and Incident API exports (see opsgenie_exports)."""
    from opsledger.connectors.opsgenie_exports import parse_exports

    return parse_exports(path)


# -- merge -------------------------------------------------------------------------------


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def merge(stored: NativeRecord, update: NativeRecord) -> NativeRecord:
    """Alerts: the update's fields replace the stored ones, except: the earliest `fired_at`
    and `acknowledged_at` (with its `acknowledged_by`) and the latest `resolved_at` win.
    Incidents (Incident API exports): see opsgenie_exports.merge_incident."""
    if update.get("kind") == "incident":
        from opsledger.connectors.opsgenie_exports import merge_incident

        return merge_incident(stored, update)
    where = update.pop("_where", None)
    if not stored and ("name" not in update or "fired_at" not in update):
        raise PayloadError(
            NAME,
            str(where or ""),
            f"alert {update['id'][3:]} is not in the ledger, and this input does not give its "
            "message and createdAt: import its List Alerts export first (or in the same "
            "directory)",
        )
    out = {**stored, **update}
    if stored.get("fired_at") and update.get("fired_at"):
        out["fired_at"] = min(stored["fired_at"], update["fired_at"], key=_t)
    first, later = stored.get("acknowledged_at"), update.get("acknowledged_at")
    if first and later and _t(first) <= _t(later):
        out["acknowledged_at"] = first
        if stored.get("acknowledged_by"):
            out["acknowledged_by"] = stored["acknowledged_by"]
        else:
            out.pop("acknowledged_by", None)
    if stored.get("resolved_at") and update.get("resolved_at"):
        out["resolved_at"] = max(stored["resolved_at"], update["resolved_at"], key=_t)
    return out


CONNECTOR = register(
    Connector(
        NAME,
        parse,
        description="Opsgenie alert webhooks; List Alerts, alert logs and Incident API exports",
        parse_path=parse_path,
        merge=merge,
    )
)
