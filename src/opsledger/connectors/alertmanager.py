"""Prometheus Alertmanager webhook (payload version 4).

One alert occurrence is one firing episode: the same fingerprint and startsAt. Its id is
`am-<fingerprint>-<startsAt as epoch seconds>`, so repeated notifications and Alertmanager's
retries land on the same record, and the resolved notification completes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from opsledger.connectors.base import (
    Connector,
    NativeRecord,
    PayloadError,
    load_json,
    register,
    short_hash,
    timestamp,
)

NAME = "alertmanager"
SEVERITIES = ("critical", "warning", "info")


def _fingerprint(alert: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    fp = alert.get("fingerprint")
    if isinstance(fp, str) and fp:
        return fp
    # Alertmanager before 0.19 sent no fingerprint: derive a stable one from the label set
    return short_hash(*(f"{k}={v}" for k, v in sorted(labels.items())))


def _alert(alert: Any, i: int) -> NativeRecord:
    where = f"alerts[{i}]"
    if not isinstance(alert, dict):
        raise PayloadError(NAME, where, "an alert must be an object")
    labels = alert.get("labels")
    if not isinstance(labels, dict) or not all(isinstance(v, str) for v in labels.values()):
        raise PayloadError(NAME, f"{where}.labels", "labels must be an object of strings")
    name = labels.get("alertname")
    if not name:
        raise PayloadError(NAME, f"{where}.labels", "no alertname label")
    annotations = alert.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise PayloadError(NAME, f"{where}.annotations", "annotations must be an object")
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        raise PayloadError(NAME, f"{where}.status", f"must be firing or resolved, got {status!r}")
    fired = timestamp(NAME, f"{where}.startsAt", alert.get("startsAt"))
    fp = _fingerprint(alert, labels)
    epoch = int(datetime.fromisoformat(fired.replace("Z", "+00:00")).timestamp())
    rec: NativeRecord = {
        "kind": "alert",
        "id": f"am-{fp}-{epoch}",
        "name": name,
        "source": NAME,
        "fired_at": fired,
        "labels": labels,
        "fingerprint": fp,
    }
    if annotations:
        rec["annotations"] = annotations
    if labels.get("service"):
        rec["service"] = labels["service"]
    if labels.get("severity") in SEVERITIES:
        rec["severity"] = labels["severity"]
    runbook = annotations.get("runbook_url") or labels.get("runbook_url")
    if runbook:
        rec["runbook_url"] = runbook
    if alert.get("generatorURL"):
        rec["generator_url"] = alert["generatorURL"]
    if status == "resolved":
        # endsAt of a firing alert is only Alertmanager's guess of expiry: used when resolved
        rec["resolved_at"] = timestamp(NAME, f"{where}.endsAt", alert.get("endsAt"))
    return rec


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    payload = load_json(NAME, body)
    if not isinstance(payload, dict):
        raise PayloadError(NAME, "", "the payload must be a JSON object")
    if str(payload.get("version")) != "4":
        raise PayloadError(
            NAME, "version", f"only payload version 4 is supported, got {payload.get('version')!r}"
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(NAME, "alerts", "must be a list")
    return [_alert(a, i) for i, a in enumerate(alerts)]


CONNECTOR = register(Connector(NAME, parse, description="Prometheus Alertmanager webhook v4"))
