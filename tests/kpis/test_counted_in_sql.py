"""KPIs that count in SQL, or read packed integers, when no evidence is asked for
(backup_success_rate, patch_compliance_critical, vuln_sla_adherence, change_failure_rate,
change_lead_time_p50; delivery_predictability and action_item_follow_through compare epoch
microseconds) against their evidence path (explain=True), which reads the records one by one:
both must give the same value, count and extras on every scope and period, edge cases
included. The new backup edge cases are also computed by hand below.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.core.periods import Period, parse_period
from opsledger.kpis.engine import scorecard
from opsledger.kpis.model import Scope
from opsledger.kpis.policy import Policy
from tests.conftest import load
from tests.kpis.helpers import MIXED, days, kpi, load_with_topology
from tests.kpis.test_backups import (
    CRON_RULES,
    SEVERAL_TICKS_AND_UNSCHEDULED,
    SINCE_AND_FIRST_RUN,
    job,
    run,
)
from tests.kpis.test_changes import FAILURES, LEAD_TIME, change
from tests.kpis.test_money_and_work import work
from tests.kpis.test_security import ASSETS, VULNS

SCOPES: list[dict[str, str]] = [{}, {"team": "ops"}, {"team": "web"}, {"service": "api"},
                                {"service": "db"}, {"service": "orphan"},
                                {"team": "ops", "service": "api"}]
# months, an ISO week, single days and the period of the backup edge cases below
PERIODS: list[str | Period] = ["2026-10", "2026-11", "2026-W45", days("2026-11-03", "2026-11-04"),
                               days("2026-11-02", "2026-11-04"), days("2026-11-02", "2026-11-05")]


def same_both_ways(engine: Engine, kpi_id: str, periods: list[str | Period],
                   policy: Policy | None = None) -> list[tuple[Any, ...]]:
    """(value, count, extras) of every scope and period, asserting the SQL count equals the
    evidence path; returns them for further checks."""
    seen = []
    for when in periods:
        for scope in SCOPES:
            fast = kpi(engine, kpi_id, when, policy=policy, **scope)
            slow = kpi(engine, kpi_id, when, policy=policy, explain=True, **scope)
            assert fast.figure.outcome.evidence is None
            assert (fast.value, fast.count, fast.json) == (slow.value, slow.count, slow.json), \
                (kpi_id, when, scope)
            seen.append((fast.value, fast.count))
    assert any(v is not None for v, _ in seen), "the data must give values"
    return seen


# Period [2026-11-02, 2026-11-04): daily ticks at 02:00 on 11-02 and 11-03.
EDGES = [
    # two runs at the very same start, one failed and one successful: 11-02 met ; the
    # successful run in the last microsecond of 11-03's window: met -> 2 of 2
    job("ja", "api", "0 2 * * *", since="2026-10-01T00:00:00Z"),
    run("a1", "ja", "2026-11-02T02:00:00Z", "failed"),
    run("a2", "ja", "2026-11-02T02:00:00Z"),
    run("a3", "ja", "2026-11-03T02:59:59.999999Z"),
    # a run exactly at tick + 1 h meets nothing and is no run for that tick either;
    # a run after the period meets no tick of it -> 0 of 2, both silent
    job("jb", "db", "0 2 * * *", since="2026-10-01T00:00:00Z"),
    run("b0", "jb", "2026-11-03T03:00:00Z"),
    run("b1", "jb", "2026-11-04T02:30:00Z"),
    # scheduled at first, then replaced without a schedule: its runs in the period count as
    # recorded: c1 success, c2 failed ; c3 at the end and c4 before the start are out -> 1 of 2
    job("jc", "shop", "0 2 * * *", since="2026-10-01T00:00:00Z"),
    run("c1", "jc", "2026-11-02T05:00:00Z"),
    run("c2", "jc", "2026-11-03T23:59:59Z", "failed"),
    run("c3", "jc", "2026-11-04T00:00:00Z"),
    run("c4", "jc", "2026-11-01T23:59:59Z"),
    # runs of a job that is not in the ledger: recorded, unscoped only -> 1 of 2
    run("g1", "ghost", "2026-11-02T10:00:00Z"),
    run("g2", "ghost", "2026-11-03T10:00:00Z", "failed"),
    # no since and no run at all: every tick, 2 silent
    job("jd", "api", "30 1 * * *"),
    # a job of a service without team: unscoped only ; its first run (failed, 11-02T02:30)
    # makes 11-02 expected (window ends 03:00, after 02:30): 2 ticks, 11-03 met -> 1 of 2
    job("je", "orphan", "0 2 * * *"),
    run("e1", "je", "2026-11-02T02:30:00Z", "failed"),
    run("e2", "je", "2026-11-03T02:10:00Z"),
]


def test_backup_edges_by_hand_and_both_ways(engine: Engine) -> None:
    load_with_topology(engine, EDGES)
    load(engine, [job("jc", "shop")])  # replaced: no schedule any more
    period = days("2026-11-02", "2026-11-04")
    r = kpi(engine, "backup_success_rate", period)
    # expected: ja 2 + jb 2 + jc 2 + ghost 2 + jd 2 + je 2 = 12 ; met 2 + 0 + 1 + 1 + 0 + 1 = 5
    # silent: jb 2 + jd 2 + je 0 (11-02 has the failed run) = 4
    assert (r.value, r.count, r.json["silent_failures"]) == (pytest.approx(500 / 12), 12, 4)
    ops = kpi(engine, "backup_success_rate", period, team="ops")
    # ja, jb, jd: 6 expected, 2 met, 4 silent
    assert (ops.value, ops.count, ops.json["silent_failures"]) == (pytest.approx(200 / 6), 6, 4)
    shop = kpi(engine, "backup_success_rate", period, service="shop")
    assert (shop.value, shop.count, shop.json["silent_failures"]) == (pytest.approx(50.0), 2, 0)
    for scope in SCOPES:
        fast = kpi(engine, "backup_success_rate", period, **scope)
        slow = kpi(engine, "backup_success_rate", period, explain=True, **scope)
        assert fast.json == slow.json, scope
    # b0 replaced: now at 02:10 on 11-03 -> jb meets 11-03: met 6, silent 3
    load(engine, [run("b0", "jb", "2026-11-03T02:10:00Z")])
    r = kpi(engine, "backup_success_rate", period)
    assert (r.value, r.count, r.json["silent_failures"]) == (pytest.approx(50.0), 12, 3)
    assert r.json == kpi(engine, "backup_success_rate", period, explain=True).json
    # a 90-minute window: runs up to tick + 90 min meet the tick
    pol = Policy.model_validate({"backups": {"tick_window_minutes": 90}})
    same_both_ways(engine, "backup_success_rate", PERIODS, pol)


@pytest.mark.parametrize("records", [SINCE_AND_FIRST_RUN, SEVERAL_TICKS_AND_UNSCHEDULED,
                                     CRON_RULES, EDGES])
def test_backup_success_both_ways(engine: Engine, records: list[dict[str, Any]]) -> None:
    load_with_topology(engine, records)
    same_both_ways(engine, "backup_success_rate", PERIODS)


def test_vulnerabilities_both_ways(engine: Engine) -> None:
    load_with_topology(engine, ASSETS + VULNS)
    same_both_ways(engine, "patch_compliance_critical", PERIODS)
    same_both_ways(engine, "vuln_sla_adherence", PERIODS)
    pol = Policy.model_validate({"vulnerability_sla_days": {"critical": 7, "low": 200}})
    same_both_ways(engine, "patch_compliance_critical", PERIODS, pol)
    same_both_ways(engine, "vuln_sla_adherence", PERIODS, pol)


def test_change_failure_rate_both_ways(engine: Engine) -> None:
    load_with_topology(engine, FAILURES)
    same_both_ways(engine, "change_failure_rate", PERIODS)
    # the incident naming f4 replaced without caused_by_change
    load(engine, [{"kind": "incident", "id": "x2", "severity": 3, "service": "api",
                   "started_at": "2026-11-06T11:00:00Z"}])
    same_both_ways(engine, "change_failure_rate", PERIODS)


def test_change_lead_time_both_ways(engine: Engine) -> None:
    load_with_topology(engine, LEAD_TIME)
    seen = same_both_ways(engine, "change_lead_time_p50", PERIODS)
    assert (2.5, 8) in seen  # 2026-11 unscoped, as in tests/kpis/test_changes.py
    # a change replaced without approved_at leaves the median
    load(engine, [change("c8", service="orphan", deployed_at="2026-11-23T00:00:00Z")])
    same_both_ways(engine, "change_lead_time_p50", PERIODS)


def test_on_time_both_ways(engine: Engine) -> None:
    load_with_topology(engine, [
        work("w1", "ops", "2026-11-10", "2026-11-10T23:59:59.999999Z"),  # last microsecond
        work("w2", "ops", "2026-11-10", "2026-11-11T00:00:00Z"),  # next day: late
        work("w3", "web", "2026-11-30", "2026-11-30T23:30:00-02:00"),  # 12-01T01:30Z: late
        work("w4", "web", "2026-11-01", "1969-12-31T23:00:00Z"),  # before the epoch: on time
        work("w6", "ops", "2026-11-20", None),  # never completed
        work("w7", None, "2026-11-05", "2026-11-04T10:00:00Z"),
        {"kind": "incident", "id": "i1", "severity": 2, "service": "api",
         "started_at": "2026-10-30T10:00:00Z"},
        {"kind": "action_item", "id": "ai1", "incident": "i1", "due": "2026-11-03",
         "completed_at": "2026-11-03T23:59:59Z"},
        {"kind": "action_item", "id": "ai2", "incident": "i1", "due": "2026-11-03",
         "completed_at": "2026-11-04T00:00:00Z"},
        {"kind": "action_item", "id": "ai3", "incident": "ghost", "due": "2026-11-04"},
    ])
    seen = same_both_ways(engine, "delivery_predictability", PERIODS)
    assert (50.0, 6) in seen  # w1 w4 w7 of six
    seen = same_both_ways(engine, "action_item_follow_through", PERIODS)
    assert (pytest.approx(100 / 3), 3) in seen  # ai1 of ai1 ai2 ai3


def test_scorecard_shares_totals_without_changing_figures(engine: Engine) -> None:
    """A scorecard reads the task-run totals once for toil and automation and the findings
    once for both vulnerability KPIs (`Ctx.shared`); every figure, baseline and trend must
    equal the KPI evaluated alone, and a different SLA policy must not reuse the totals."""
    load_with_topology(engine, MIXED + ASSETS + VULNS)
    policies = [Policy(), Policy.model_validate({"vulnerability_sla_days": {"critical": 7}})]
    for pol in policies:
        for when in ("2026-11", "2026-10"):
            for scope in ({}, {"team": "ops"}, {"service": "shop"}):
                with engine.connect() as conn:
                    card = scorecard(conn, parse_period(when), Scope(**scope), pol, trend=2)
                for item in card["kpis"]:
                    alone = kpi(engine, item["id"], when, policy=pol, **scope).json
                    assert {k: v for k, v in item.items() if k != "trend"} == alone
                    for t in item["trend"]:
                        back = kpi(engine, item["id"], t["period"], policy=pol, **scope)
                        assert (t["value"], t["count"]) == (back.value, back.count)
    # the shorter critical SLA changes patch compliance in November (tests/kpis/test_security)
    with engine.connect() as conn:
        cards = [scorecard(conn, parse_period("2026-11"), Scope(), p) for p in policies]
    values = [{i["id"]: i["value"] for i in c["kpis"]}["patch_compliance_critical"]
              for c in cards]
    assert values[0] != values[1]
