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
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: "not set"


def _fingerprint(alert: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    fp = alert.get("fingerprint")
    if isinstance(fp, str) and fp:
        return fp
    # Alertmanager before 0.19 sent no fingerprint: derive a stable one from the label set
    return short_hash(*(f"{k}={v}" for k, v in sorted(labels.items())))


def _time(connector: str, where: str, value: Any) -> str | None:
    """A timestamp of the payload; None for Go's zero time (Grafana's endsAt of a firing
    alert, and Alertmanager's on some versions)."""
    t = timestamp(connector, where, value)
    return None if t == GO_ZERO_TIME else t


def _strings(connector: str, where: str, value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise PayloadError(connector, where, f"{what} must be an object of strings")
    return value


def episode(
    connector: str, prefix: str, alert: Any, i: int, group_status: Any = None
) -> NativeRecord:
    """One alert of an Alertmanager-shaped notification (Alertmanager v4, Grafana v1) as the
    record of its firing episode: `<prefix>-<fingerprint>-<startsAt epoch seconds>`.

    An alert without its own status (some hand-made or old captures) takes the
    notification's: `resolved` means every alert of the group is resolved; under `firing` it
    is read as firing, which at worst leaves a resolution out, never records a wrong one."""
    where = f"alerts[{i}]"
    if not isinstance(alert, dict):
        raise PayloadError(connector, where, "an alert must be an object")
    labels = _strings(connector, f"{where}.labels", alert.get("labels"), "labels")
    name = labels.get("alertname")
    if not name:
        raise PayloadError(connector, f"{where}.labels", "no alertname label")
    annotations = _strings(
        connector, f"{where}.annotations", alert.get("annotations") or {}, "annotations"
    )
    generator = alert.get("generatorURL")
    if generator is not None and not isinstance(generator, str):
        raise PayloadError(connector, f"{where}.generatorURL", "must be a string")
    status = alert.get("status", group_status)
    if status not in ("firing", "resolved"):
        raise PayloadError(
            connector, f"{where}.status", f"must be firing or resolved, got {status!r}"
        )
    fired = _time(connector, f"{where}.startsAt", alert.get("startsAt"))
    if fired is None:
        raise PayloadError(connector, f"{where}.startsAt", "the zero time: the alert has no start")
    fp = _fingerprint(alert, labels)
    epoch = int(datetime.fromisoformat(fired.replace("Z", "+00:00")).timestamp())
    rec: NativeRecord = {
        "kind": "alert",
        "id": f"{prefix}-{fp}-{epoch}",
        "name": name,
        "source": connector,
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
    if generator:
        rec["generator_url"] = generator
    if status == "resolved":
        # endsAt of a firing alert is only a guess of expiry (or the zero time): used when
        # resolved
        ended = _time(connector, f"{where}.endsAt", alert.get("endsAt"))
        if ended is None:
            reason = "a resolved alert needs its end time, got the zero time"
            raise PayloadError(connector, f"{where}.endsAt", reason)
        rec["resolved_at"] = ended
    return rec


def parse_notification(
    connector: str, prefix: str, version: str, body: bytes
) -> list[NativeRecord]:
    """An Alertmanager-shaped notification of payload `version`: one record per alert."""
    payload = load_json(connector, body)
    if not isinstance(payload, dict):
        raise PayloadError(connector, "", "the payload must be a JSON object")
    if str(payload.get("version")) != version:
        raise PayloadError(
            connector,
            "version",
            f"only payload version {version} is supported, got {payload.get('version')!r}",
        )
    alerts = payload.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError(connector, "alerts", "must be a list")
    status = payload.get("status")
    return [episode(connector, prefix, a, i, status) for i, a in enumerate(alerts)]


def parse(body: bytes, headers: Mapping[str, str]) -> list[NativeRecord]:
    return parse_notification(NAME, "am", "4", body)


CONNECTOR = register(Connector(NAME, parse, description="Prometheus Alertmanager webhook v4"))
