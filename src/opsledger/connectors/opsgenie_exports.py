"""Opsgenie REST API exports for `opsledger import --from opsgenie FILE|DIR`.

Three kinds of file, all `{"data": [...], ...}` responses as the API returns them:

- List Alerts (`GET /v2/alerts`): one `alert` record `og-<id>` per alert;
- List Alert Logs (`GET /v2/alerts/{id}/logs`), saved as `<alert id>.logs.json` (the
  response does not name its alert, so the file name must): the first acknowledgement
  (`acknowledged_at`, `acknowledged_by` = the entry's `owner`) and the latest close
  (`resolved_at`) of that alert;
- List Incidents (`GET /v1/incidents`): one `incident` record `og-<id>` per incident.

The rules are stated in docs/connectors/opsgenie.md. A directory is read as one export:
its `*.json` files sorted by name; alerts and incidents are applied before the logs, so a
directory can hold an alert list and the logs of its alerts.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from opsledger.connectors.base import NativeRecord, PayloadError, load_json
from opsledger.connectors.opsgenie import (
    NAME,
    _alert,
    _iso,
    _obj,
    _required_text,
    _shown,
    _t,
    _tags,
    _text,
    when,
)

LOGS_SUFFIX = ".logs.json"
# the alert log messages that change a field (Opsgenie writes e.g. "Alert acknowledged via
# web[...]", "Alert closed via API[...]"); the match is on the start of the text
ACK_LOG = "alert acknowledged"
CLOSE_LOG = "alert closed"
INCIDENT_STATUSES = ("open", "resolved", "closed")
SEVERITY = {"P1": 1, "P2": 2, "P3": 3, "P4": 3, "P5": 3}
_OPEN_AT = "_open_at"
_WHERE = "_where"


# -- List Alerts -------------------------------------------------------------------------


def _after(start: str, millis: Any, where: str) -> str:
    if isinstance(millis, bool) or not isinstance(millis, int) or millis < 0:
        raise PayloadError(NAME, where, f"must be milliseconds (an integer), got {_shown(millis)}")
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    return _iso(begin + timedelta(milliseconds=millis))


def exported_alert(alert: dict[str, Any], where: str) -> NativeRecord:
    rec = _alert(alert, where, "id")
    status = alert.get("status")
    if status not in ("open", "closed"):
        raise PayloadError(NAME, f"{where}.status", f"must be open or closed, got {_shown(status)}")
    acknowledged = alert.get("acknowledged", False)
    if not isinstance(acknowledged, bool):
        raise PayloadError(NAME, f"{where}.acknowledged", "must be true or false")
    report = _obj(alert.get("report") or {}, f"{where}.report")
    if acknowledged:
        if report.get("ackTime") is None:
            raise PayloadError(
                NAME, f"{where}.report.ackTime", "missing: the alert is acknowledged, but when?"
            )
        rec["acknowledged_at"] = _after(
            rec["fired_at"], report["ackTime"], f"{where}.report.ackTime"
        )
        who = _text(report.get("acknowledgedBy"), f"{where}.report.acknowledgedBy")
        if who:
            rec["acknowledged_by"] = who
    if status == "closed":
        if report.get("closeTime") is None:
            raise PayloadError(
                NAME, f"{where}.report.closeTime", "missing: the alert is closed, but when?"
            )
        rec["resolved_at"] = _after(
            rec["fired_at"], report["closeTime"], f"{where}.report.closeTime"
        )
    return rec


# -- List Alert Logs ---------------------------------------------------------------------


def alert_logs(alert_id: str, data: list[Any], where: str) -> NativeRecord | None:
    """The first acknowledgement and the latest close in one alert's log entries, as a patch
    of the alert `og-<alert_id>`; None when the entries hold neither."""
    acks: list[tuple[str, str | None]] = []
    closes: list[str] = []
    for i, entry in enumerate(data):
        at = f"{where}[{i}]"
        entry = _obj(entry, at)
        text = _text(entry.get("log"), f"{at}.log") or ""
        kind = text.strip().lower()
        if not (kind.startswith(ACK_LOG) or kind.startswith(CLOSE_LOG)):
            continue  # views, notifications, notes, unacknowledgements ...: no field
        time = when(entry.get("createdAt"), f"{at}.createdAt")
        if kind.startswith(ACK_LOG):
            acks.append((time, _text(entry.get("owner"), f"{at}.owner")))
        else:
            closes.append(time)
    if not acks and not closes:
        return None
    patch: NativeRecord = {"kind": "alert", "id": "og-" + alert_id,
                           _WHERE: f"{where} (logs of alert {alert_id})"}
    if acks:
        first, by = min(acks, key=lambda a: _t(a[0]))
        patch["acknowledged_at"] = first
        if by:
            patch["acknowledged_by"] = by
    if closes:
        patch["resolved_at"] = max(closes, key=_t)
    return patch


# -- List Incidents ----------------------------------------------------------------------


def exported_incident(incident: dict[str, Any], where: str) -> NativeRecord:
    """An Incident API incident -> a native incident record `og-<id>`."""
    rec: NativeRecord = {
        "kind": "incident",
        "id": "og-" + _required_text(incident.get("id"), f"{where}.id").strip(),
        "title": _required_text(incident.get("message"), f"{where}.message"),
        _WHERE: where,
    }
    priority = incident.get("priority")
    if priority not in SEVERITY:
        raise PayloadError(NAME, f"{where}.priority", f"must be P1 to P5, got {_shown(priority)}")
    rec["severity"] = SEVERITY[str(priority)]
    created = when(incident.get("createdAt"), f"{where}.createdAt")
    start = incident.get("impactStartDate")
    rec["started_at"] = when(start, f"{where}.impactStartDate") if start is not None else created
    rec["detected_at"] = created
    extra = incident.get("extraProperties") or {}
    service = _text(_obj(extra, f"{where}.extraProperties").get("service"),
                    f"{where}.extraProperties.service")
    if service:
        rec["service"] = service
    _tags(incident.get("tags"), f"{where}.tags")  # checked, not kept: no incident field
    status = incident.get("status")
    if status not in INCIDENT_STATUSES:
        raise PayloadError(NAME, f"{where}.status",
                           f"must be one of {', '.join(INCIDENT_STATUSES)}, got {_shown(status)}")
    end = incident.get("impactEndDate")
    if end is not None:
        rec["mitigated_at"] = when(end, f"{where}.impactEndDate")
    if status == "open":
        rec[_OPEN_AT] = when(incident.get("updatedAt"), f"{where}.updatedAt")
    elif end is None:
        raise PayloadError(
            NAME, f"{where}.impactEndDate",
            f"missing: the incident is {status}, but the export does not say when its impact "
            "ended",
        )
    else:
        rec["resolved_at"] = rec["mitigated_at"]
    return rec


def merge_incident(stored: NativeRecord, update: NativeRecord) -> NativeRecord:
    """The export's fields replace the stored ones (fields it does not give, such as an
    acknowledgement or a root cause recorded by hand, are kept), except: the earliest
    `started_at` and `detected_at` win, and an open incident updated after a stored
    resolution is open again (reopened): the resolution is cleared."""
    update = dict(update)
    open_at = update.pop(_OPEN_AT, None)
    update.pop(_WHERE, None)
    out = {**stored, **update}
    for field in ("started_at", "detected_at"):
        if stored.get(field) and update.get(field):
            out[field] = min(stored[field], update[field], key=_t)
    if open_at and out.get("resolved_at") and _t(out["resolved_at"]) < _t(open_at):
        del out["resolved_at"]
    return out


# -- files -------------------------------------------------------------------------------


def _kind_of(item: Any, where: str) -> str:
    """`incident` or `alert`, by the fields only one of them has."""
    item = _obj(item, where)
    incident = "impactStartDate" in item or "impactedServices" in item
    alert = "acknowledged" in item or "alias" in item
    if incident == alert:
        raise PayloadError(
            NAME, where,
            "cannot tell an alert (List Alerts: acknowledged, alias) from an incident (List "
            "Incidents: impactStartDate, impactedServices)",
        )
    return "incident" if incident else "alert"


def parse_exports(path: Path) -> list[NativeRecord]:
    files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
    if not files:
        raise PayloadError(NAME, str(path), "no .json files in this directory")
    records: list[NativeRecord] = []
    patches: list[NativeRecord] = []
    for file in files:
        doc = _obj(load_json(NAME, file.read_bytes()), file.name, "a JSON object")
        data = doc.get("data")
        if not isinstance(data, list):
            raise PayloadError(
                NAME, f"{file.name}: data",
                "must be a list (a List Alerts, List Alert Logs or List Incidents response)",
            )
        if file.name.endswith(LOGS_SUFFIX):
            alert_id = file.name[: -len(LOGS_SUFFIX)].strip()
            if not alert_id:
                raise PayloadError(NAME, file.name, f"name it <alert id>{LOGS_SUFFIX}")
            patch = alert_logs(alert_id, data, f"{file.name}: data")
            if patch is not None:
                patches.append(patch)
            continue
        for i, item in enumerate(data):
            where = f"{file.name}: data[{i}]"
            if isinstance(item, dict) and "log" in item and "offset" in item:
                raise PayloadError(
                    NAME, where, "an alert log entry, which does not name its alert: save the "
                    f"logs of alert ID as ID{LOGS_SUFFIX}",
                )
            if _kind_of(item, where) == "incident":
                records.append(exported_incident(item, where))
            else:
                records.append(exported_alert(item, where))
    return records + patches
