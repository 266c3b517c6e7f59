"""The grafana connector on real Grafana 9 unified alerting notifications (payloads/, see
NOTICE.md): the records it makes, and end to end through the app (bearer token, POST
/api/v1/hooks/grafana) on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from opsledger.connectors.base import get_connector
from tests.connectors.alertmanager.hooks import Hooks, hooks, payload  # noqa: F401

HERE = Path(__file__).parent
FIRING = payload(HERE, "alert-9.json")
RESOLVED = payload(HERE, "alert-9-resolved.json")
MIXED = payload(HERE, "alert-9-mixed.json")
TEST_ID = "gf-d8a21484c9c25a60-1655426460"
TEST_ALERT = {
    "id": TEST_ID,
    "name": "Test alert",
    "source": "grafana",
    "fired_at": "2022-06-17T00:41:00.782137Z",
    "labels": {"alertname": "Test alert", "test": "true"},
    "annotations": {
        "description": "This is a description",
        "runbook_url": "https://runbook.example.com/",
        "summary": "This is a summary field, failure on some_host",
    },
    "runbook_url": "https://runbook.example.com/",
    "generator_url": "https://grafana.example.com/alerting/grafana/zTjxv_C7k/view",
    "fingerprint": "d8a21484c9c25a60",
}
# the resolved notification was captured with other annotation values: the newest win
TEST_RESOLVED = {
    **TEST_ALERT,
    "annotations": {
        "description": "This is a description",
        "runbook_url": "https://example.com/",
        "summary": "This is a summary field, failure on <no value>",
    },
    "runbook_url": "https://example.com/",
    "resolved_at": "2022-06-17T00:51:24.067337Z",
}


def parse(body: bytes) -> list[dict[str, Any]]:
    connector = get_connector("grafana")
    assert connector is not None
    return connector.parse(body, {})


def documented(**alert: Any) -> dict[str, Any]:
    """A notification with every field of Grafana's documented webhook payload (version 1),
    written for these tests (Grafana's own example is AGPL: see payloads/NOTICE.md)."""
    one = {
        "status": "firing",
        "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical"},
        "annotations": {"summary": "disk 97% full", "runbook_url": "https://runbooks.example/d"},
        "startsAt": "2026-10-04T15:22:05.5+02:00",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "https://grafana.example/alerting/grafana/abc/view",
        "fingerprint": "0a1b2c3d4e5f6a7b",
        "silenceURL": "https://grafana.example/alerting/silence/new",
        "dashboardURL": "https://grafana.example/d/xyz",
        "panelURL": "https://grafana.example/d/xyz?viewPanel=2",
        "imageURL": "https://grafana.example/public/img/shot.png",
        "values": {"B": 97.2, "C": 1},
        "valueString": "[ var='B' labels={} value=97.2 ], [ var='C' labels={} value=1 ]",
        **alert,
    }
    return {
        "receiver": "opsledger",
        "status": one["status"],
        "orgId": 1,
        "alerts": [one],
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": one["labels"],
        "commonAnnotations": one["annotations"],
        "externalURL": "https://grafana.example/",
        "version": "1",
        "groupKey": '{}:{alertname="DiskFull"}',
        "truncatedAlerts": 0,
        "title": "[FIRING:1] DiskFull",
        "state": "alerting",
        "message": "**Firing**",
    }


def body(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


# --- the records of the golden payloads ------------------------------------------------------


def test_firing_notification_is_one_open_episode() -> None:
    # endsAt is Go's zero time: not ended, and never a resolution
    assert parse(FIRING) == [{"kind": "alert", **TEST_ALERT}]


def test_resolved_notification_completes_the_same_episode() -> None:
    assert parse(RESOLVED) == [{"kind": "alert", **TEST_RESOLVED}]


def test_mixed_notification_has_resolved_and_firing_episodes() -> None:
    recs = {r["fingerprint"]: r for r in parse(MIXED)}
    assert set(recs) == {"aaafafe0953f0962", "fb31814ac93dbe7d", "6f9cd313db421ef1"}
    for fp in ("aaafafe0953f0962", "fb31814ac93dbe7d"):
        assert recs[fp]["id"] == f"gf-{fp}-1655427840"
        assert recs[fp]["resolved_at"] == "2022-06-17T01:08:28.652747Z"
        assert recs[fp]["labels"]["deploy"] == "prod"
    firing = recs["6f9cd313db421ef1"]
    assert firing["id"] == "gf-6f9cd313db421ef1-1655427780"
    assert firing["name"] == "Second webhook test"
    assert "resolved_at" not in firing


def test_documented_fields() -> None:
    [rec] = parse(body(documented()))
    assert rec == {
        "kind": "alert",
        "id": "gf-0a1b2c3d4e5f6a7b-1791120125",
        "name": "DiskFull",
        "source": "grafana",
        "service": "db",
        "severity": "critical",
        "fired_at": "2026-10-04T13:22:05.500000Z",
        "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical"},
        "annotations": {"summary": "disk 97% full", "runbook_url": "https://runbooks.example/d"},
        "runbook_url": "https://runbooks.example/d",
        "generator_url": "https://grafana.example/alerting/grafana/abc/view",
        "fingerprint": "0a1b2c3d4e5f6a7b",
    }


def test_values_are_not_part_of_the_record() -> None:
    # values change at every evaluation: a repeat notification must not be a new version
    a = parse(body(documented(values={"B": 97.2})))
    b = parse(body(documented(values={"B": 99.9}, valueString="[ var='B' value=99.9 ]")))
    assert a == b


# --- end to end through the app --------------------------------------------------------------


def test_firing_then_resolved_is_one_record(hooks: Hooks) -> None:  # noqa: F811
    before = hooks.inbound("grafana")
    r = hooks.post("grafana", FIRING)
    assert r.status_code == 202, r.text
    assert r.json() == {
        "connector": "grafana",
        "records": 1,
        "inserted": 1,
        "replaced": 0,
        "unchanged": 0,
    }
    assert hooks.alerts() == {TEST_ID: TEST_ALERT}
    assert hooks.post("grafana", RESOLVED).json()["replaced"] == 1
    assert hooks.alerts() == {TEST_ID: TEST_RESOLVED}
    assert hooks.inbound("grafana") == before + 2


def test_repeated_and_late_notifications(hooks: Hooks) -> None:  # noqa: F811
    hooks.post("grafana", FIRING)
    assert hooks.post("grafana", FIRING).json()["unchanged"] == 1
    hooks.post("grafana", RESOLVED)
    assert hooks.post("grafana", RESOLVED).json()["unchanged"] == 1
    # a firing notification delivered after the resolution never reopens the episode (its
    # other fields, here the annotations of that capture, are the latest delivered)
    assert hooks.post("grafana", FIRING).status_code == 202
    assert hooks.alerts() == {TEST_ID: {**TEST_ALERT, "resolved_at": "2022-06-17T00:51:24.067337Z"}}


def test_resolved_delivered_first(hooks: Hooks) -> None:  # noqa: F811
    hooks.post("grafana", RESOLVED)
    hooks.post("grafana", FIRING)
    assert hooks.alerts()[TEST_ID]["resolved_at"] == "2022-06-17T00:51:24.067337Z"


def test_mixed_notification_end_to_end(hooks: Hooks) -> None:  # noqa: F811
    r = hooks.post("grafana", MIXED)
    assert r.json()["inserted"] == 3
    stored = hooks.alerts()
    assert sorted(k for k, v in stored.items() if "resolved_at" in v) == [
        "gf-aaafafe0953f0962-1655427840",
        "gf-fb31814ac93dbe7d-1655427840",
    ]


def test_a_new_firing_episode_is_a_new_record(hooks: Hooks) -> None:  # noqa: F811
    hooks.post("grafana", body(documented()))
    resolved = documented(status="resolved", endsAt="2026-10-04T13:30:00Z")
    hooks.post("grafana", body(resolved))
    again = documented(startsAt="2026-10-04T14:00:00Z")  # same labels, fires again
    hooks.post("grafana", body(again))
    stored = hooks.alerts()
    assert sorted(stored) == ["gf-0a1b2c3d4e5f6a7b-1791120125", "gf-0a1b2c3d4e5f6a7b-1791122400"]
    assert stored["gf-0a1b2c3d4e5f6a7b-1791120125"]["resolved_at"] == "2026-10-04T13:30:00Z"
    assert "resolved_at" not in stored["gf-0a1b2c3d4e5f6a7b-1791122400"]


# --- bad payloads ----------------------------------------------------------------------------


BAD = [
    (b"{", 400, "malformed JSON"),
    (body({**documented(), "version": "4"}), 422, "only payload version 1"),
    (body({**documented(), "alerts": None}), 422, "alerts: must be a list"),
    (body(documented(startsAt="2026-10-04T15:22:05")), 422, "without UTC offset"),
    (body(documented(startsAt="0001-01-01T00:00:00Z")), 422, "zero time"),
    (body(documented(status="resolved")), 422, "needs its end time"),
    (body(documented(status="resolved", endsAt="soon")), 422, "not an RFC 3339 timestamp"),
    (body(documented(labels={"team": "blue"})), 422, "no alertname"),
    (body(documented(annotations={"summary": ["x"]})), 422, "object of strings"),
    (body(documented(status="alerting")), 422, "firing or resolved"),
]


@pytest.mark.parametrize(("data", "status", "reason"), BAD)
def test_bad_payload_is_refused_and_logged(
    hooks: Hooks,  # noqa: F811
    data: bytes,
    status: int,
    reason: str,
) -> None:
    rejected = len(hooks.rejected("grafana"))
    inbound = hooks.inbound("grafana")
    r = hooks.post("grafana", data)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    detail = r.json()["detail"]
    assert detail.startswith("grafana payload")
    assert reason in detail
    assert hooks.alerts() == {}
    assert hooks.inbound("grafana") == inbound
    log = hooks.rejected("grafana")
    assert len(log) == rejected + 1
    assert (log[-1]["status"], log[-1]["body"]) == (status, data.decode())


def test_alertmanager_payload_is_not_taken_for_grafana(hooks: Hooks) -> None:  # noqa: F811
    am = Path(__file__).parents[1] / "alertmanager" / "payloads" / "alertmanager-bot"
    r = hooks.post("grafana", (am / "firing.json").read_bytes())
    assert r.status_code == 422
    assert "only payload version 1 is supported, got '4'" in r.json()["detail"]


def test_where_an_error_is(hooks: Hooks) -> None:  # noqa: F811
    doc = json.loads(MIXED)
    doc["alerts"][2]["startsAt"] = "2022-06-17 01:03:00"
    r = hooks.post("grafana", body(doc))
    assert r.status_code == 422
    assert r.json()["detail"] == (
        "grafana payload, alerts[2].startsAt: timestamp without UTC offset: '2022-06-17 01:03:00'"
    )
    assert hooks.alerts() == {}


# --- Grafana 12's HMAC signature -------------------------------------------------------------

SECRET = "grafana-shared-secret"


def _sign(data: bytes, stamp: str | None = None) -> str:
    signed = f"{stamp}:".encode() + data if stamp else data
    return hmac.new(SECRET.encode(), signed, hashlib.sha256).hexdigest()


def test_signed_request_needs_no_token(hooks: Hooks, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.setenv("OPSLEDGER_GRAFANA_WEBHOOK_SECRET", SECRET)
    url = "/api/v1/hooks/grafana"
    r = hooks.client.post(
        url, content=FIRING, headers={"X-Grafana-Alerting-Signature": _sign(FIRING)}
    )
    assert r.status_code == 202, r.text
    stamped = {
        "X-Grafana-Alerting-Signature": _sign(RESOLVED, "1655427084"),
        "X-Grafana-Alerting-Timestamp": "1655427084",
    }
    assert hooks.client.post(url, content=RESOLVED, headers=stamped).status_code == 202
    assert hooks.alerts() == {TEST_ID: TEST_RESOLVED}


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Grafana-Alerting-Signature": "0" * 64},
        {"X-Grafana-Alerting-Signature": _sign(FIRING, "1655427084")},  # timestamp header lost
        {"X-Grafana-Alerting-Signature": "é".encode()},  # not ASCII
    ],
)
def test_wrong_signature_is_401_even_with_a_token(
    hooks: Hooks,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    headers: dict[str, Any],
) -> None:
    monkeypatch.setenv("OPSLEDGER_GRAFANA_WEBHOOK_SECRET", SECRET)
    rejected = len(hooks.rejected("grafana"))
    headers = {**headers, "Authorization": f"Bearer {hooks.token}"}
    r = hooks.client.post("/api/v1/hooks/grafana", content=FIRING, headers=headers)
    assert r.status_code == 401
    assert r.json()["detail"] == "grafana signature does not match"
    assert hooks.alerts() == {}
    assert len(hooks.rejected("grafana")) == rejected + 1


def test_missing_signature_falls_back_to_the_token(
    hooks: Hooks,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPSLEDGER_GRAFANA_WEBHOOK_SECRET", SECRET)
    assert hooks.post("grafana", FIRING).status_code == 202
    assert hooks.client.post("/api/v1/hooks/grafana", content=FIRING).status_code == 401
