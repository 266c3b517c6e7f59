"""Incidents opened from alerts are closed with their alerts when the rule says so."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.errors import PolicyError
from opsledger.incidents import service
from opsledger.incidents.auto_open import auto_open
from opsledger.incidents.history import incident_versions
from opsledger.incidents.timeline import build_timeline
from opsledger.kpis.policy import Policy, load_policy
from tests.conftest import load
from tests.incidents.helpers import api, export_all, records_of
from tests.incidents.test_auto_open import PAYLOAD, SERVICES

SERVICE = {"kind": "service", "id": "checkout", "tier": "critical"}


def alert(aid: str, fired: str = "2026-10-02T10:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"kind": "alert", "id": aid, "name": "HighErrorRate", "service": "checkout",
            "severity": "critical", "fired_at": fired, **extra}


def policy(**options: Any) -> Policy:
    return Policy.model_validate(
        {"incidents": {"auto_open": [{"name": "crit", "alert_severity": ["critical"],
                                      **options}]}})


def deliver(engine: Engine, pol: Policy, *records: dict[str, Any]) -> None:
    """What the webhook path does: store the alerts, then run the rules on them."""
    load(engine, list(records), "alertmanager webhook")
    with engine.begin() as conn:
        auto_open(conn, pol, [{"kind": "alert", "id": r["id"]} for r in records])


def incident(engine: Engine, iid: str = "auto-a1") -> dict[str, Any]:
    return records_of(engine, "incident")[iid]


def test_resolved_with_its_alert_at_the_alerts_resolution(engine: Engine) -> None:
    pol = policy(resolve_with_alerts=True)
    load(engine, [SERVICE])
    deliver(engine, pol, alert("a1"))
    assert "resolved_at" not in incident(engine)
    deliver(engine, pol, alert("a1", resolved_at="2026-10-02T10:25:00Z", incident="auto-a1"))
    inc = incident(engine)
    assert (inc["mitigated_at"], inc["resolved_at"]) == ("2026-10-02T10:25:00Z",) * 2
    with engine.connect() as conn:
        versions = incident_versions(conn, "auto-a1")
        assert [v.source for v in versions] == ["auto-open (rule crit)",
                                               "auto-resolve (rule crit)"]
        tl = build_timeline(conn, "auto-a1", datetime(2026, 12, 1, tzinfo=UTC))
    resolved = [e for e in tl.entries if e.source == "incident" and e.event == "resolved"]
    assert [(e.text, e.version.source if e.version else None) for e in resolved] == [
        ("Resolved", "auto-resolve (rule crit)")]
    # the same resolved notification again: nothing changes
    before = export_all(engine)
    deliver(engine, pol, alert("a1", resolved_at="2026-10-02T10:25:00Z", incident="auto-a1"))
    assert export_all(engine) == before


def test_waits_for_every_linked_alert(engine: Engine) -> None:
    pol = policy(resolve_with_alerts=True)
    load(engine, [SERVICE])
    deliver(engine, pol, alert("a1"))
    with engine.begin() as conn:  # a person links a second alert
        load(engine, [alert("a2", "2026-10-02T10:05:00Z")])
        service.link_alerts(conn, "auto-a1", ["a2"])
    deliver(engine, pol, alert("a1", resolved_at="2026-10-02T10:20:00Z", incident="auto-a1"))
    assert "resolved_at" not in incident(engine)
    deliver(engine, pol, alert("a2", "2026-10-02T10:05:00Z", resolved_at="2026-10-02T10:50:00Z",
                               incident="auto-a1"))
    assert incident(engine)["resolved_at"] == "2026-10-02T10:50:00Z"


def test_default_rule_leaves_the_incident_open(engine: Engine) -> None:
    load(engine, [SERVICE])
    deliver(engine, policy(), alert("a1"))
    deliver(engine, policy(), alert("a1", resolved_at="2026-10-02T10:20:00Z", incident="auto-a1"))
    assert "resolved_at" not in incident(engine)


@pytest.mark.parametrize("step", ["ack", "mitigate"])
def test_a_person_on_it_keeps_it_open_unless_the_rule_says(engine: Engine, step: str) -> None:
    load(engine, [SERVICE])
    deliver(engine, policy(resolve_with_alerts=True), alert("a1"))
    with engine.begin() as conn:
        if step == "ack":
            service.acknowledge(conn, "auto-a1", datetime(2026, 10, 2, 10, 3, tzinfo=UTC), "bob")
        else:  # recorded after the alert resolved
            service.mitigate(conn, "auto-a1", datetime(2026, 10, 2, 10, 40, tzinfo=UTC))
    done = alert("a1", resolved_at="2026-10-02T10:20:00Z", incident="auto-a1")
    deliver(engine, policy(resolve_with_alerts=True), done)
    assert "resolved_at" not in incident(engine)
    deliver(engine, policy(resolve_with_alerts=True, resolve_acknowledged=True), done)
    inc = incident(engine)
    if step == "ack":
        assert (inc["mitigated_at"], inc["resolved_at"]) == ("2026-10-02T10:20:00Z",) * 2
    else:  # the person's mitigation stays; the resolution is not before it
        assert (inc["mitigated_at"], inc["resolved_at"]) == ("2026-10-02T10:40:00Z",) * 2


def test_a_reopened_incident_stays_open_unless_the_rule_says(engine: Engine) -> None:
    pol = policy(resolve_with_alerts=True)
    load(engine, [SERVICE])
    deliver(engine, pol, alert("a1"))
    done = alert("a1", resolved_at="2026-10-02T10:20:00Z", incident="auto-a1")
    deliver(engine, pol, done)
    reopened = {k: v for k, v in incident(engine).items()
                if k not in ("resolved_at", "mitigated_at")}
    load(engine, [reopened], "cli: reopened by carol")
    deliver(engine, pol, done)  # the resolved notification repeated
    assert "resolved_at" not in incident(engine)
    deliver(engine, policy(resolve_with_alerts=True, resolve_reopened=True), done)
    assert incident(engine)["resolved_at"] == "2026-10-02T10:20:00Z"


def test_an_incident_opened_by_hand_is_never_resolved(engine: Engine) -> None:
    pol = policy(resolve_with_alerts=True, resolve_acknowledged=True, resolve_reopened=True)
    load(engine, [SERVICE, alert("a1")])
    with engine.begin() as conn:
        # even with the id an auto-opened incident would have
        service.open_incident(conn, title="t", severity=1, iid="auto-a1",
                              started_at=datetime(2026, 10, 2, 10, 0, tzinfo=UTC))
        service.link_alerts(conn, "auto-a1", ["a1"])
    deliver(engine, pol, alert("a1", resolved_at="2026-10-02T10:20:00Z", incident="auto-a1"))
    assert "resolved_at" not in incident(engine)


def test_a_rule_renamed_or_removed_resolves_nothing(engine: Engine) -> None:
    load(engine, [SERVICE])
    deliver(engine, policy(), alert("a1"))
    renamed = Policy.model_validate({"incidents": {"auto_open": [
        {"name": "crit v2", "resolve_with_alerts": True}]}})
    deliver(engine, renamed, alert("a1", resolved_at="2026-10-02T10:20:00Z", incident="auto-a1"))
    assert "resolved_at" not in incident(engine)


def test_resolved_over_the_webhook(db_url: str, tmp_path: Path) -> None:
    path = tmp_path / "opsledger.toml"
    path.write_text('[[incidents.auto_open]]\nname = "crit"\nalert_severity = ["critical"]\n'
                    'service_tier = ["critical"]\nresolve_with_alerts = true\n')
    with api(db_url, path) as a:
        load(a.engine, SERVICES)
        assert a.client.post("/api/v1/hooks/alertmanager", json=PAYLOAD,
                             headers=a.ingest).status_code == 202
        (iid,) = records_of(a.engine, "incident")
        resolved = copy.deepcopy(PAYLOAD)
        resolved["status"] = "resolved"
        for al in resolved["alerts"]:  # type: ignore[attr-defined]
            al["status"], al["endsAt"] = "resolved", "2026-10-02T10:30:00.5Z"
        assert a.client.post("/api/v1/hooks/alertmanager", json=resolved,
                             headers=a.ingest).status_code == 202
        inc = records_of(a.engine, "incident")[iid]
        assert inc["resolved_at"] == inc["mitigated_at"] == "2026-10-02T10:30:00.500000Z"


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('name = "r"\nresolve_reopened = true',
         "[incidents.auto_open.0] Value error, resolve_reopened = true needs "
         "resolve_with_alerts = true"),
        ('name = "r"\nresolve_acknowledged = true\nresolve_with_alerts = false',
         "[incidents.auto_open.0] Value error, resolve_acknowledged = true needs "
         "resolve_with_alerts = true"),
        ('name = "r"\nresolve_with_alerts = "yes"',
         "[incidents.auto_open.0.resolve_with_alerts] Input should be a valid boolean"),
        ('name = "r"\n[[incidents.auto_open]]\nname = "r"',
         "[incidents] Value error, rule names must be unique: r used twice"),
    ],
)
def test_bad_resolve_options_are_refused(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[[incidents.auto_open]]\n" + text + "\n")
    with pytest.raises(PolicyError) as exc:
        load_policy(path, set())
    assert str(exc.value) == f"{path}: {error}"
