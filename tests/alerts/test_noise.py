"""The alert-noise analysis on hand-computed records (tests/alerts/data.py), on SQLite and
PostgreSQL: per-rule figures, storms, flapping, quick resolves, recommendations with exact
expected ratios, scope, the empty period, and equality with the scorecard's alert_noise_ratio."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from opsledger.alerts.figures import _storms, _window_ends
from opsledger.alerts.noise import NoiseReport, RuleStats, Thresholds, analyse, recommend
from opsledger.core.periods import Period
from opsledger.kpis.model import US_PER_MIN, Ctx, Scope
from opsledger.kpis.policy import AlertsPolicy, Policy
from tests.alerts.data import NOISY, RECORDS, STORM_POLICY, TOTAL, alert
from tests.conftest import load
from tests.kpis.helpers import days, kpi, load_with_topology, period


def run(
    engine: Engine,
    when: str | Period = "2026-11",
    *,
    team: str | None = None,
    service: str | None = None,
    policy: Policy = STORM_POLICY,
    thresholds: Thresholds | None = None,
) -> NoiseReport:
    p = period(when) if isinstance(when, str) else when
    with engine.connect() as conn:
        return analyse(Ctx(conn, p, Scope(team, service), policy), thresholds)


def rules(report: NoiseReport) -> dict[str, RuleStats]:
    return {r.name: r for r in report.rules}


def recs(report: NoiseReport) -> list[tuple[int, str, str, int, int]]:
    return [(r.rank, r.action, r.rule, r.removed, r.removed_non_actionable)
            for r in report.recommendations]


def test_per_rule_figures(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    report = run(engine)
    assert (report.occurrences, report.non_actionable) == (TOTAL, NOISY)
    assert report.noise_ratio == pytest.approx(100 * 28 / 36)
    assert (report.status, report.target["text"]) == ("missed", "< 20")
    by = rules(report)
    # noisiest first: Chatty 10, Storm 9, Flappy 5, Paged 3, NoSvc 1, then Edge/Orphan 0
    assert [r.name for r in report.rules] == [
        "Chatty", "Storm", "Flappy", "Paged", "NoSvc", "Edge", "Orphan"]

    f = by["Flappy"]
    assert (f.occurrences, f.actionable, f.flapping, f.resolved) == (6, 1, 3, 5)
    assert f.median_duration_minutes == pytest.approx(4.0)
    assert (f.quick_unacked, f.quick_unacked_actionable) == (3, 0)
    assert f.quick_unacked_percent == pytest.approx(50.0)
    assert (f.storms, f.biggest_storm, f.in_storms) == (0, 0, 0)
    assert (f.missing_runbook, f.actionable_missing_runbook) == (6, 1)
    assert f.missing_runbook_percent == pytest.approx(100.0)
    assert f.critical == 0 and f.critical_actionable_percent is None

    e = by["Edge"]  # e0 before the period is only the previous occurrence of e1's series
    assert (e.occurrences, e.actionable, e.flapping) == (1, 1, 1)
    assert e.median_duration_minutes == pytest.approx(26.0)

    s = by["Storm"]
    assert (s.occurrences, s.actionable, s.critical, s.critical_actionable) == (11, 2, 11, 2)
    assert (s.storms, s.biggest_storm, s.in_storms) == (2, 5, 9)
    assert (s.storm_excess, s.storm_excess_non_actionable) == (7, 7)
    assert s.flapping == 0 and s.resolved == 0 and s.median_duration_minutes is None
    assert s.missing_runbook == 0 and s.missing_runbook_percent == pytest.approx(0.0)

    c = by["Chatty"]  # acknowledged c1 stays not actionable: actionable false wins
    assert (c.occurrences, c.actionable, c.flapping, c.quick_unacked) == (10, 0, 0, 0)
    assert c.median_duration_minutes == pytest.approx(30.0)

    p = by["Paged"]
    assert (p.occurrences, p.actionable, p.critical, p.critical_actionable) == (6, 3, 6, 3)
    assert p.critical_actionable_percent == pytest.approx(50.0)
    assert p.median_duration_minutes == pytest.approx(20.0) and p.flapping == 0

    assert (by["Orphan"].actionable, by["NoSvc"].actionable) == (1, 0)


def test_recommendations_ranked_with_exact_ratios(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    report = run(engine)
    assert recs(report) == [
        (1, "delete", "Chatty", 10, 10),  # (28 - 10) / (36 - 10) = 18/26
        (2, "group_or_inhibit", "Storm", 7, 7),  # (28 - 7) / (36 - 7) = 21/29
        (3, "raise_for", "Flappy", 3, 3),  # (28 - 3) / (36 - 3) = 25/33
        (4, "demote_to_ticket", "Storm", 11, 9),  # (28 - 9) / (36 - 11) = 19/25
        # no change in the ratio; ties by rule name
        (5, "add_runbook", "Edge", 0, 0),
        (6, "add_runbook", "Flappy", 0, 0),
        (7, "add_runbook", "Orphan", 0, 0),
    ]
    before = 100 * 28 / 36
    expected_after = [100 * 18 / 26, 100 * 21 / 29, 100 * 25 / 33, 100 * 19 / 25,
                      before, before, before]
    for rec, after in zip(report.recommendations, expected_after, strict=True):
        assert rec.before == pytest.approx(before)
        assert rec.after == pytest.approx(after)
        assert rec.change == pytest.approx(after - before)
    delete, group, raise_for, demote = report.recommendations[:4]
    assert delete.evidence == "never actionable over 10 occurrences"
    assert group.evidence == ("2 storms, biggest 5 occurrences; 7 occurrences beyond the "
                              "first of each storm")
    assert raise_for.evidence.startswith(
        "3 of 6 occurrences (50.0 %) auto-resolved in under 5 min without acknowledgement, "
        "3 flapping")
    assert demote.figures["critical_actionable_percent"] == pytest.approx(200 / 11)
    # Paged: 50 % actionable is not below 50 -> never demoted; Chatty: only "delete"
    assert all(r.rule != "Paged" for r in report.recommendations)
    assert [r.action for r in report.recommendations if r.rule == "Chatty"] == ["delete"]
    data = report.as_json()
    assert data["recommendations"][0]["noise_ratio_after"] == pytest.approx(100 * 18 / 26)
    assert data["alert_noise_ratio"]["value"] == pytest.approx(before)


def test_thresholds_change_recommendations(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    strict = Thresholds(raise_for_min_count=4, delete_min_count=11,
                        demote_max_actionable_percent=51.0)
    report = run(engine, thresholds=strict)
    actions = {(r.action, r.rule) for r in report.recommendations}
    assert ("raise_for", "Flappy") not in actions  # 3 quick ones < 4
    assert ("delete", "Chatty") not in actions  # 10 < 11
    assert ("demote_to_ticket", "Paged") in actions  # 50 % < 51 %
    assert ("add_runbook", "Chatty") not in actions  # never actionable: nothing to run


def test_thresholds_come_from_the_policy(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    strict = AlertsPolicy(flap_minutes=10, quick_resolve_minutes=5, storm_count=4,
                          storm_minutes=10, raise_for_min_count=4, delete_min_count=11,
                          demote_max_actionable_percent=51.0)
    from_policy = run(engine, policy=Policy(alerts=strict))
    given = run(engine, thresholds=Thresholds(raise_for_min_count=4, delete_min_count=11,
                                              demote_max_actionable_percent=51.0))
    assert from_policy.as_json() == given.as_json()
    actions = {(r.action, r.rule) for r in from_policy.recommendations}
    assert ("delete", "Chatty") not in actions and ("demote_to_ticket", "Paged") in actions
    settings = from_policy.as_json()["settings"]
    assert (settings["delete_min_count"], settings["raise_for_min_count"]) == (11, 4)
    # a share threshold just above the rule's share turns a recommendation off
    flappy = rules(run(engine)).get("Flappy")
    assert flappy is not None and flappy.quick_unacked_percent == pytest.approx(50.0)
    above = AlertsPolicy(**{**strict.model_dump(), "raise_for_min_count": 3,
                            "raise_for_min_percent": 50.01})
    actions = {(r.action, r.rule) for r in run(engine, policy=Policy(alerts=above))
               .recommendations}
    assert ("raise_for", "Flappy") not in actions
    at = AlertsPolicy(**{**above.model_dump(), "raise_for_min_percent": 50.0})
    actions = {(r.action, r.rule) for r in run(engine, policy=Policy(alerts=at)).recommendations}
    assert ("raise_for", "Flappy") in actions


def test_policy_windows(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    # storms need 5 in 10 min: only burst 1; flapping within 4 min: f6 (3 min) only for
    # Flappy, not e1 (9 min); quick under 2 min: f3 (1 min) only
    pol = Policy(alerts=AlertsPolicy(flap_minutes=4, quick_resolve_minutes=2, storm_count=5,
                                     storm_minutes=10))
    by = rules(run(engine, policy=pol))
    assert (by["Storm"].storms, by["Storm"].biggest_storm, by["Storm"].storm_excess) == (1, 5, 4)
    assert (by["Flappy"].flapping, by["Edge"].flapping) == (1, 0)
    assert by["Flappy"].quick_unacked == 1
    # the default policy: storms of 50 never happen here; flapping 10 min, quick 5 min
    by = rules(run(engine, policy=Policy()))
    assert by["Storm"].storms == 0 and by["Flappy"].flapping == 3


def test_scope(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    ops = run(engine, team="ops")  # api, db: Flappy, Edge, Chatty, Paged
    assert sorted(rules(ops)) == ["Chatty", "Edge", "Flappy", "Paged"]
    assert (ops.occurrences, ops.non_actionable) == (23, 18)
    assert recs(ops)[0] == (1, "delete", "Chatty", 10, 10)
    assert ops.recommendations[0].after == pytest.approx(100 * 8 / 13)
    shop = run(engine, service="shop")
    assert (shop.occurrences, shop.non_actionable) == (11, 9)
    # demoting every alert in scope leaves none: the ratio after has no value, and ranks as a
    # fall to 0 (81.8 points) ahead of grouping's (9 - 7) / (11 - 7) = 50 % (31.8 points)
    assert [(r.action, r.removed) for r in shop.recommendations] == [
        ("demote_to_ticket", 11), ("group_or_inhibit", 7)]
    assert shop.recommendations[0].after is None
    assert shop.recommendations[1].after == pytest.approx(50.0)
    both = run(engine, team="ops", service="shop")  # shop is not an ops service
    assert both.occurrences == 0 and both.rules == []
    orphan = run(engine, service="orphan")
    assert (orphan.occurrences, orphan.noise_ratio) == (1, 0.0)
    assert orphan.status == "met"
    # Edge's look-back occurrence e0 is in service db: outside a shop scope, inside ops
    assert rules(run(engine, service="db"))["Edge"].flapping == 1


@pytest.mark.parametrize("scope", [{}, {"team": "ops"}, {"team": "web"}, {"service": "api"},
                                   {"service": "orphan"}, {"team": "nope"}])
def test_overall_ratio_equals_the_scorecard(engine: Engine, scope: dict[str, str]) -> None:
    load_with_topology(engine, RECORDS)
    for when in ["2026-11", "2026-10", "2026-Q4", days("2026-11-02", "2026-11-11")]:
        report = run(engine, when, **scope)
        figure = kpi(engine, "alert_noise_ratio", when, policy=STORM_POLICY, **scope)
        assert report.noise_ratio == figure.value
        assert report.occurrences == figure.count
        assert report.non_actionable == figure.json["non_actionable"]
        assert report.status == figure.status


def test_empty_period(engine: Engine) -> None:
    load_with_topology(engine, RECORDS)
    report = run(engine, "2026-09")
    assert (report.occurrences, report.noise_ratio, report.status) == (0, None, "no_data")
    assert report.rules == [] and report.recommendations == []
    data = report.as_json()
    assert data["alert_noise_ratio"]["value"] is None and data["rules"] == []


def test_labels_key_order_is_one_series(engine: Engine) -> None:
    # the same label set written in two key orders is one series: g2 flaps after g1
    load_with_topology(engine, [
        alert("g1", "Lbl", "2026-11-05T10:00:00Z", labels={"a": "1", "b": "2"},
              resolved_at="2026-11-05T10:01:00Z"),
        alert("g2", "Lbl", "2026-11-05T10:05:00Z", labels={"b": "2", "a": "1"}),
        # another label set: its own series, no previous occurrence
        alert("g3", "Lbl", "2026-11-05T10:06:00Z", labels={"a": "1", "b": "3"}),
        # neither fingerprint nor labels: the rule as a whole is the series
        alert("h1", "Bare", "2026-11-05T10:00:00Z", resolved_at="2026-11-05T10:01:00Z"),
        alert("h2", "Bare", "2026-11-05T10:02:00Z", labels={}),
    ])
    by = rules(run(engine))
    assert (by["Lbl"].flapping, by["Bare"].flapping) == (1, 1)


def test_thresholds_in_recommend_are_pure() -> None:
    # a rule alone in scope that is deleted: nothing is left, the ratio after has no value
    r = RuleStats("Only", occurrences=12, actionable=0, critical=0, critical_actionable=0,
                  missing_runbook=12, actionable_missing_runbook=0, quick_unacked=0,
                  quick_unacked_actionable=0, resolved=0)
    [rec] = recommend([r], 12, 12, Thresholds(), 5)
    assert (rec.action, rec.before, rec.after, rec.change) == ("delete", 100.0, None, None)


# --- the vectorised storm search against a plain one -------------------------------------


def _plain_storms(times: list[int], count: int, window: int) -> list[list[int]]:
    """Storms by the definition: windows [t, t + window) starting at an occurrence that hold
    at least `count`; windows sharing an occurrence are one storm."""
    times = sorted(times)
    windows = []
    for i, t in enumerate(times):
        members = [j for j in range(i, len(times)) if times[j] < t + window]
        if len(members) >= count:
            windows.append(set(members))
    storms: list[set[int]] = []
    for w in windows:  # windows come in start order; a window sharing with the last merges
        if storms and storms[-1] & w:
            storms[-1] |= w
        else:
            storms.append(set(w))
    return [sorted(times[j] for j in s) for s in storms]


@pytest.mark.parametrize("seed", range(6))
def test_storms_match_the_definition(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rules, window, count = 4, 10 * US_PER_MIN, 3
    rule = rng.integers(0, n_rules, 400).astype(np.int64)
    fired = rng.integers(0, 600 * US_PER_MIN, 400).astype(np.int64) // US_PER_MIN * US_PER_MIN
    act = (rng.random(400) < 0.2).astype(np.int64)
    got = _storms(rule, fired, act, count, window, n_rules)
    for r in range(n_rules):
        plain = _plain_storms(fired[rule == r].tolist(), count, window)
        sizes = [len(s) for s in plain]
        assert int(got[0][r]) == len(plain)
        assert int(got[1][r]) == max(sizes, default=0)
        assert int(got[2][r]) == sum(sizes)
        assert int(got[3][r]) == sum(sizes) - len(plain)


def test_window_ends_both_paths_agree() -> None:
    rng = np.random.default_rng(7)
    fired = np.sort(rng.integers(0, 10**9, 300)).astype(np.int64)
    rule = np.sort(rng.integers(0, 5, 300)).astype(np.int64)
    order = np.lexsort((fired, rule))
    rule, fired = rule[order], fired[order]
    small = _window_ends(rule, fired, 5 * 10**6)
    # rule codes so large that one composite key would overflow: the per-rule path
    huge = _window_ends(rule * 10**12, fired, 5 * 10**6)
    assert np.array_equal(small, huge)
    for i in range(300):
        same = (rule == rule[i]) & (fired >= fired[i]) & (fired < fired[i] + 5 * 10**6)
        assert small[i] == np.flatnonzero(same).max() + 1


def _brute(records: list[dict[str, Any]], pol: AlertsPolicy) -> dict[str, tuple[int, int]]:
    """Flapping and storms per rule, one alert at a time (for the random ledger below)."""
    from datetime import datetime

    def t(s: str) -> float:
        return datetime.fromisoformat(s).timestamp()

    out: dict[str, tuple[int, int]] = {}
    names = {r["name"] for r in records}
    for name in names:
        mine = sorted((r for r in records if r["name"] == name),
                      key=lambda r: (t(r["fired_at"]), t(r.get("resolved_at") or r["fired_at"])))
        flaps = 0
        for i, r in enumerate(mine):
            prev = [p for p in mine[:i] if p["fingerprint"] == r["fingerprint"]]
            if prev and prev[-1].get("resolved_at"):
                gap = t(r["fired_at"]) - t(prev[-1]["resolved_at"])
                flaps += 0 <= gap <= pol.flap_minutes * 60
        storms = _plain_storms([int(t(r["fired_at"])) for r in mine], pol.storm_count,
                               pol.storm_minutes * 60)
        out[name] = (flaps, len(storms))
    return out


def test_random_ledger_matches_a_plain_computation(engine: Engine) -> None:
    rng = np.random.default_rng(3)
    records = []
    for i in range(300):
        minute = int(rng.integers(0, 6 * 60))
        fired = f"2026-11-07T{minute // 60:02d}:{minute % 60:02d}:00Z"
        rec = alert(f"r{i}", f"R{rng.integers(0, 3)}", fired, fingerprint=f"fp{rng.integers(3)}")
        if rng.random() < 0.8:
            end = minute + int(rng.integers(0, 20))
            rec["resolved_at"] = f"2026-11-07T{end // 60:02d}:{end % 60:02d}:00Z"
        records.append(rec)
    load(engine, records)
    by = rules(run(engine))
    expected = _brute(records, STORM_POLICY.alerts)
    assert {n: (r.flapping, r.storms) for n, r in by.items()} == expected
    assert sum(r.storms for r in by.values()) > 0 and sum(r.flapping for r in by.values()) > 0


def test_garbage_collector_state_is_restored(engine: Engine) -> None:
    import gc

    load_with_topology(engine, RECORDS)
    assert gc.isenabled()
    run(engine)
    assert gc.isenabled()
    gc.disable()
    try:
        run(engine)
        assert not gc.isenabled()
    finally:
        gc.enable()
