"""Scope and policy rules of spec/kpis.md: --team and --service (alone and together), unknown
services, kinds with a team only, and target overrides (global, per team, per service)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.core.periods import parse_period
from opsledger.kpis.engine import scorecard
from opsledger.kpis.model import Scope
from opsledger.kpis.policy import Policy
from opsledger.kpis.registry import KPIS
from tests.conftest import load
from tests.kpis.helpers import MIXED, assert_no_data, kpi, load_with_topology


def sev1(iid: str, service: str | None, minutes: int) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "incident", "id": iid, "severity": 1,
                           "started_at": "2026-11-10T10:00:00Z",
                           "mitigated_at": f"2026-11-10T{10 + minutes // 60:02d}:"
                                           f"{minutes % 60:02d}:00Z"}
    if service is not None:
        rec["service"] = service
    return rec


POLICY = Policy.model_validate({
    "targets": {"mttr_sev1": 120},
    "teams": {"ops": {"targets": {"mttr_sev1": {"op": "<=", "value": 40}}}},
    "services": {"api": {"targets": {"mttr_sev1": 30}},
                 "shop": {"targets": {"mttr_sev1": {"op": "<", "value": 55}}}},
})


def test_policy_overrides_global_team_service(engine: Engine) -> None:
    load_with_topology(engine, [
        sev1("p1", "api", 50),  # 50 min
        sev1("p2", "shop", 50),  # 50 min
        sev1("p3", "db", 35),  # 35 min
        sev1("p4", None, 200),  # no service
    ])
    r = kpi(engine, "mttr_sev1", "2026-11")
    # default target < 60 ; all four: (50 + 50 + 35 + 200) / 4 = 83.75 -> missed
    assert (r.value, r.count, r.status) == (pytest.approx(83.75), 4, "missed")
    assert r.json["target"]["op"] == "<" and r.json["target"]["value"] == 60

    def target(**scope: str) -> tuple[str, float, str]:
        res = kpi(engine, "mttr_sev1", "2026-11", policy=POLICY, **scope)
        return res.json["target"]["op"], res.json["target"]["value"], res.status

    # global override (< 120): 83.75 -> met
    assert target() == ("<", 120, "met")
    # team ops (<= 40): api 50, db 35 -> 42.5 -> missed
    assert target(team="ops") == ("<=", 40, "missed")
    # --team ops --service db (db has no override of its own): the team's: 35 <= 40 -> met
    assert target(team="ops", service="db") == ("<=", 40, "met")
    # service api (< 30, a bare number keeps the default op): 50 -> missed, with or without team
    assert target(service="api") == ("<", 30, "missed")
    assert target(team="ops", service="api") == ("<", 30, "missed")
    # service shop (< 55): 50 -> met ; team web has no override: global < 120
    assert target(service="shop") == ("<", 55, "met")
    assert target(team="web") == ("<", 120, "met")


def test_trend_target_overrides(engine: Engine) -> None:
    load_with_topology(engine, [
        {"kind": "task_run", "id": f"n{i}", "task": "t", "team": "ops",
         "performed_at": f"2026-11-0{i + 1}T10:00:00Z", "automated": i < 3, "minutes": 10.0}
        for i in range(4)
    ] + [
        {"kind": "task_run", "id": f"o{i}", "task": "t", "team": "ops",
         "performed_at": f"2025-11-0{i + 1}T10:00:00Z", "automated": i < 2, "minutes": 10.0}
        for i in range(4)
    ])
    # 2026-11: 3 of 4 automated = 75 ; 2025-11: 2 of 4 = 50 ; default +10 points: 75 >= 60 met
    assert kpi(engine, "automation_coverage", "2026-11").status == "met"
    # a bare number keeps the trend op: +30 points -> 75 >= 80 ? no -> missed
    pol = Policy.model_validate({"teams": {"ops": {"targets": {"automation_coverage": 30}}}})
    r = kpi(engine, "automation_coverage", "2026-11", team="ops", policy=pol)
    assert (r.json["target"]["op"], r.json["target"]["value"]) == ("+points", 30)
    assert r.status == "missed"
    # exactly +25 points (75 = 50 + 25) reaches the target -> met
    pol = Policy.model_validate({"targets": {"automation_coverage": 25}})
    assert kpi(engine, "automation_coverage", "2026-11", policy=pol).status == "met"
    # a plain threshold instead of a trend: > 70 -> met, and no baseline is computed
    pol = Policy.model_validate(
        {"targets": {"automation_coverage": {"op": ">", "value": 70}}})
    r = kpi(engine, "automation_coverage", "2026-11", policy=pol)
    assert (r.value, r.status) == (pytest.approx(75.0), "met")
    assert "baseline" not in r.json


def test_unknown_service_and_both_filters_give_no_data_everywhere(engine: Engine) -> None:
    load_with_topology(engine, MIXED)
    with engine.connect() as conn:
        full = scorecard(conn, parse_period("2026-11"), Scope(), Policy())
        ghost = scorecard(conn, parse_period("2026-11"), Scope(service="ghost"), Policy())
        crossed = scorecard(conn, parse_period("2026-11"), Scope(team="web", service="api"),
                            Policy())
        unknown_team = scorecard(conn, parse_period("2026-11"), Scope(team="nobody"), Policy())
    assert [row["id"] for row in full["kpis"]] == [k.id for k in KPIS]
    assert all(row["value"] is not None for row in full["kpis"])
    for row in full["kpis"]:
        # the JSON form of one KPI (spec/kpis.md, Scope)
        assert {"id", "value", "unit", "target", "status", "count"} <= set(row), row["id"]
        assert isinstance(row["count"], int) and row["count"] > 0, row["id"]
    for card in (ghost, crossed, unknown_team):
        for row in card["kpis"]:
            assert (row["value"], row["status"], row["count"]) == (None, "no_data", 0), row["id"]
            assert "error" not in row
    assert ghost["scope"] == {"team": None, "service": "ghost"}
    assert full["period"] == {"label": "2026-11", "start": "2026-11-01T00:00:00Z",
                              "end": "2026-12-01T00:00:00Z"}


def test_records_without_service_or_with_unknown_service(engine: Engine) -> None:
    load_with_topology(engine, [
        {"kind": "alert", "id": "n1", "name": "x", "fired_at": "2026-11-02T10:00:00Z"},
        {"kind": "alert", "id": "n2", "name": "x", "service": "ghost",
         "fired_at": "2026-11-02T10:00:00Z", "actionable": True},
        {"kind": "alert", "id": "n3", "name": "x", "service": "db",
         "fired_at": "2026-11-02T10:00:00Z", "actionable": True},
    ])
    # unscoped: all 3 ; noise n1 -> 100 / 3
    r = kpi(engine, "alert_noise_ratio", "2026-11")
    assert (r.value, r.count) == (pytest.approx(100 / 3), 3)
    # any narrowed scope leaves out n1 (no service) and n2 (unknown service): ops n3 -> 0
    r = kpi(engine, "alert_noise_ratio", "2026-11", team="ops")
    assert (r.value, r.count, r.status) == (0.0, 1, "met")
    assert_no_data(kpi(engine, "alert_noise_ratio", "2026-11", service="ghost"))
    # service db moves to team web (replaced service record): ops sees nothing, web sees n3
    load(engine, [{"kind": "service", "id": "db", "team": "web"}])
    assert_no_data(kpi(engine, "alert_noise_ratio", "2026-11", team="ops"))
    r = kpi(engine, "alert_noise_ratio", "2026-11", team="web", service="db")
    assert (r.value, r.count) == (0.0, 1)
