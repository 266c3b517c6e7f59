"""Incident and alert KPIs computed by hand: mttr_sev1, mtta, incident_recurrence_rate,
alert_noise_ratio and action_item_follow_through (spec/kpis.md). Period: 2026-11, that is
[2026-11-01T00:00Z, 2026-12-01T00:00Z)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.kpis.policy import Policy
from tests.conftest import load
from tests.kpis.helpers import assert_no_data, kpi, load_with_topology


def incident(iid: str, severity: int, started_at: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "incident", "id": iid, "severity": severity, "started_at": started_at,
            **fields}


# --- mttr_sev1 ------------------------------------------------------------------------------

MTTR = [
    # restore is mitigated_at (not resolved_at): 10:00 -> 10:40 = 40 min
    incident("i1", 1, "2026-11-03T10:00:00Z", service="api", mitigated_at="2026-11-03T10:40:00Z",
             resolved_at="2026-11-03T12:00:00Z"),
    # no mitigated_at: resolved_at 08:00 -> 09:30 = 90 min
    incident("i2", 1, "2026-11-05T08:00:00Z", service="shop", resolved_at="2026-11-05T09:30:00Z"),
    # restored exactly at the period start: 23:00 -> 00:00 = 60 min, counts
    incident("i3", 1, "2026-10-31T23:00:00Z", service="api", mitigated_at="2026-11-01T00:00:00Z"),
    # restored exactly at the period end: out
    incident("i4", 1, "2026-11-30T23:00:00Z", service="api", mitigated_at="2026-12-01T00:00:00Z"),
    # never restored: out
    incident("i5", 1, "2026-11-10T10:00:00Z", service="api"),
    # Sev-2: 30 and 90 min -> mean 60
    incident("i6", 2, "2026-11-07T00:00:00Z", service="api", mitigated_at="2026-11-07T00:30:00Z"),
    incident("i7", 2, "2026-11-08T00:00:00Z", service="shop", mitigated_at="2026-11-08T01:30:00Z"),
    # 2026-10-31T23:30-02:00 is 2026-11-01T01:30Z (in November); 22:00Z -> 01:30Z = 210 min
    incident("i8", 1, "2026-10-31T22:00:00Z", service="db",
             mitigated_at="2026-10-31T23:30:00-02:00"),
]


def test_mttr_sev1_by_severity_edges_and_offsets(engine: Engine) -> None:
    load_with_topology(engine, MTTR)
    r = kpi(engine, "mttr_sev1", "2026-11")
    # Sev-1 restored in period: i1 40, i2 90, i3 60, i8 210 -> (40+90+60+210)/4 = 400/4 = 100
    assert r.value == pytest.approx(100.0)
    assert r.count == 4
    assert r.status == "missed"  # 100 < 60 is false
    # Sev-2: (30 + 90) / 2 = 60 ; no Sev-3 -> null
    assert r.json["by_severity"] == {"1": pytest.approx(100.0), "2": pytest.approx(60.0),
                                     "3": None}
    ops = kpi(engine, "mttr_sev1", "2026-11", team="ops")
    # team ops (api, db): i1 40, i3 60, i8 210 -> 310 / 3 ; Sev-2 i6 30
    assert (ops.value, ops.count) == (pytest.approx(310 / 3), 3)
    assert ops.json["by_severity"] == {"1": pytest.approx(310 / 3), "2": pytest.approx(30.0),
                                       "3": None}
    web = kpi(engine, "mttr_sev1", "2026-11", service="shop")
    # service shop: i2 90 ; Sev-2 i7 90
    assert (web.value, web.count, web.json["by_severity"]["2"]) == (
        pytest.approx(90.0), 1, pytest.approx(90.0))


def test_mttr_sev1_replaced_and_no_sev1(engine: Engine) -> None:
    load_with_topology(engine, [
        incident("i9", 1, "2026-11-12T10:00:00Z", service="api",
                 mitigated_at="2026-11-12T10:10:00Z", resolved_at="2026-11-12T11:00:00Z"),
        incident("s3", 3, "2026-11-12T10:00:00Z", service="api",
                 resolved_at="2026-11-12T10:45:00Z"),
    ])
    r = kpi(engine, "mttr_sev1", "2026-11")
    # i9 restored at mitigated_at: 10 min -> met
    assert (r.value, r.count, r.status) == (pytest.approx(10.0), 1, "met")
    # the replacement has mitigated_at null (= absent): restore is resolved_at, 60 min
    # (a replacement is never a field merge)
    load(engine, [incident("i9", 1, "2026-11-12T10:00:00Z", service="api", mitigated_at=None,
                           resolved_at="2026-11-12T11:00:00Z")])
    r = kpi(engine, "mttr_sev1", "2026-11")
    assert (r.value, r.count, r.status) == (pytest.approx(60.0), 1, "missed")  # 60 < 60 false
    # replaced again as Sev-2: no Sev-1 left -> no value, but by_severity still has 2 and 3
    load(engine, [incident("i9", 2, "2026-11-12T10:00:00Z", service="api",
                           resolved_at="2026-11-12T11:00:00Z")])
    r = kpi(engine, "mttr_sev1", "2026-11")
    assert_no_data(r)
    # Sev-2 i9 60 ; Sev-3 s3 45
    assert r.json["by_severity"] == {"1": None, "2": pytest.approx(60.0), "3": pytest.approx(45.0)}
    empty = kpi(engine, "mttr_sev1", "2026-10")
    assert_no_data(empty)
    assert empty.json["by_severity"] == {"1": None, "2": None, "3": None}


# --- mtta -----------------------------------------------------------------------------------

MTTA = [
    # detected 10:05 -> ack 10:15 = 10 min (detected_at preferred to started_at)
    incident("a1", 2, "2026-11-03T10:00:00Z", service="api", detected_at="2026-11-03T10:05:00Z",
             acknowledged_at="2026-11-03T10:15:00Z"),
    # no detected_at: started 10:00 -> ack 10:30 = 30 min
    incident("a2", 1, "2026-11-04T10:00:00Z", service="shop",
             acknowledged_at="2026-11-04T10:30:00Z"),
    # acknowledged exactly at the start: 23:50 -> 00:00 = 10 min, counts
    incident("a3", 3, "2026-10-31T23:50:00Z", service="api",
             acknowledged_at="2026-11-01T00:00:00Z"),
    # acknowledged exactly at the end: out
    incident("a4", 2, "2026-11-30T23:50:00Z", service="api",
             acknowledged_at="2026-12-01T00:00:00Z"),
    # never acknowledged: out
    incident("a5", 2, "2026-11-05T10:00:00Z", service="api"),
    # ack 2026-10-31T23:30-02:00 = 11-01T01:30Z; detected 02:10+01:00 = 01:10Z -> 20 min
    incident("a6", 2, "2026-11-01T01:00:00Z", service="db",
             detected_at="2026-11-01T02:10:00+01:00", acknowledged_at="2026-10-31T23:30:00-02:00"),
    # acknowledged before detection (the import allows it): detected 10:20 -> ack 10:10 = -10,
    # kept negative in the mean
    incident("a7", 2, "2026-11-06T10:00:00Z", service="api", detected_at="2026-11-06T10:20:00Z",
             acknowledged_at="2026-11-06T10:10:00Z"),
]


def test_mtta(engine: Engine) -> None:
    load_with_topology(engine, MTTA)
    r = kpi(engine, "mtta", "2026-11")
    # a1 10, a2 30, a3 10, a6 20, a7 -10 -> 60 / 5 = 12 ; report-only
    assert (r.value, r.count, r.status) == (pytest.approx(12.0), 5, "report")
    ops = kpi(engine, "mtta", "2026-11", team="ops")
    # a1 10, a3 10, a6 20, a7 -10 -> 30 / 4 = 7.5
    assert (ops.value, ops.count) == (pytest.approx(7.5), 4)
    # replaced: a2 now detected 10:20 -> 10 min ; all: 10+10+10+20-10 = 40 / 5 = 8
    load(engine, [incident("a2", 1, "2026-11-04T10:00:00Z", service="shop",
                           detected_at="2026-11-04T10:20:00Z",
                           acknowledged_at="2026-11-04T10:30:00Z")])
    assert kpi(engine, "mtta", "2026-11").value == pytest.approx(8.0)
    assert_no_data(kpi(engine, "mtta", "2026-09"))
    assert_no_data(kpi(engine, "mtta", "2026-11", service="orphan"))


# --- incident_recurrence_rate -----------------------------------------------------------------

RECURRENCE = [
    # earlier "disk" in another scope (shop, team web), exactly 720 h (30 days) before r1
    incident("e1", 2, "2026-10-11T12:00:00Z", service="shop", root_cause_key="disk"),
    incident("r1", 2, "2026-11-10T12:00:00Z", service="api", root_cause_key="disk"),
    # earlier "dns" 720 h + 1 s before r2: does not count
    incident("e2", 2, "2026-10-13T11:59:59Z", service="api", root_cause_key="dns"),
    incident("r2", 2, "2026-11-12T12:00:00Z", service="api", root_cause_key="dns"),
    # no key: in the denominator
    incident("r3", 3, "2026-11-15T12:00:00Z", service="db"),
    # first "mem" of the window (nothing before it), then r5 repeats it
    incident("r4", 2, "2026-11-20T12:00:00Z", service="api", root_cause_key="mem"),
    incident("r5", 2, "2026-11-21T12:00:00Z", service="db", root_cause_key="mem"),
    # team web: "disk" again, r1 (team ops) started 12 days before
    incident("r6", 2, "2026-11-22T12:00:00Z", service="shop", root_cause_key="disk"),
    # started exactly at the period start, no key: counts in the denominator
    incident("r0", 3, "2026-11-01T00:00:00Z", service="db"),
    # started exactly at the period end: out
    incident("r7", 2, "2026-12-01T00:00:00Z", service="api", root_cause_key="mem"),
    # 2026-10-31T23:30-02:00 = 11-01T01:30Z: in November ; key "net" never seen before
    incident("r8", 2, "2026-10-31T23:30:00-02:00", service="api", root_cause_key="net"),
]


def test_incident_recurrence(engine: Engine) -> None:
    load_with_topology(engine, RECURRENCE)
    r = kpi(engine, "incident_recurrence_rate", "2026-11")
    # started in Nov: r0 r1 r2 r3 r4 r5 r6 r8 = 8 ; repeats r1 (e1 at exactly -720 h),
    # r5 (r4), r6 (r1) = 3 -> 100 * 3 / 8 = 37.5
    assert (r.value, r.count, r.status) == (pytest.approx(37.5), 8, "missed")
    ops = kpi(engine, "incident_recurrence_rate", "2026-11", team="ops")
    # team ops: r0 r1 r2 r3 r4 r5 r8 = 7 ; repeats r1 (earlier e1 is team web's), r5 -> 200 / 7
    assert (ops.value, ops.count) == (pytest.approx(200 / 7), 7)
    web = kpi(engine, "incident_recurrence_rate", "2026-11", service="shop")
    # shop: r6 (repeats r1 of another scope) -> 100
    assert (web.value, web.count) == (pytest.approx(100.0), 1)
    # October: e1 e2 only, none repeated (nothing with their key before) -> 0 of 2
    octo = kpi(engine, "incident_recurrence_rate", "2026-10")
    assert (octo.value, octo.count, octo.status) == (0.0, 2, "met")
    assert_no_data(kpi(engine, "incident_recurrence_rate", "2026-09"))


def test_incident_recurrence_replaced_key(engine: Engine) -> None:
    load_with_topology(engine, RECURRENCE)
    # e2 replaced one second later: exactly 720 h (10-13 12:00 -> 11-12 12:00) before r2,
    # so r2 now repeats
    load(engine, [
        incident("e2", 2, "2026-10-13T12:00:00Z", service="api", root_cause_key="dns"),
        # r5 loses its key: no longer a repeat
        incident("r5", 2, "2026-11-21T12:00:00Z", service="db"),
    ])
    r = kpi(engine, "incident_recurrence_rate", "2026-11")
    # repeats r1, r2, r6 = 3 of 8 -> 37.5 ; team ops r1, r2 of 7 -> 200 / 7 ;
    # service db: r0 r3 r5, none repeats -> 0
    assert (r.value, r.count) == (pytest.approx(37.5), 8)
    assert kpi(engine, "incident_recurrence_rate", "2026-11", team="ops").value == \
        pytest.approx(200 / 7)
    assert kpi(engine, "incident_recurrence_rate", "2026-11", service="db").value == 0.0


# --- alert_noise_ratio ------------------------------------------------------------------------


def alert(aid: str, fired_at: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "alert", "id": aid, "name": "rule-" + aid, "fired_at": fired_at, **fields}


ALERTS = [
    alert("al1", "2026-11-02T10:00:00Z", service="api", actionable=True),  # actionable
    # explicit false wins over an acknowledgement: noise
    alert("al2", "2026-11-02T11:00:00Z", service="api", actionable=False,
          acknowledged_at="2026-11-02T11:05:00Z"),
    # absent, acknowledged: actionable
    alert("al3", "2026-11-03T10:00:00Z", service="shop", acknowledged_at="2026-11-03T10:01:00Z"),
    # absent, linked to an incident: actionable
    alert("al4", "2026-11-03T11:00:00Z", service="db", incident="inc-1"),
    alert("al5", "2026-11-04T10:00:00Z", service="api"),  # absent, nothing: noise
    alert("al6", "2026-11-04T11:00:00Z", service="shop", actionable=False),  # noise
    alert("al7", "2026-11-01T00:00:00Z", service="api"),  # at the start: counts, noise
    alert("al8", "2026-12-01T00:00:00Z", service="api"),  # at the end: out
    alert("al9", "2026-10-31T23:30:00-02:00", service="orphan"),  # 11-01T01:30Z: in, noise
]


def test_alert_noise(engine: Engine) -> None:
    load_with_topology(engine, ALERTS)
    r = kpi(engine, "alert_noise_ratio", "2026-11")
    # in period: al1..al7, al9 = 8 ; noise al2 al5 al6 al7 al9 = 5 -> 100 * 5 / 8 = 62.5
    assert (r.value, r.count, r.status) == (pytest.approx(62.5), 8, "missed")
    ops = kpi(engine, "alert_noise_ratio", "2026-11", team="ops")
    # ops (api, db): al1 al2 al4 al5 al7 = 5 ; noise al2 al5 al7 = 3 -> 60
    assert (ops.value, ops.count) == (pytest.approx(60.0), 5)
    # explain gives the same figure
    ex = kpi(engine, "alert_noise_ratio", "2026-11", team="ops", explain=True)
    assert (ex.value, ex.count) == (pytest.approx(60.0), 5)
    assert ex.ids("numerator") == {"al2", "al5", "al7"}
    # replaced: al5 now actionable, al7 explicitly not actionable although acknowledged
    load(engine, [
        alert("al5", "2026-11-04T10:00:00Z", service="api", actionable=True),
        alert("al7", "2026-11-01T00:00:00Z", service="api", actionable=False,
              acknowledged_at="2026-11-01T00:10:00Z"),
    ])
    r = kpi(engine, "alert_noise_ratio", "2026-11")
    # noise al2 al6 al7 al9 = 4 of 8 -> 50
    assert (r.value, r.count) == (pytest.approx(50.0), 8)
    # web: al3 actionable, al6 noise -> 50 ; a policy per team: < 60 for web -> met
    pol = Policy.model_validate({"teams": {"web": {"targets": {"alert_noise_ratio": 60}}}})
    web = kpi(engine, "alert_noise_ratio", "2026-11", team="web", policy=pol)
    assert (web.value, web.status) == (pytest.approx(50.0), "met")
    assert kpi(engine, "alert_noise_ratio", "2026-11", team="web").status == "missed"
    assert_no_data(kpi(engine, "alert_noise_ratio", "2026-10"))


# --- action_item_follow_through ---------------------------------------------------------------

ACTIONS = [
    incident("inc-a", 1, "2026-10-20T10:00:00Z", service="api"),
    incident("inc-b", 2, "2026-10-21T10:00:00Z", service="shop"),
    # due 11-10, done at its last second: on time
    {"kind": "action_item", "id": "ai1", "incident": "inc-a", "due": "2026-11-10",
     "completed_at": "2026-11-10T23:59:59Z"},
    # done at the first second of the next day: late
    {"kind": "action_item", "id": "ai2", "incident": "inc-a", "due": "2026-11-10",
     "completed_at": "2026-11-11T00:00:00Z"},
    # 2026-11-10T23:30-02:00 is 11-11T01:30Z: late by the UTC date
    {"kind": "action_item", "id": "ai3", "incident": "inc-a", "due": "2026-11-10",
     "completed_at": "2026-11-10T23:30:00-02:00"},
    # due on the first day of the period, done early: on time
    {"kind": "action_item", "id": "ai4", "incident": "inc-b", "due": "2026-11-01",
     "completed_at": "2026-10-30T09:00:00Z"},
    # due on the day after the period: out
    {"kind": "action_item", "id": "ai5", "incident": "inc-a", "due": "2026-12-01"},
    # never done: late
    {"kind": "action_item", "id": "ai6", "incident": "inc-a", "due": "2026-11-20"},
    # no due date: out
    {"kind": "action_item", "id": "ai7", "incident": "inc-a",
     "completed_at": "2026-11-02T09:00:00Z"},
    # unknown incident: counted only without a narrowed scope ; on time
    {"kind": "action_item", "id": "ai8", "incident": "ghost", "due": "2026-11-15",
     "completed_at": "2026-11-14T09:00:00Z"},
]


def test_action_item_follow_through(engine: Engine) -> None:
    load_with_topology(engine, ACTIONS)
    r = kpi(engine, "action_item_follow_through", "2026-11")
    # due in Nov: ai1 ai2 ai3 ai4 ai6 ai8 = 6 ; on time ai1 ai4 ai8 = 3 -> 50
    assert (r.value, r.count, r.status) == (pytest.approx(50.0), 6, "missed")
    ops = kpi(engine, "action_item_follow_through", "2026-11", team="ops")
    # through inc-a (api): ai1 ai2 ai3 ai6 ; on time ai1 -> 25
    assert (ops.value, ops.count) == (pytest.approx(25.0), 4)
    web = kpi(engine, "action_item_follow_through", "2026-11", team="web")
    # through inc-b (shop): ai4 on time -> 100 > 90 -> met
    assert (web.value, web.count, web.status) == (pytest.approx(100.0), 1, "met")
    # inc-a moves to service shop (replaced): its action items now belong to team web
    load(engine, [incident("inc-a", 1, "2026-10-20T10:00:00Z", service="shop")])
    assert_no_data(kpi(engine, "action_item_follow_through", "2026-11", team="ops"))
    web = kpi(engine, "action_item_follow_through", "2026-11", team="web")
    # ai1 ai2 ai3 ai4 ai6 ; on time ai1 ai4 -> 40
    assert (web.value, web.count) == (pytest.approx(40.0), 5)
    assert_no_data(kpi(engine, "action_item_follow_through", "2026-11", service="ghost"))
    assert_no_data(kpi(engine, "action_item_follow_through", "2026-10"))
