"""PagerDuty Events API v2 compatible endpoint (`POST /v2/enqueue`).

Any tool that can page PagerDuty can send here: `trigger`, `acknowledge` and `resolve` events
correlated by `dedup_key`. The `routing_key` of the body may be an opsledger ingest token.

Alert episodes follow PagerDuty's documented de-duplication: events with a dedup_key apply to
the alert of that key that is open; once it is resolved, a new trigger opens a new alert, and
an acknowledge or resolve changes nothing. So one dedup_key may have several alert records
(Alertmanager, for one, sends the same dedup_key for every episode of an alert group). Each
record is `ev-<hash of dedup_key>-<epoch seconds of its first trigger>`; `fingerprint` holds
the dedup_key itself. Which episode an event belongs to is found from the stored records
(`prepare`), by the event's time, so that retries and late deliveries land on the episode
they belong to:

- trigger at t: the first episode not resolved before t. If it started at or before t, the
  trigger is a repeat and changes nothing; if it started after t (a late trigger), its start
  moves back to t. With no such episode, t starts a new one.
- acknowledge or resolve at t: the latest episode that started at or before t. The earliest
  acknowledgement and the earliest resolution win; an acknowledgement after the resolution
  changes nothing (PagerDuty drops it too). With no episode started at or before t the event
  is refused (422): it cannot be applied, and is kept in the rejected-payload log.

Event times come from the payload, never from opsledger's clock: every event needs
`payload.timestamp` (RFC 3339 with an offset), or, for senders that cannot set it (such as
Alertmanager's pagerduty_config), `payload.custom_details.opsledger_timestamp`. PagerDuty's
API makes the timestamp optional and has none for acknowledge and resolve; opsledger refuses
an event without one (422) rather than guess.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select

from opsledger.connectors.base import (
    Connector,
    NativeRecord,
    PayloadError,
    load_json,
    register,
    short_hash,
    timestamp,
)
from opsledger.records.tables import RECORD_TABLES

if TYPE_CHECKING:
    from opsledger.ingest.importer import ImportResult

NAME = "events"
ACTIONS = ("trigger", "acknowledge", "resolve")
# PagerDuty's severities -> opsledger's: an `error` pages like `critical` in PagerDuty
SEVERITY = {"critical": "critical", "error": "critical", "warning": "warning", "info": "info"}
TIME_DETAIL = "opsledger_timestamp"
MAX_DEDUP_KEY = 255  # PagerDuty's limit

# keys of the parsed record that `prepare` consumes (never stored)
_ACTION, _KEY, _AT = "_action", "_dedup_key", "_at"


def _str(where: str, value: Any, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise PayloadError(NAME, where, "is required")
        return None
    if not isinstance(value, str):
        raise PayloadError(NAME, where, f"must be a string, got {json.dumps(value)}")
    if required and not value.strip():
        raise PayloadError(NAME, where, "must not be empty")
    return value


def _objects(where: str, value: Any, key: str) -> list[dict[str, Any]] | None:
    """`links` and `images`: lists of objects, each with the string `key` (href, src)."""
    if value is None:
        return None
    if not isinstance(value, list):
        raise PayloadError(NAME, where, "must be a list of objects")
    for n, item in enumerate(value):
        if not isinstance(item, dict):
            raise PayloadError(NAME, f"{where}[{n}]", "must be an object")
        _str(f"{where}[{n}].{key}", item.get(key), required=True)
    return value


def dedup_key_for(payload: Mapping[str, Any]) -> str:
    """The dedup_key of a trigger sent without one. PagerDuty makes up a random UUID; opsledger
    hashes the event payload instead, so that a retried trigger lands on the same alert. The
    payload holds the event's timestamp, so distinct events still get distinct keys. The
    routing_key is left out: here it is a credential, and rotating it must not change alerts."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _event_time(payload: Mapping[str, Any]) -> str:
    if payload.get("timestamp") is not None:
        return timestamp(NAME, "payload.timestamp", payload["timestamp"])
    details = payload.get("custom_details")
    if isinstance(details, dict) and details.get(TIME_DETAIL) is not None:
        where = f"payload.custom_details.{TIME_DETAIL}"
        return timestamp(NAME, where, details[TIME_DETAIL])
    raise PayloadError(
        NAME,
        "payload.timestamp",
        "is required: opsledger takes event times from the event, never from its own clock "
        f"(send payload.timestamp, RFC 3339 with an offset, or payload.custom_details."
        f"{TIME_DETAIL} when the sender cannot set payload.timestamp)",
    )


def _runbook(details: Any, links: list[dict[str, Any]] | None) -> str | None:
    if isinstance(details, dict) and isinstance(details.get("runbook_url"), str):
        return str(details["runbook_url"])
    for link in links or []:
        if "runbook" in str(link.get("text") or "").lower():
            return str(link["href"])
    return None


def _trigger(event: Mapping[str, Any], payload: Mapping[str, Any]) -> NativeRecord:
    summary = _str("payload.summary", payload.get("summary"), required=True)
    source = _str("payload.source", payload.get("source"), required=True)
    severity = payload.get("severity")
    if severity not in SEVERITY:
        raise PayloadError(
            NAME,
            "payload.severity",
            f"must be one of critical, error, warning, info, got {json.dumps(severity)}",
        )
    labels: dict[str, str] = {"source": str(source), "severity": str(severity)}
    for key in ("component", "group", "class"):
        value = _str(f"payload.{key}", payload.get(key))
        if value:
            labels[key] = value
    links = _objects("links", event.get("links"), "href")
    images = _objects("images", event.get("images"), "src")
    client = _str("client", event.get("client"))
    client_url = _str("client_url", event.get("client_url"))
    details = payload.get("custom_details")
    annotations: dict[str, Any] = {"summary": summary}
    extras = {"custom_details": details, "links": links, "images": images, "client": client}
    annotations.update({k: v for k, v in extras.items() if v not in (None, "", [], {})})
    rec: NativeRecord = {
        "kind": "alert",
        "name": labels.get("class") or summary,
        "source": NAME,
        "severity": SEVERITY[str(severity)],
        "labels": labels,
        "annotations": annotations,
    }
    if isinstance(details, dict) and isinstance(details.get("service"), str):
        rec["service"] = details["service"]
    runbook = _runbook(details, links)
    if runbook:
        rec["runbook_url"] = runbook
    if client_url:
        rec["generator_url"] = client_url
    return rec


def _event(body: bytes) -> tuple[dict[str, Any], str, dict[str, Any], str]:
    """(event, action, payload, dedup_key) of a well-formed body; PayloadError otherwise."""
    event = load_json(NAME, body)
    if not isinstance(event, dict):
        raise PayloadError(NAME, "", "the event must be a JSON object")
    action = event.get("event_action")
    if action not in ACTIONS:
        raise PayloadError(
            NAME,
            "event_action",
            f"must be trigger, acknowledge or resolve, got {json.dumps(action)}",
        )
    _str("routing_key", event.get("routing_key"))
    payload = event.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise PayloadError(NAME, "payload", "must be an object")
    key = _str("dedup_key", event.get("dedup_key"))
    if key is None:
        if action != "trigger":
            raise PayloadError(NAME, "dedup_key", f"is required to {action} an alert")
        key = dedup_key_for(payload)
    if not key.strip():
        raise PayloadError(NAME, "dedup_key", "must not be empty")
    if len(key) > MAX_DEDUP_KEY:
        raise PayloadError(NAME, "dedup_key", f"is over {MAX_DEDUP_KEY} characters")
    return event, str(action), payload, key


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    """One event -> one alert record to be bound to its episode by `prepare`."""
    event, action, payload, key = _event(body)
    at = _event_time(payload)
    rec = _trigger(event, payload) if action == "trigger" else {"kind": "alert"}
    rec.update({_ACTION: action, _KEY: key, _AT: at, "fingerprint": key})
    return [rec]


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _episode_id(key: str, t: datetime, taken: set[str]) -> str:
    rid = f"ev-{short_hash(key)}-{int(t.timestamp())}"
    n = 2
    while rid in taken:  # two episodes started within one second
        rid = f"ev-{short_hash(key)}-{int(t.timestamp())}-{n}"
        n += 1
    return rid


def _bind(conn: Connection, rec: NativeRecord) -> NativeRecord:
    action, key, at = rec.pop(_ACTION), rec.pop(_KEY), rec.pop(_AT)
    t = _dt(at)
    alerts = RECORD_TABLES["alert"]
    episodes = conn.execute(
        select(alerts.c.id, alerts.c.fired_at, alerts.c.resolved_at, alerts.c.acknowledged_at)
        .where(alerts.c.fingerprint == key, alerts.c.source == NAME)
        .order_by(alerts.c.fired_at, alerts.c.id)
    ).all()
    if action == "trigger":
        for ep in episodes:
            if ep.resolved_at is None or ep.resolved_at >= t:
                if ep.fired_at <= t:  # a repeat of the open (or then open) alert
                    return {"kind": "alert", "id": ep.id}
                return {"kind": "alert", "id": ep.id, "fired_at": at}  # a late first trigger
        return {**rec, "id": _episode_id(key, t, {ep.id for ep in episodes}), "fired_at": at}
    started = [ep for ep in episodes if ep.fired_at <= t]
    if not started:
        when = "" if not episodes else f" at or before {at}"
        raise PayloadError(
            NAME,
            "dedup_key",
            f"no alert with dedup_key {json.dumps(key)} was triggered{when}: "
            f"nothing to {action} (send the trigger first)",
        )
    ep = started[-1]
    if action == "resolve":
        if ep.resolved_at is None or t < ep.resolved_at:
            return {"kind": "alert", "id": ep.id, "resolved_at": at}
        return {"kind": "alert", "id": ep.id}  # already resolved
    if ep.resolved_at is not None and t > ep.resolved_at:
        return {"kind": "alert", "id": ep.id}  # acknowledged after it resolved: dropped
    if ep.acknowledged_at is None or t < ep.acknowledged_at:
        return {"kind": "alert", "id": ep.id, "acknowledged_at": at}
    return {"kind": "alert", "id": ep.id}


def prepare(conn: Connection, records: list[NativeRecord]) -> list[NativeRecord]:
    return [_bind(conn, dict(rec)) if _ACTION in rec else rec for rec in records]


def token_in_body(body: bytes) -> str | None:
    """The routing_key, which may be an ingest token (never raises: a bad body is reported
    after authentication)."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        return None
    key = event.get("routing_key") if isinstance(event, dict) else None
    return key if isinstance(key, str) and key.strip() else None


def respond(body: bytes, result: ImportResult) -> dict[str, Any]:
    """PagerDuty's answer to an accepted event."""
    return {"status": "success", "message": "Event processed", "dedup_key": _event(body)[3]}


CONNECTOR = register(
    Connector(
        NAME,
        parse,
        description="PagerDuty Events API v2 compatible (POST /v2/enqueue)",
        token_in_body=token_in_body,
        prepare=prepare,
        respond=respond,
    )
)
