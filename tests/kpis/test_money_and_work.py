"""Money, capacity, work and documentation KPIs computed by hand (spec/kpis.md):
capacity_forecast_accuracy, cost_variance, automation_coverage, toil_hours_per_week,
documentation_freshness, stakeholder_satisfaction and delivery_predictability."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.kpis.policy import Policy
from tests.conftest import load
from tests.kpis.helpers import assert_no_data, kpi, load_with_topology

# --- capacity_forecast_accuracy -----------------------------------------------------------


def forecast(fid: str, service: str, target_date: str, value: float, actual: float | None,
             ) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "capacity_forecast", "id": fid, "resource": "disk",
                           "service": service, "made_at": "2026-06-01T00:00:00Z",
                           "target_date": target_date, "forecast": value}
    if actual is not None:
        rec["actual"] = actual
    return rec


def test_capacity_forecast_accuracy(engine: Engine) -> None:
    load_with_topology(engine, [
        forecast("cf1", "api", "2026-11-01", 110.0, 100.0),  # first day: |110-100|/100 = 10 %
        forecast("cf2", "api", "2026-11-15", 70.0, 100.0),  # 30 %
        forecast("cf3", "api", "2026-11-20", 5.0, 0.0),  # actual 0: left out
        forecast("cf4", "shop", "2026-11-30", 100.0, 80.0),  # last day: 20/80 = 25 %
        forecast("cf5", "api", "2026-12-01", 1.0, 100.0),  # after the period: out
        forecast("cf6", "api", "2026-11-10", 50.0, None),  # no actual: out
    ])
    r = kpi(engine, "capacity_forecast_accuracy", "2026-11")
    # (10 + 30 + 25) / 3 = 65 / 3 ; <= 15 ? no -> missed
    assert (r.value, r.count, r.status) == (pytest.approx(65 / 3), 3, "missed")
    ops = kpi(engine, "capacity_forecast_accuracy", "2026-11", team="ops")
    # (10 + 30) / 2 = 20
    assert (ops.value, ops.count) == (pytest.approx(20.0), 2)
    # cf2 replaced: actual 75 -> |70 - 75| / 75 = 20/3 % ; ops (10 + 20/3) / 2 = 25/3 -> met
    load(engine, [forecast("cf2", "api", "2026-11-15", 70.0, 75.0)])
    ops = kpi(engine, "capacity_forecast_accuracy", "2026-11", team="ops")
    assert (ops.value, ops.count, ops.status) == (pytest.approx(25 / 3), 2, "met")
    assert_no_data(kpi(engine, "capacity_forecast_accuracy", "2026-10"))
    assert_no_data(kpi(engine, "capacity_forecast_accuracy", "2026-11", service="db"))


# --- cost_variance ----------------------------------------------------------------------------


def money(kind: str, mid: str, scope: str, month: str, amount: float,
          currency: str = "EUR") -> dict[str, Any]:
    return {"kind": kind, "id": mid, "scope": scope, "month": month, "amount": amount,
            "currency": currency}


COSTS = [
    money("budget", "b1", "api", "2026-10", 1000.0),
    money("budget", "b2", "api", "2026-11", 1000.0),
    money("budget", "b3", "shop", "2026-11", 500.0),  # no cost record: cost 0
    money("budget", "b4", "ops", "2026-10", 200.0),  # scoped to the team itself
    money("budget", "b5", "db", "2026-12", 999.0),  # month outside
    money("budget", "b6", "web", "2026-09", 300.0),  # month outside
    money("cost", "k1", "api", "2026-10", 1100.0),
    money("cost", "k2", "api", "2026-11", 900.0),
    money("cost", "k3", "ops", "2026-10", 260.0),
    money("cost", "k4", "zzz", "2026-10", 5000.0),  # no budget: left out
    money("cost", "k5", "db", "2026-11", 400.0),  # no budget for (db, 2026-11): left out
    money("cost", "k6", "api", "2026-09", 700.0),  # month outside
]


def test_cost_variance_week_across_months_and_scopes(engine: Engine) -> None:
    load_with_topology(engine, COSTS)
    # 2026-W44 = [2026-10-26, 2026-11-02): months 2026-10 and 2026-11
    r = kpi(engine, "cost_variance", "2026-W44")
    # budgets b1 b2 b3 b4 = 1000 + 1000 + 500 + 200 = 2700
    # costs of those pairs: 1100 + 900 + 0 + 260 = 2260
    # 100 * (2260 - 2700) / 2700 = -44000 / 2700 ; |x| < 10 ? no -> missed
    assert (r.value, r.count, r.status) == (pytest.approx(-44000 / 2700), 4, "missed")
    assert r.json["budget"] == pytest.approx(2700.0)
    assert r.json["cost"] == pytest.approx(2260.0)
    ops = kpi(engine, "cost_variance", "2026-W44", team="ops")
    # team ops: its services api, db and the team itself: b1 b2 b4 = 2200 ; k1 k2 k3 = 2260
    # 100 * 60 / 2200
    assert (ops.value, ops.count, ops.status) == (pytest.approx(6000 / 2200), 3, "met")
    both = kpi(engine, "cost_variance", "2026-W44", team="ops", service="api")
    # team ops and service api: b1 b2 = 2000 (b4 names the team, not the service) ; 2000 -> 0
    assert (both.value, both.count, both.status) == (pytest.approx(0.0), 2, "met")
    shop = kpi(engine, "cost_variance", "2026-W44", service="shop")
    # shop: budget 500, no cost -> 100 * (0 - 500) / 500 = -100
    assert (shop.value, shop.count, shop.status) == (pytest.approx(-100.0), 1, "missed")
    octo = kpi(engine, "cost_variance", "2026-10")
    # October only: b1 b4 = 1200 ; k1 k3 = 1360 -> 100 * 160 / 1200
    assert (octo.value, octo.count) == (pytest.approx(16000 / 1200), 2)
    assert_no_data(kpi(engine, "cost_variance", "2027-01"))
    assert_no_data(kpi(engine, "cost_variance", "2026-W44", service="zzz"))


def test_cost_variance_sums_currencies_and_zero_budget(engine: Engine) -> None:
    load_with_topology(engine, [
        # several budgets and costs for one (scope, month) add up: 600 + 400, 500 + 600
        money("budget", "ba", "api", "2026-11", 600.0),
        money("budget", "bb", "api", "2026-11", 400.0),
        money("cost", "ka", "api", "2026-11", 500.0),
        money("cost", "kb", "api", "2026-11", 600.0),
        # team web in US dollars
        money("budget", "bw", "shop", "2026-11", 100.0, "USD"),
        money("cost", "kw", "web", "2026-11", 90.0, "USD"),
        # a zero budget
        money("budget", "bz", "orphan", "2026-12", 0.0),
        money("cost", "kz", "orphan", "2026-12", 50.0),
    ])
    api = kpi(engine, "cost_variance", "2026-11", service="api")
    # 100 * (1100 - 1000) / 1000 = 10 ; |10| < 10 ? no -> missed ; count = 2 budget records
    assert (api.value, api.count, api.status) == (pytest.approx(10.0), 2, "missed")
    # a per-service policy: |x| < 15 for api -> met
    pol = Policy.model_validate({"services": {"api": {"targets": {"cost_variance": 15}}}})
    api = kpi(engine, "cost_variance", "2026-11", service="api", policy=pol)
    assert (api.status, api.json["target"]["op"], api.json["target"]["value"]) == (
        "met", "abs<", 15)
    # the whole ledger mixes EUR and USD in November: an error naming both, no value
    mixed = kpi(engine, "cost_variance", "2026-11")
    assert mixed.value is None
    assert mixed.status == "error"
    assert "EUR" in mixed.json["error"] and "USD" in mixed.json["error"]
    # team web alone is all USD: budget bw 100 (shop) ; cost kw names the team, which has
    # no budget of its own -> left out -> 100 * (0 - 100) / 100 = -100
    web = kpi(engine, "cost_variance", "2026-11", team="web")
    assert (web.value, web.count, web.status) == (pytest.approx(-100.0), 1, "missed")
    assert "error" not in web.json
    # a budget sum of 0 gives no value
    zero = kpi(engine, "cost_variance", "2026-12")
    assert (zero.value, zero.count, zero.status) == (None, 1, "no_data")


def test_cost_variance_replaced_budget(engine: Engine) -> None:
    load_with_topology(engine, COSTS)
    # b3 replaced: shop's November budget moves to scope api -> (api, 2026-11) budgets
    # 1000 + 500 = 1500 against cost 900 ; W44 totals: budgets 2700, costs 1100 + 900 + 260 = 2260
    load(engine, [money("budget", "b3", "api", "2026-11", 500.0)])
    assert_no_data(kpi(engine, "cost_variance", "2026-W44", service="shop"))
    api = kpi(engine, "cost_variance", "2026-11", service="api")
    # 100 * (900 - 1500) / 1500 = -40
    assert (api.value, api.count) == (pytest.approx(-40.0), 2)
    # the pair cost 900 is counted once although two budgets share it: W44 stays -44000 / 2700
    w44 = kpi(engine, "cost_variance", "2026-W44")
    assert (w44.value, w44.count) == (pytest.approx(-44000 / 2700), 4)


# --- automation_coverage ----------------------------------------------------------------------


def task(tid: str, team: str | None, at: str, automated: bool, minutes: float = 10.0,
         ) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "task_run", "id": tid, "task": "t", "performed_at": at,
                           "automated": automated, "minutes": minutes}
    if team is not None:
        rec["team"] = team
    return rec


def test_automation_coverage_year_earlier_baseline(engine: Engine) -> None:
    load_with_topology(engine, [
        task("t1", "ops", "2026-11-05T10:00:00Z", True),
        task("t2", "ops", "2026-11-06T10:00:00Z", True),
        task("t3", "ops", "2026-11-01T00:00:00Z", False),  # at the start: in
        task("t4", "web", "2026-11-07T10:00:00Z", True),
        task("t5", "ops", "2026-12-01T00:00:00Z", False),  # at the end: out
        task("t6", "ops", "2026-10-31T23:30:00-02:00", True),  # 11-01T01:30Z: in
        task("t7", "web", "2026-11-08T10:00:00Z", False),
        task("z1", "ops", "2026-10-15T10:00:00Z", False),  # previous month: not the baseline
        # a year earlier, 2025-11
        task("y1", "ops", "2025-11-03T10:00:00Z", True),
        task("y2", "ops", "2025-11-04T10:00:00Z", False),
        task("y3", "web", "2025-11-05T10:00:00Z", False),
        task("y4", "web", "2025-11-06T10:00:00Z", True),
    ])
    r = kpi(engine, "automation_coverage", "2026-11")
    # Nov: t1 t2 t3 t4 t6 t7 = 6, automated t1 t2 t4 t6 = 4 -> 400 / 6
    # 2025-11: y1..y4, automated y1 y4 -> 50 ; 400/6 = 66.7 >= 50 + 10 -> met
    assert (r.value, r.count, r.status) == (pytest.approx(400 / 6), 6, "met")
    assert r.json["baseline"] == {"period": "2025-11", "value": pytest.approx(50.0)}
    ops = kpi(engine, "automation_coverage", "2026-11", team="ops")
    # ops: t1 t2 t3 t6 -> 3 / 4 = 75 ; 2025-11 ops y1 y2 -> 50 ; 75 >= 60 -> met
    assert (ops.value, ops.count, ops.status) == (pytest.approx(75.0), 4, "met")
    assert ops.json["baseline"]["value"] == pytest.approx(50.0)
    web = kpi(engine, "automation_coverage", "2026-11", team="web")
    # web: t4 t7 -> 50 ; 2025-11 web y3 y4 -> 50 ; 50 >= 60 ? no -> missed
    assert (web.value, web.count, web.status) == (pytest.approx(50.0), 2, "missed")
    # task runs have no service: a service scope sees none
    assert_no_data(kpi(engine, "automation_coverage", "2026-11", service="api"))
    assert_no_data(kpi(engine, "automation_coverage", "2026-11", team="ops", service="api"))


# --- toil_hours_per_week ----------------------------------------------------------------------


def test_toil_hours_previous_period_baseline(engine: Engine) -> None:
    load_with_topology(engine, [
        task("m1", "ops", "2026-11-05T10:00:00Z", False, 90.0),
        task("m2", "ops", "2026-11-01T00:00:00Z", False, 30.0),  # at the start: in
        task("m3", "ops", "2026-11-06T10:00:00Z", True, 600.0),  # automated: no toil
        task("m4", "web", "2026-11-20T10:00:00Z", False, 60.0),
        task("m5", "ops", "2026-12-01T00:00:00Z", False, 999.0),  # at the end: out
        task("m6", "web", "2026-11-10T10:00:00Z", True, 45.0),  # W46, automated
        task("m7", "web", "2026-11-04T10:00:00Z", False, 30.0),  # W45
        # the previous period of the same length as November (30 days): [10-02, 11-01)
        task("p1", "ops", "2026-10-02T00:00:00Z", False, 120.0),  # its start: in
        task("p2", "ops", "2026-10-01T23:59:59Z", False, 600.0),  # before it: out
        task("p3", "web", "2026-10-20T10:00:00Z", False, 240.0),
    ])
    r = kpi(engine, "toil_hours_per_week", "2026-11")
    # manual Nov: m1 90 + m2 30 + m4 60 + m7 30 = 210 min = 3.5 h ; / (30 / 7) = 24.5 / 30
    # baseline [10-02, 11-01): p1 120 + p3 240 = 360 min = 6 h ; 6 * 7 / 30 = 1.4
    # count: all task runs m1 m2 m3 m4 m6 m7 = 6 ; 0.8167 < 1.4 -> met
    assert (r.value, r.count, r.status) == (pytest.approx(24.5 / 30), 6, "met")
    assert r.json["baseline"] == {"period": "2026-10-02..2026-11-01",
                                  "value": pytest.approx(1.4)}
    ops = kpi(engine, "toil_hours_per_week", "2026-11", team="ops")
    # ops: m1 90 + m2 30 = 2 h -> 14 / 30 ; baseline p1 120 = 2 h -> 14 / 30 ; not lower -> missed
    assert (ops.value, ops.count, ops.status) == (pytest.approx(14 / 30), 3, "missed")
    assert ops.json["baseline"]["value"] == pytest.approx(14 / 30)
    # W46 [11-09, 11-16), team web: only m6, automated -> 0 (a value) ; count 1
    # baseline W45 [11-02, 11-09) web: m7 30 min = 0.5 h / (7 / 7) = 0.5 ; 0 < 0.5 -> met
    w46 = kpi(engine, "toil_hours_per_week", "2026-W46", team="web")
    assert (w46.value, w46.count, w46.status) == (0.0, 1, "met")
    assert w46.json["baseline"] == {"period": "2026-11-02..2026-11-09", "value": pytest.approx(0.5)}
    assert_no_data(kpi(engine, "toil_hours_per_week", "2026-11", service="api"))
    assert_no_data(kpi(engine, "toil_hours_per_week", "2026-08"))


# --- documentation_freshness ------------------------------------------------------------------


def runbook(rid: str, service: str | None, reviewed: str) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "runbook", "id": rid, "last_reviewed_at": reviewed}
    if service is not None:
        rec["service"] = service
    return rec


def test_documentation_freshness_cutoff(engine: Engine) -> None:
    load_with_topology(engine, [
        # 2026-11: end 2026-12-01 ; - 182 days = 2026-06-02T00:00Z (Jun 2 + 29 + 31 + 31 + 30
        # + 31 + 30 = 182 days to Dec 1)
        runbook("rb1", "api", "2026-06-02T00:00:00Z"),  # exactly at the cutoff: fresh
        runbook("rb2", "api", "2026-06-01T23:59:59Z"),  # one second before: stale
        runbook("rb3", "shop", "2027-03-01T00:00:00Z"),  # after the period: fresh (no upper bound)
        runbook("rb4", "db", "2026-06-01T23:30:00-02:00"),  # = 06-02T01:30Z: fresh
        runbook("rb5", None, "2020-01-01T00:00:00Z"),  # stale
    ])
    r = kpi(engine, "documentation_freshness", "2026-11")
    # fresh rb1 rb3 rb4 = 3 of 5 -> 60 ; > 80 ? no -> missed
    assert (r.value, r.count, r.status) == (pytest.approx(60.0), 5, "missed")
    ops = kpi(engine, "documentation_freshness", "2026-11", team="ops")
    # ops: rb1 fresh, rb2 stale, rb4 fresh -> 200 / 3
    assert (ops.value, ops.count) == (pytest.approx(200 / 3), 3)
    # 2026-W45 ends 2026-11-09, 22 days before Dec 1: cutoff 2026-05-11 -> rb2 fresh too:
    # 4 of 5 = 80 ; > 80 ? no -> missed
    w = kpi(engine, "documentation_freshness", "2026-W45")
    assert (w.value, w.count, w.status) == (pytest.approx(80.0), 5, "missed")
    pol = Policy.model_validate(
        {"targets": {"documentation_freshness": {"op": ">=", "value": 80}}})
    assert kpi(engine, "documentation_freshness", "2026-W45", policy=pol).status == "met"
    # rb2 replaced: reviewed in November -> 2026-11: 4 of 5 = 80 ; ops 3 of 3 = 100 -> met
    load(engine, [runbook("rb2", "api", "2026-11-15T00:00:00Z")])
    assert kpi(engine, "documentation_freshness", "2026-11").value == pytest.approx(80.0)
    ops = kpi(engine, "documentation_freshness", "2026-11", team="ops")
    assert (ops.value, ops.status) == (pytest.approx(100.0), "met")
    assert_no_data(kpi(engine, "documentation_freshness", "2026-11", service="ghost"))


def test_documentation_freshness_without_runbooks(engine: Engine) -> None:
    load_with_topology(engine, [])
    assert_no_data(kpi(engine, "documentation_freshness", "2026-11"))


# --- stakeholder_satisfaction -----------------------------------------------------------------


def survey(sid: str, team: str | None, at: str, score: float) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "survey_response", "id": sid, "submitted_at": at,
                           "score": score}
    if team is not None:
        rec["team"] = team
    return rec


def test_stakeholder_satisfaction(engine: Engine) -> None:
    load_with_topology(engine, [
        survey("s1", "ops", "2026-11-05T10:00:00Z", 5.0),
        survey("s2", "ops", "2026-11-06T10:00:00Z", 4.0),
        survey("s3", "web", "2026-11-07T10:00:00Z", 3.0),
        survey("s4", None, "2026-11-01T00:00:00Z", 4.0),  # at the start: in
        survey("s5", "ops", "2026-12-01T00:00:00Z", 1.0),  # at the end: out
        survey("s6", "web", "2026-10-31T23:30:00-02:00", 5.0),  # 11-01T01:30Z: in
    ])
    r = kpi(engine, "stakeholder_satisfaction", "2026-11")
    # (5 + 4 + 3 + 4 + 5) / 5 = 21 / 5 = 4.2 ; >= 4.2 -> met
    assert (r.value, r.count, r.status) == (pytest.approx(4.2), 5, "met")
    ops = kpi(engine, "stakeholder_satisfaction", "2026-11", team="ops")
    # (5 + 4) / 2 = 4.5
    assert (ops.value, ops.count, ops.status) == (pytest.approx(4.5), 2, "met")
    web = kpi(engine, "stakeholder_satisfaction", "2026-11", team="web")
    # (3 + 5) / 2 = 4.0 -> missed
    assert (web.value, web.count, web.status) == (pytest.approx(4.0), 2, "missed")
    # survey responses have no service
    assert_no_data(kpi(engine, "stakeholder_satisfaction", "2026-11", service="shop"))
    # s3 replaced with score 5: web (5 + 5) / 2 = 5
    load(engine, [survey("s3", "web", "2026-11-07T10:00:00Z", 5.0)])
    assert kpi(engine, "stakeholder_satisfaction", "2026-11", team="web").value == \
        pytest.approx(5.0)
    assert_no_data(kpi(engine, "stakeholder_satisfaction", "2026-10"))


# --- delivery_predictability ------------------------------------------------------------------


def work(wid: str, team: str | None, due: str, completed: str | None) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "work_item", "id": wid, "due": due}
    if team is not None:
        rec["team"] = team
    if completed is not None:
        rec["completed_at"] = completed
    return rec


def test_delivery_predictability(engine: Engine) -> None:
    load_with_topology(engine, [
        work("w1", "ops", "2026-11-10", "2026-11-10T23:59:59Z"),  # last second of due: on time
        work("w2", "ops", "2026-11-10", "2026-11-11T00:00:00Z"),  # next day: late
        work("w3", "web", "2026-11-30", "2026-11-30T23:30:00-02:00"),  # = 12-01T01:30Z: late
        work("w4", "web", "2026-11-01", "2026-10-25T10:00:00Z"),  # first day, early: on time
        work("w5", "ops", "2026-12-01", "2026-11-02T10:00:00Z"),  # due after period: out
        work("w6", "ops", "2026-11-20", None),  # never completed: late
        work("w7", None, "2026-11-05", "2026-11-04T10:00:00Z"),  # no team: on time
    ])
    r = kpi(engine, "delivery_predictability", "2026-11")
    # w1 w2 w3 w4 w6 w7 = 6 ; on time w1 w4 w7 = 3 -> 50
    assert (r.value, r.count, r.status) == (pytest.approx(50.0), 6, "missed")
    ops = kpi(engine, "delivery_predictability", "2026-11", team="ops")
    # ops: w1 w2 w6 -> 100 / 3
    assert (ops.value, ops.count) == (pytest.approx(100 / 3), 3)
    web = kpi(engine, "delivery_predictability", "2026-11", team="web")
    # web: w3 late, w4 on time -> 50
    assert (web.value, web.count) == (pytest.approx(50.0), 2)
    assert_no_data(kpi(engine, "delivery_predictability", "2026-11", service="api"))
    # w2 replaced: completed on its due date -> ops 2 of 3
    load(engine, [work("w2", "ops", "2026-11-10", "2026-11-10T08:00:00Z")])
    ops = kpi(engine, "delivery_predictability", "2026-11", team="ops")
    assert ops.value == pytest.approx(200 / 3)
    assert_no_data(kpi(engine, "delivery_predictability", "2026-10"))
