"""Backup KPIs computed by hand: backup_success_rate (with silent_failures) and
restore_test_pass_rate (spec/kpis.md).

Rules exercised: expected runs are the cron ticks (UTC) of each job in the period, from the
job's `since` (ticks at or after it), else from its first recorded run of any status (ticks
whose hour window ends after that run started), else every tick; a tick is met by a
successful run started in [tick, tick + 1 h); runs of unscheduled jobs each count as one
expected run. Calendar: 2026-11-01 is a Sunday; Mondays of Nov 2026: 2, 9, 16, 23, 30.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.conftest import load
from tests.kpis.helpers import assert_no_data, days, kpi, load_with_topology


def job(jid: str, service: str | None, schedule: str | None = None,
        **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"kind": "backup_job", "id": jid, **fields}
    if service is not None:
        rec["service"] = service
    if schedule is not None:
        rec["schedule"] = schedule
    return rec


def run(rid: str, jid: str, started_at: str, status: str = "success",
        **fields: Any) -> dict[str, Any]:
    return {"kind": "backup_run", "id": rid, "job": jid, "started_at": started_at,
            "status": status, **fields}


# Period [2026-11-02, 2026-11-05): daily ticks at 02:00 on 11-02, 11-03, 11-04.
SINCE_AND_FIRST_RUN = [
    # since 04:00+02:00 = 11-03T02:00Z: ticks 11-03 (a tick at since counts) and 11-04 ->
    # 2 expected ; 11-03 met by 02:30 ; 11-04 nothing -> silent. The 11-02 run (the job's
    # first recorded run) is before since: since wins, no 11-02 tick.
    job("j_since", "api", "0 2 * * *", since="2026-11-03T04:00:00+02:00"),
    run("js0", "j_since", "2026-11-02T02:10:00Z"),
    run("js1", "j_since", "2026-11-03T02:30:00Z"),
    # no since; first run ever 11-03T02:59:59: tick 11-03 (window ends 03:00 > 02:59:59) is
    # expected and met; tick 11-02 (window ends 11-02T03:00) is not expected. 11-04: the run at
    # 03:00:00 = tick + 1 h does not meet it and no run is in [02:00, 03:00) -> silent.
    job("j_first", "api", "0 2 * * *"),
    run("jf1", "j_first", "2026-11-03T02:59:59Z"),
    run("jf2", "j_first", "2026-11-04T03:00:00Z"),
    # no since, no run at all: every tick (3), none met, 3 silent
    job("j_none", "db", "0 2 * * *"),
    # no since; first run exactly at 11-03T03:00: tick 11-03 02:00 (window ends 03:00, not
    # after 03:00) is not expected ; tick 11-04 is, met by 02:30 -> 1 expected, 1 met
    job("j_exact", "db", "0 2 * * *"),
    run("je1", "j_exact", "2026-11-03T03:00:00Z"),
    run("je2", "j_exact", "2026-11-04T02:30:00Z"),
    # no since; first run (failed) long before the period: all 3 ticks expected ;
    # 11-03 met by a run exactly at the tick ; 11-02 and 11-04 silent
    job("j_old", "api", "0 2 * * *"),
    run("jo0", "j_old", "2026-10-01T02:00:00Z", "failed"),
    run("jo1", "j_old", "2026-11-03T02:00:00Z"),
    # since before the period: 3 ticks. 11-02 failed then success (met); 11-03 failed only
    # (not met, but not silent); 11-04 success (met) -> 2 met, 0 silent
    job("j_fail", "shop", "0 2 * * *", since="2026-10-01T00:00:00Z"),
    run("jx1", "j_fail", "2026-11-02T02:05:00Z", "failed"),
    run("jx2", "j_fail", "2026-11-02T02:40:00Z"),
    run("jx3", "j_fail", "2026-11-03T02:05:00Z", "failed"),
    run("jx4", "j_fail", "2026-11-04T02:10:00Z"),
    # scheduled_at is informational: this run says it is 11-03's, but it started at 05:00,
    # outside [02:00, 03:00): it meets no tick
    run("jx5", "j_fail", "2026-11-03T05:00:00Z", scheduled_at="2026-11-03T02:00:00Z"),
]


def test_backup_since_first_run_and_silent_failures(engine: Engine) -> None:
    load_with_topology(engine, SINCE_AND_FIRST_RUN)
    p = days("2026-11-02", "2026-11-05")
    r = kpi(engine, "backup_success_rate", p)
    # expected: j_since 2 + j_first 2 + j_none 3 + j_exact 1 + j_old 3 + j_fail 3 = 14
    # met:      1 + 1 + 0 + 1 + 1 + 2 = 6 -> 100 * 6 / 14
    # silent:   1 + 1 + 3 + 0 + 2 + 0 = 7
    assert (r.value, r.count, r.status) == (pytest.approx(600 / 14), 14, "missed")
    assert r.json["silent_failures"] == 7
    assert r.json["silent_failures_status"] == "missed"
    ops = kpi(engine, "backup_success_rate", p, team="ops")
    # ops (api, db): all but j_fail: 11 expected, 4 met, 7 silent -> 400 / 11
    assert (ops.value, ops.count, ops.json["silent_failures"]) == (pytest.approx(400 / 11), 11, 7)
    web = kpi(engine, "backup_success_rate", p, team="web")
    # web (shop): j_fail: 3 expected, 2 met, 0 silent
    assert (web.value, web.count, web.json["silent_failures"]) == (pytest.approx(200 / 3), 3, 0)
    assert web.json["silent_failures_status"] == "met"
    sd = kpi(engine, "backup_success_rate", p, service="db")
    # db: j_none 3 + j_exact 1 expected, 0 + 1 met -> 25 ; 3 silent
    assert (sd.value, sd.count, sd.json["silent_failures"]) == (pytest.approx(25.0), 4, 3)
    one = kpi(engine, "backup_success_rate", days("2026-11-02", "2026-11-03"), service="db")
    # db on 11-02 alone: j_none's tick, never run -> 0 (a value, not no_data) ; j_exact none
    assert (one.value, one.count, one.json["silent_failures"]) == (0.0, 1, 1)


# Period [2026-11-02, 2026-11-03).
SEVERAL_TICKS_AND_UNSCHEDULED = [
    # ticks 23:00, 23:20, 23:40 ; one run at 23:50 is in all three windows -> 3 met
    job("j_q", "api", "*/20 23 * * *", since="2026-10-01T00:00:00Z"),
    run("q1", "j_q", "2026-11-02T23:50:00Z"),
    run("q0", "j_q", "2026-11-02T12:00:00Z"),  # meets no tick: does not count
    # tick 23:30 near the period end, met by a run after the end (00:15 next day)
    job("j_end", "api", "30 23 * * *", since="2026-10-01T00:00:00Z"),
    run("e1", "j_end", "2026-11-03T00:15:00Z"),
    # no schedule: each run in the period is one expected run, met when success
    job("j_un", "shop"),
    run("u1", "j_un", "2026-11-02T10:00:00Z"),
    run("u2", "j_un", "2026-11-02T11:00:00Z", "failed"),
    run("u3", "j_un", "2026-11-03T00:00:00Z"),  # at the end: out
    run("u4", "j_un", "2026-11-02T00:00:00Z"),  # at the start: in
    run("u5", "j_un", "2026-11-01T23:30:00-02:00"),  # = 11-02T01:30Z: in
]


def test_backup_one_run_several_ticks_period_end_and_unscheduled(engine: Engine) -> None:
    load_with_topology(engine, SEVERAL_TICKS_AND_UNSCHEDULED)
    p = days("2026-11-02", "2026-11-03")
    r = kpi(engine, "backup_success_rate", p)
    # expected: j_q 3 + j_end 1 + j_un 4 (u1 u2 u4 u5) = 8 ; met 3 + 1 + 3 = 7 -> 87.5
    assert (r.value, r.count, r.status) == (pytest.approx(87.5), 8, "missed")
    assert r.json["silent_failures"] == 0
    ops = kpi(engine, "backup_success_rate", p, team="ops")
    # ops: j_q and j_end: 4 of 4 -> 100 > 99 -> met
    assert (ops.value, ops.count, ops.status) == (pytest.approx(100.0), 4, "met")
    shop = kpi(engine, "backup_success_rate", p, service="shop")
    # shop: j_un: 3 of 4 -> 75
    assert (shop.value, shop.count, shop.json["silent_failures"]) == (pytest.approx(75.0), 4, 0)
    # replaced: u2 becomes a success ; q1 moves to 00:30 next day: only 23:40's window
    # [23:40, 00:40) holds it -> j_q 1 of 3, and 23:00, 23:20 are now silent
    load(engine, [run("u2", "j_un", "2026-11-02T11:00:00Z"),
                  run("q1", "j_q", "2026-11-03T00:30:00Z")])
    r = kpi(engine, "backup_success_rate", p)
    # expected 8 ; met 1 + 1 + 4 = 6 -> 75 ; silent 2
    assert (r.value, r.count, r.json["silent_failures"]) == (pytest.approx(75.0), 8, 2)


# Period 2026-11.
CRON_RULES = [
    # both day fields restricted -> OR: days 1, 15 or Mondays 2, 9, 16, 23, 30 = 7 ticks
    job("j_or", "api", "0 3 1,15 * mon", since="2026-10-01T00:00:00Z"),
    # day-of-month starts with '*' -> AND: dom in {1, 11, 21, 31} and Monday: none in Nov
    job("j_and", "api", "0 6 */10 * mon", since="2026-10-01T00:00:00Z"),
    # names: Sundays of November 1, 8, 15, 22, 29 = 5 ticks, all met
    job("j_names", "api", "0 4 * nov sun", since="2026-10-01T00:00:00Z"),
    # day-of-week 7 is Sunday: 5 ticks, no run at all -> 5 silent
    job("j_seven", "api", "0 5 * * 7", since="2026-10-01T00:00:00Z"),
]
CRON_RULES += [run(f"or{d}", "j_or", f"2026-11-{d:02d}T03:05:00Z") for d in (1, 2, 9, 16, 23, 30)]
CRON_RULES += [run(f"nm{d}", "j_names", f"2026-11-{d:02d}T04:30:00Z") for d in (1, 8, 15, 22, 29)]


def test_backup_cron_day_rules_and_names(engine: Engine) -> None:
    load_with_topology(engine, CRON_RULES)
    r = kpi(engine, "backup_success_rate", "2026-11")
    # expected 7 + 0 + 5 + 5 = 17 ; met 6 (all but 11-15) + 0 + 5 + 0 = 11 -> 1100 / 17
    # silent: j_or 11-15 + j_seven 5 = 6
    assert (r.value, r.count) == (pytest.approx(1100 / 17), 17)
    assert r.json["silent_failures"] == 6


def test_backup_no_ticks_and_empty(engine: Engine) -> None:
    load_with_topology(engine, [
        # schedule in force only from December: no tick in November
        job("j_later", "api", "0 2 * * *", since="2026-12-01T00:00:00Z"),
        run("l1", "j_later", "2026-11-10T02:00:00Z", "failed"),
        job("j_unsched", "api"),  # no schedule, no run in the period
        run("us1", "j_unsched", "2026-10-10T02:00:00Z"),
    ])
    r = kpi(engine, "backup_success_rate", "2026-11")
    assert_no_data(r)
    # no ticks -> silent_failures is 0
    assert r.json["silent_failures"] == 0
    # October: j_unsched's run (success) -> 1 of 1 ; j_later has no tick before December
    octo = kpi(engine, "backup_success_rate", "2026-10")
    assert (octo.value, octo.count, octo.status) == (pytest.approx(100.0), 1, "met")
    assert_no_data(kpi(engine, "backup_success_rate", "2026-10", team="web"))


# --- restore_test_pass_rate -----------------------------------------------------------------


def restore(rid: str, jid: str, started_at: str, passed: bool) -> dict[str, Any]:
    return {"kind": "restore_test", "id": rid, "job": jid, "started_at": started_at,
            "passed": passed}


def test_restore_test_pass_rate(engine: Engine) -> None:
    load_with_topology(engine, [
        job("jr_api", "api", "0 1 * * *"),
        job("jr_shop", "shop"),
        restore("rt1", "jr_api", "2026-11-03T10:00:00Z", True),
        restore("rt2", "jr_api", "2026-11-04T10:00:00Z", False),
        restore("rt3", "jr_shop", "2026-11-01T00:00:00Z", True),  # at the start: in
        restore("rt4", "jr_api", "2026-12-01T00:00:00Z", False),  # at the end: out
        restore("rt5", "jr_shop", "2026-10-31T23:30:00-02:00", True),  # 11-01T01:30Z: in
        restore("rt6", "ghost", "2026-11-05T10:00:00Z", False),  # unknown job: unscoped only
    ])
    r = kpi(engine, "restore_test_pass_rate", "2026-11")
    # rt1 rt2 rt3 rt5 rt6 = 5 ; passed rt1 rt3 rt5 = 3 -> 60
    assert (r.value, r.count, r.status) == (pytest.approx(60.0), 5, "missed")
    ops = kpi(engine, "restore_test_pass_rate", "2026-11", team="ops")
    # via jr_api: rt1 passed, rt2 failed -> 50
    assert (ops.value, ops.count) == (pytest.approx(50.0), 2)
    shop = kpi(engine, "restore_test_pass_rate", "2026-11", service="shop")
    # via jr_shop: rt3, rt5 both passed -> 100 == 100 -> met
    assert (shop.value, shop.count, shop.status) == (pytest.approx(100.0), 2, "met")
    # rt2 replaced: now passed -> ops 100, met
    load(engine, [restore("rt2", "jr_api", "2026-11-04T10:00:00Z", True)])
    ops = kpi(engine, "restore_test_pass_rate", "2026-11", team="ops")
    assert (ops.value, ops.count, ops.status) == (pytest.approx(100.0), 2, "met")
    assert_no_data(kpi(engine, "restore_test_pass_rate", "2026-11", service="orphan"))
    assert_no_data(kpi(engine, "restore_test_pass_rate", "2026-09"))
