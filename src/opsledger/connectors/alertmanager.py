"""Prometheus Alertmanager webhook (payload version 4).

One alert occurrence is one firing episode: the same fingerprint and startsAt. Its id is
`am-<fingerprint>-<startsAt as epoch seconds>`, so repeated notifications and Alertmanager's
retries land on the same record, and the resolved notification completes it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson

from opsledger.connectors.base import (
    Connector,
    NativeRecord,
    PayloadError,
    instant,
    load_json,
    register,
    short_hash,
    utc_text,
)

NAME = "alertmanager"
SEVERITIES = ("critical", "warning", "info")
GO_ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time: "not set"
GO_ZERO = datetime.fromisoformat(GO_ZERO_TIME)
_FAST_BRACKETS = 256  # bodies with fewer [ and { than this are read with orjson first


def _fingerprint(alert: Mapping[str, Any], labels: Mapping[str, str]) -> str:
    fp = alert.get("fingerprint")
    if isinstance(fp, str) and fp:
        return fp
    # Alertmanager before 0.19 sent no fingerprint: derive a stable one from the label set
    return short_hash(*(f"{k}={v}" for k, v in sorted(labels.items())))


def _time(connector: str, where: str, value: Any) -> datetime | None:
    """A timestamp of the payload; None for Go's zero time (Grafana's endsAt of a firing
    alert, and Alertmanager's on some versions)."""
    if value == GO_ZERO_TIME:  # as it is sent: no need to read it
        return None
    t = instant(connector, where, value)
    return None if t == GO_ZERO else t


def _strings(connector: str, where: str, value: Any, what: str) -> dict[str, str]:
    if isinstance(value, dict):
        for v in value.values():
            if not isinstance(v, str):
                break
        else:
            return value
    raise PayloadError(connector, f"{where}.{what}", f"{what} must be an object of strings")


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
    labels = _strings(connector, where, alert.get("labels"), "labels")
    name = labels.get("alertname")
    if not name:
        raise PayloadError(connector, f"{where}.labels", "no alertname label")
    annotations = _strings(connector, where, alert.get("annotations") or {}, "annotations")
    generator = alert.get("generatorURL")
    if generator is not None and not isinstance(generator, str):
        raise PayloadError(connector, f"{where}.generatorURL", "must be a string")
    status = alert.get("status", group_status)
    if status not in ("firing", "resolved"):
        raise PayloadError(
            connector, f"{where}.status", f"must be firing or resolved, got {status!r}"
        )
    starts = alert.get("startsAt")
    fired = _time(connector, f"{where}.startsAt", starts)
    if fired is None:
        raise PayloadError(connector, f"{where}.startsAt", "the zero time: the alert has no start")
    fp = _fingerprint(alert, labels)
    rec: NativeRecord = {
        "kind": "alert",
        "id": f"{prefix}-{fp}-{int(fired.timestamp())}",
        "name": name,
        "source": connector,
        "fired_at": utc_text(starts, fired),
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
        ends = alert.get("endsAt")
        ended = _time(connector, f"{where}.endsAt", ends)
        if ended is None:
            reason = "a resolved alert needs its end time, got the zero time"
            raise PayloadError(connector, f"{where}.endsAt", reason)
        rec["resolved_at"] = utc_text(ends, ended)
    return rec


def parse_notification(
    connector: str, prefix: str, version: str, body: bytes
) -> list[NativeRecord]:
    """An Alertmanager-shaped notification of payload `version`: one record per alert.

    The body is read with orjson first (three times faster than the standard library).
    Every value of the records is text the checks below insist on, so where orjson reads a
    body at all the records come out as the standard library's reading gives them; orjson
    reads some bodies differently (integers over 64 bits become floats; NaN, a byte order
    mark or a lone surrogate are refused), and those may only change what a refusal says.
    So a body that orjson does not read, or whose records are refused, is read again by the
    standard library, which decides the answer, as it did before orjson was tried. So is a
    body of many brackets: orjson reads 1,024 levels of nesting, the standard library
    fewer (its limit is Python's recursion limit), and refuses the body as nested too
    deeply."""
    if body.count(b"[") + body.count(b"{") < _FAST_BRACKETS:
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
        else:
            try:
                return _notification(connector, prefix, version, payload)
            except Exception:  # noqa: BLE001, S110 - the standard library's reading decides
                pass
    return _notification(connector, prefix, version, load_json(connector, body))


def _notification(
    connector: str, prefix: str, version: str, payload: Any
) -> list[NativeRecord]:
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
