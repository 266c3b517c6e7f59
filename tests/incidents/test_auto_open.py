"""Incidents opened from alerts by a policy rule: an Alertmanager webhook through the app."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.incidents.auto_open import auto_open
from opsledger.ingest.replay import rebuild
from opsledger.kpis.policy import Policy
from tests.conftest import load
from tests.incidents.helpers import api, export_all, records_of

POLICY = """
[[incidents.auto_open]]
name = "critical alerts of critical services"
alert_severity = ["critical"]
service_tier = ["critical"]
incident_severity = 1

[[incidents.auto_open]]
name = "disk on anything"
alert_names = ["DiskWillFillIn4Hours"]
incident_severity = 3
"""
SERVICES = [
    {"kind": "service", "id": "checkout", "tier": "critical"},
    {"kind": "service", "id": "batch", "tier": "standard"},
]


def _alert(name: str, service: str, severity: str, fp: str, starts: str,
            status: str = "firing", ends: str = "0001-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "service": service, "severity": severity,
                   "instance": f"{service}-1:9090", "job": service},
        "annotations": {"summary": f"{name} on {service}",
                        "runbook_url": f"https://runbooks.example.org/{name}"},
        "startsAt": starts,
        "endsAt": ends,
        "generatorURL": "http://prometheus.example.org:9090/graph?g0.expr=up&g0.tab=1",
        "fingerprint": fp,
    }


# Alertmanager webhook payload version 4, as documented in Prometheus' Alertmanager
# configuration reference (<webhook_config>)
PAYLOAD = {
    "version": "4",
    "groupKey": '{}:{alertname="HighErrorRate"}',
    "truncatedAlerts": 0,
    "status": "firing",
    "receiver": "opsledger",
    "groupLabels": {"alertname": "HighErrorRate"},
    "commonLabels": {},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager.example.org:9093",
    "alerts": [
        _alert("HighErrorRate", "checkout", "critical", "a1b2c3d4e5f60718",
               "2026-10-02T10:00:00.123456789Z"),
        _alert("HighErrorRate", "batch", "critical", "0718a1b2c3d4e5f6",
               "2026-10-02T10:00:30Z"),  # standard tier: no incident
        _alert("HighLatency", "checkout", "warning", "f6e5d4c3b2a10987",
               "2026-10-02T10:01:00Z"),  # warning: no incident
        _alert("DiskWillFillIn4Hours", "batch", "warning", "99887766554433aa",
               "2026-10-02T10:02:00Z"),  # second rule
    ],
}


def _policy(tmp_path: Path) -> Path:
    path = tmp_path / "opsledger.toml"
    path.write_text(POLICY, encoding="utf-8")
    return path


def _by_name(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    return {(a["name"], a["service"]): a for a in records_of(engine, "alert").values()}


def test_webhook_alerts_open_incidents_by_rule(db_url: str, tmp_path: Path) -> None:
    with api(db_url, _policy(tmp_path)) as a:
        load(a.engine, SERVICES)
        r = a.client.post("/api/v1/hooks/alertmanager", json=PAYLOAD, headers=a.ingest)
        assert r.status_code == 202, r.text
        alerts = _by_name(a.engine)
        crit = alerts[("HighErrorRate", "checkout")]
        disk = alerts[("DiskWillFillIn4Hours", "batch")]
        incidents = records_of(a.engine, "incident")
        assert set(incidents) == {f"auto-{crit['id']}", f"auto-{disk['id']}"}
        assert incidents[f"auto-{crit['id']}"] == {
            "kind": "incident", "id": f"auto-{crit['id']}", "title": "HighErrorRate on checkout",
            "severity": 1, "service": "checkout",
            "started_at": "2026-10-02T10:00:00.123456Z",
            "detected_at": "2026-10-02T10:00:00.123456Z",
        }
        assert incidents[f"auto-{disk['id']}"]["severity"] == 3
        assert crit["incident"] == f"auto-{crit['id']}"
        assert "incident" not in alerts[("HighErrorRate", "batch")]
        assert "incident" not in alerts[("HighLatency", "checkout")]

        # Alertmanager's retries and repeated notifications open nothing more
        before = export_all(a.engine)
        for _ in range(2):
            r = a.client.post("/api/v1/hooks/alertmanager", json=PAYLOAD, headers=a.ingest)
            assert r.status_code == 202 and r.json()["inserted"] == 0
        assert export_all(a.engine) == before

        # a person acknowledges; the resolved notification keeps the link and the ack
        r = a.client.post(f"/api/v1/incidents/auto-{crit['id']}/ack",
                          json={"at": "2026-10-02T10:04:00Z", "by": "alice"}, headers=a.ingest)
        assert r.status_code == 200
        resolved = copy.deepcopy(PAYLOAD)
        resolved["status"] = "resolved"
        for al in resolved["alerts"]:  # type: ignore[attr-defined]
            al["status"], al["endsAt"] = "resolved", "2026-10-02T10:30:00Z"
        assert a.client.post("/api/v1/hooks/alertmanager", json=resolved,
                             headers=a.ingest).status_code == 202
        crit = _by_name(a.engine)[("HighErrorRate", "checkout")]
        assert crit["resolved_at"] == "2026-10-02T10:30:00Z"
        assert crit["incident"] == f"auto-{crit['id']}"
        inc = records_of(a.engine, "incident")[f"auto-{crit['id']}"]
        assert inc["acknowledged_by"] == "alice" and "resolved_at" not in inc
        assert len(records_of(a.engine, "incident")) == 2

        # every step is in the raw log: a rebuild gives the same records
        before = export_all(a.engine)
        with a.engine.begin() as conn:
            rebuild(conn)
        assert export_all(a.engine) == before


def test_no_policy_rule_opens_nothing(db_url: str) -> None:
    with api(db_url) as a:
        load(a.engine, SERVICES)
        assert a.client.post("/api/v1/hooks/alertmanager", json=PAYLOAD,
                             headers=a.ingest).status_code == 202
        assert records_of(a.engine, "incident") == {}
        assert len(records_of(a.engine, "alert")) == 4


def test_an_alert_linked_by_hand_is_not_auto_opened(db_url: str, tmp_path: Path) -> None:
    with api(db_url, _policy(tmp_path)) as a:
        load(a.engine, SERVICES)
        first = {**PAYLOAD, "alerts": PAYLOAD["alerts"][2:3]}  # the warning: no rule
        assert a.client.post("/api/v1/hooks/alertmanager", json=first,
                             headers=a.ingest).status_code == 202
        (alert,) = records_of(a.engine, "alert").values()
        a.client.post("/api/v1/incidents", json={"id": "by-hand", "title": "t", "severity": 2,
                                                 "started_at": "2026-10-02T10:00:00Z"},
                      headers=a.ingest)
        a.client.post("/api/v1/incidents/by-hand/link", json={"alerts": [alert["id"]]},
                      headers=a.ingest)
        # the same episode now arrives as critical: it matches, but it is linked already
        critical = copy.deepcopy(first)
        critical["alerts"][0]["labels"]["severity"] = "critical"  # type: ignore[index]
        assert a.client.post("/api/v1/hooks/alertmanager", json=critical,
                             headers=a.ingest).status_code == 202
        assert set(records_of(a.engine, "incident")) == {"by-hand"}
        assert records_of(a.engine, "alert")[alert["id"]]["incident"] == "by-hand"


@pytest.mark.parametrize(
    ("rule", "opens"),
    [
        ({"alert_severity": ["critical"]}, True),
        ({"alert_severity": ["warning"]}, False),
        ({"service_tier": ["critical", "high"]}, True),
        ({"service_tier": ["standard"]}, False),
        ({"alert_names": ["Other", "HighErrorRate"]}, True),
        ({"alert_names": ["Other"]}, False),
        ({"alert_severity": ["critical"], "service_tier": ["standard"]}, False),
        ({}, True),
    ],
)
def test_rule_conditions_all_apply(engine: Engine, rule: dict[str, Any], opens: bool) -> None:
    load(engine, [*SERVICES, {"kind": "alert", "id": "x", "name": "HighErrorRate",
                             "service": "checkout", "severity": "critical",
                             "fired_at": "2026-10-02T10:00:00Z"}])
    policy = Policy.model_validate({"incidents": {"auto_open": [{"name": "r", **rule}]}})
    with engine.begin() as conn:
        opened = auto_open(conn, policy, [{"kind": "alert", "id": "x"}])
    assert opened == (["auto-x"] if opens else [])
    incidents = records_of(engine, "incident")
    assert set(incidents) == ({"auto-x"} if opens else set())
    if opens:
        assert incidents["auto-x"]["title"] == "HighErrorRate"  # no summary annotation
        assert incidents["auto-x"]["severity"] == 2  # the rule's default
