"""Shared helpers for the hand-computed KPI tests (spec/kpis.md).

Every figure asserted in tests/kpis is computed by hand in the test itself; these helpers
only run the engine and build the small team/service topology most tests share.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Engine

from opsledger.core.periods import Period, date_range, parse_period
from opsledger.kpis.engine import Figure, evaluate
from opsledger.kpis.model import Evidence, Scope
from opsledger.kpis.policy import Policy
from opsledger.kpis.registry import get
from tests.conftest import load

# Teams ops and web; services api and db belong to ops, shop to web, orphan to no team.
TOPOLOGY: list[dict[str, Any]] = [
    {"kind": "team", "id": "ops", "name": "Operations"},
    {"kind": "team", "id": "web", "name": "Web"},
    {"kind": "service", "id": "api", "team": "ops"},
    {"kind": "service", "id": "db", "team": "ops"},
    {"kind": "service", "id": "shop", "team": "web"},
    {"kind": "service", "id": "orphan"},
]


def load_with_topology(engine: Engine, records: list[dict[str, Any]]) -> None:
    load(engine, TOPOLOGY + records)


def period(label: str) -> Period:
    return parse_period(label)


def days(start: str, end: str) -> Period:
    """`--from start --to end` (end exclusive)."""
    return date_range(date.fromisoformat(start), date.fromisoformat(end))


@dataclass
class Result:
    figure: Figure
    json: dict[str, Any]

    @property
    def value(self) -> float | None:
        return self.json["value"]

    @property
    def count(self) -> int:
        return int(self.json["count"])

    @property
    def status(self) -> str:
        return str(self.json["status"])

    @property
    def evidence(self) -> list[Evidence]:
        ev = self.figure.outcome.evidence
        assert ev is not None, "explain=True must give evidence"
        return ev

    def roles(self, role: str) -> list[Evidence]:
        return [e for e in self.evidence if e.role == role]

    def ids(self, role: str) -> set[str]:
        return {e.id for e in self.evidence if e.role == role}


def kpi(
    engine: Engine,
    kpi_id: str,
    when: str | Period,
    *,
    team: str | None = None,
    service: str | None = None,
    policy: Policy | None = None,
    explain: bool = False,
) -> Result:
    p = parse_period(when) if isinstance(when, str) else when
    with engine.connect() as conn:
        fig = evaluate(conn, get(kpi_id), p, Scope(team, service), policy or Policy(), explain)
    return Result(fig, fig.as_json())


def assert_no_data(r: Result) -> None:
    assert r.value is None
    assert r.status == "no_data"
    assert r.count == 0


def _mixed() -> list[dict[str, Any]]:
    """Records for every KPI in 2026-11 (and the baselines 2025-11, 2026-10), both teams."""
    recs: list[dict[str, Any]] = []
    add = recs.append
    for i, (svc, team) in enumerate([("api", "ops"), ("db", "ops"), ("shop", "web")]):
        d = 2 + i  # 11-02, 11-03, 11-04
        for suffix, outcome, approved, deployed in [
            ("a", "success", f"2026-10-{26 + i}", f"2026-11-{d:02d}"),
            ("b", "failed", f"2026-11-{d:02d}", f"2026-11-{d + 7:02d}"),
            ("c", "success", f"2026-11-{d + 7:02d}", f"2026-11-{d + 8:02d}"),
        ]:
            add({"kind": "change", "id": f"mc{i}{suffix}", "service": svc, "outcome": outcome,
                 "approved_at": f"{approved}T09:00:00Z", "deployed_at": f"{deployed}T10:00:00Z"})
        add({"kind": "incident", "id": f"mi{i}a", "severity": 1, "service": svc,
             "started_at": f"2026-11-{d:02d}T10:00:00Z",
             "detected_at": f"2026-11-{d:02d}T10:05:00Z",
             "acknowledged_at": f"2026-11-{d:02d}T10:1{i}:00Z",
             "mitigated_at": f"2026-11-{d:02d}T1{1 + i}:00:00Z", "root_cause_key": "k-disk",
             "caused_by_change": f"mc{i}c"})
        add({"kind": "incident", "id": f"mi{i}b", "severity": 1 + i, "service": svc,
             "started_at": f"2026-11-{d + 10:02d}T10:00:00Z",
             "resolved_at": f"2026-11-{d + 10:02d}T10:{15 * (i + 1)}:00Z",
             "root_cause_key": f"k-{i}"})
        add({"kind": "incident", "id": f"mi{i}c", "severity": 3, "service": svc,
             "started_at": f"2026-11-{d + 20:02d}T10:00:00Z",
             "acknowledged_at": f"2026-11-{d + 20:02d}T10:30:00Z"})
        for j, (act, ack) in enumerate([(True, None), (False, None), (None, "x"), (None, None)]):
            rec: dict[str, Any] = {"kind": "alert", "id": f"ma{i}{j}", "name": "r", "service": svc,
                                   "fired_at": f"2026-11-{d + j:02d}T08:00:00Z"}
            if act is not None:
                rec["actionable"] = act
            if ack:
                rec["acknowledged_at"] = f"2026-11-{d + j:02d}T08:05:00Z"
            add(rec)
        add({"kind": "asset", "id": f"mh{i}", "service": svc})
        add({"kind": "vulnerability", "id": f"mv{i}a", "asset": f"mh{i}", "severity": "critical",
             "first_seen": f"2026-10-2{i}T00:00:00Z", "fixed_at": f"2026-10-2{i + 5}T00:00:00Z"})
        add({"kind": "vulnerability", "id": f"mv{i}b", "asset": f"mh{i}", "severity": "critical",
             "first_seen": f"2026-10-2{i}T00:00:00Z"})
        add({"kind": "vulnerability", "id": f"mv{i}c", "asset": f"mh{i}", "severity": "high",
             "first_seen": f"2026-10-1{i}T00:00:00Z", "fixed_at": "2026-11-01T00:00:00Z"})
        add({"kind": "vulnerability", "id": f"mv{i}d", "asset": f"mh{i}", "severity": "low",
             "first_seen": "2026-06-01T00:00:00Z", "accepted_until": "2027-01-01T00:00:00Z"})
        add({"kind": "backup_job", "id": f"mj{i}", "service": svc, "schedule": f"0 {i} * * *",
             "since": "2026-11-10T00:00:00Z"})
        for day in range(10, 30, 2 + i):
            add({"kind": "backup_run", "id": f"mr{i}-{day}", "job": f"mj{i}",
                 "started_at": f"2026-11-{day}T0{i}:10:00Z",
                 "status": "success" if day % 4 else "failed"})
        add({"kind": "backup_job", "id": f"mu{i}", "service": svc})
        add({"kind": "backup_run", "id": f"mur{i}", "job": f"mu{i}",
             "started_at": f"2026-11-{d:02d}T05:00:00Z",
             "status": "failed" if i == 1 else "success"})
        add({"kind": "restore_test", "id": f"mt{i}a", "job": f"mj{i}",
             "started_at": f"2026-11-{d:02d}T12:00:00Z", "passed": True})
        add({"kind": "restore_test", "id": f"mt{i}b", "job": f"mu{i}",
             "started_at": f"2026-11-{d + 1:02d}T12:00:00Z", "passed": i != 0})
        add({"kind": "capacity_forecast", "id": f"mf{i}a", "resource": "cpu", "service": svc,
             "made_at": "2026-06-01T00:00:00Z", "target_date": f"2026-11-{d:02d}",
             "forecast": 100.0 + 10 * i, "actual": 90.0})
        add({"kind": "capacity_forecast", "id": f"mf{i}b", "resource": "cpu", "service": svc,
             "made_at": "2026-06-01T00:00:00Z", "target_date": f"2026-11-{d + 1:02d}",
             "forecast": 10.0, "actual": 0.0})
        for m, amount, cost in [("2026-11", 1000.0 + i, 990.0 + 7 * i), ("2026-12", 5.0, 9.0)]:
            add({"kind": "budget", "id": f"mb{i}{m}", "scope": svc, "month": m, "amount": amount,
                 "currency": "EUR"})
            add({"kind": "cost", "id": f"mk{i}{m}", "scope": svc, "month": m, "amount": cost,
                 "currency": "EUR"})
        add({"kind": "cost", "id": f"mk{i}x", "scope": team, "month": "2026-11", "amount": 50.0,
             "currency": "EUR"})
        add({"kind": "runbook", "id": f"mrb{i}a", "service": svc,
             "last_reviewed_at": "2026-10-01T00:00:00Z"})
        add({"kind": "runbook", "id": f"mrb{i}b", "service": svc,
             "last_reviewed_at": "2025-10-01T00:00:00Z"})
        # task runs in 2026-11, a year earlier (2025-11) and the 30 days before 2026-11
        for y, month, day in [("2026", "11", d), ("2025", "11", d), ("2026", "10", d + 20)]:
            add({"kind": "task_run", "id": f"mtr{i}{y}{month}a", "task": "t", "team": team,
                 "performed_at": f"{y}-{month}-{day:02d}T09:00:00Z", "automated": True,
                 "minutes": 5.0})
            add({"kind": "task_run", "id": f"mtr{i}{y}{month}m", "task": "t", "team": team,
                 "performed_at": f"{y}-{month}-{day:02d}T10:00:00Z",
                 "automated": bool(i % 2 and y == "2026"), "minutes": 20.0 + i})
        add({"kind": "survey_response", "id": f"ms{i}", "team": team,
             "submitted_at": f"2026-11-{d:02d}T10:00:00Z", "score": 3.0 + i})
        add({"kind": "work_item", "id": f"mw{i}a", "team": team, "due": f"2026-11-{d:02d}",
             "completed_at": f"2026-11-{d:02d}T10:00:00Z"})
        add({"kind": "work_item", "id": f"mw{i}b", "team": team, "due": f"2026-11-{d + 1:02d}"})
        add({"kind": "action_item", "id": f"mai{i}a", "incident": f"mi{i}a",
             "due": f"2026-11-{d + 3:02d}", "completed_at": f"2026-11-{d + 4:02d}T10:00:00Z"})
        add({"kind": "action_item", "id": f"mai{i}b", "incident": f"mi{i}a",
             "due": f"2026-11-{d + 3:02d}", "completed_at": f"2026-11-{d + 2:02d}T10:00:00Z"})
    for k in range(3):
        add({"kind": "provisioning", "id": f"mp{k}", "requested_at": "2026-11-05T10:00:00Z",
             "completed_at": f"2026-11-05T1{k}:{10 * k:02d}:00Z"})
    return recs


MIXED: list[dict[str, Any]] = _mixed()
