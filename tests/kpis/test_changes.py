"""Change and delivery KPIs computed by hand: change_lead_time_p50, provisioning_time_p50,
change_failure_rate and deployment_frequency (spec/kpis.md).

Calendar used below (UTC): 2026-10-26 Mon, 2026-10-28 Wed, 2026-10-31 Sat, 2026-11-01 Sun,
2026-11-02 Mon, 2026-11-06 Fri, 2026-11-09 Mon, 2026-11-11 Wed, 2026-11-16 Mon,
2026-11-23 Mon, 2026-12-01 Tue. 2026-W45 is [2026-11-02, 2026-11-09).
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.kpis.policy import Policy
from tests.conftest import load
from tests.kpis.helpers import assert_no_data, kpi, load_with_topology


def change(cid: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "change", "id": cid, **fields}


# --- change_lead_time_p50 -------------------------------------------------------------

LEAD_TIME = [
    # Mon 11-02 -> Wed 11-04: Mon, Tue = 2 business days
    change("c1", service="api", approved_at="2026-11-02T09:00:00Z",
           deployed_at="2026-11-04T15:00:00Z"),
    # Fri 11-06 -> Mon 11-09: Fri = 1
    change("c2", service="api", approved_at="2026-11-06T16:00:00Z",
           deployed_at="2026-11-09T08:00:00Z"),
    # deployed exactly at the period start (counts); Mon 10-26 -> Sun 11-01: Mon..Fri = 5
    change("c3", service="db", approved_at="2026-10-26T10:00:00Z",
           deployed_at="2026-11-01T00:00:00Z"),
    # deployed exactly at the period end: out
    change("c4", service="api", approved_at="2026-11-23T10:00:00Z",
           deployed_at="2026-12-01T00:00:00Z"),
    # no approved_at: out
    change("c5", service="api", deployed_at="2026-11-10T10:00:00Z"),
    # emergency, approved after deploy: Wed 11-11 -> Mon 11-09 = -(Mon, Tue) = -2, kept negative
    change("c6", service="shop", type="emergency", approved_at="2026-11-11T12:00:00Z",
           deployed_at="2026-11-09T10:00:00Z"),
    # 2026-10-31T23:30-02:00 is 2026-11-01T01:30Z (Sun): in November;
    # Wed 10-28 -> Sun 11-01: Wed, Thu, Fri = 3
    change("c7", service="shop", approved_at="2026-10-28T12:00:00Z",
           deployed_at="2026-10-31T23:30:00-02:00"),
    # Mon 11-02 -> Mon 11-23: three whole weeks = 15
    change("c8", service="orphan", approved_at="2026-11-02T00:00:00Z",
           deployed_at="2026-11-23T00:00:00Z"),
    # 2026-11-30T23:30-02:00 is 2026-12-01T01:30Z: out
    change("c9", service="api", approved_at="2026-11-20T10:00:00Z",
           deployed_at="2026-11-30T23:30:00-02:00"),
    # one second before the start: out
    change("c10", service="api", approved_at="2026-10-20T10:00:00Z",
           deployed_at="2026-10-31T23:59:59Z"),
    # approved 2026-11-16T23:30-02:00 = Tue 11-17T01:30Z (UTC date, not the local Mon 11-16);
    # Tue 11-17 -> Wed 11-18: Tue = 1
    change("c11", service="db", approved_at="2026-11-16T23:30:00-02:00",
           deployed_at="2026-11-18T10:00:00Z"),
    # Tue 11-24 -> Fri 11-27: Tue, Wed, Thu = 3
    change("c12", service="api", approved_at="2026-11-24T10:00:00Z",
           deployed_at="2026-11-27T10:00:00Z"),
]


def test_lead_time_even_median_edges_offsets_and_negative(engine: Engine) -> None:
    load_with_topology(engine, LEAD_TIME)
    r = kpi(engine, "change_lead_time_p50", "2026-11")
    # counted: c1 2, c2 1, c3 5, c6 -2, c7 3, c8 15, c11 1, c12 3
    # -> sorted [-2, 1, 1, 2, 3, 3, 5, 15] ; even count: (2 + 3) / 2 = 2.5 ; 2.5 < 5 -> met
    assert r.value == pytest.approx(2.5)
    assert r.count == 8
    assert r.status == "met"
    assert r.json["unit"] == "business days"
    assert r.json["target"]["op"] == "<" and r.json["target"]["value"] == 5


def test_lead_time_scopes(engine: Engine) -> None:
    load_with_topology(engine, LEAD_TIME)
    # team ops (api, db): c1 2, c2 1, c3 5, c11 1, c12 3 -> sorted [1, 1, 2, 3, 5] -> 2
    r = kpi(engine, "change_lead_time_p50", "2026-11", team="ops")
    assert (r.value, r.count, r.status) == (pytest.approx(2.0), 5, "met")
    # team web (shop): c6 -2, c7 3 -> (-2 + 3) / 2 = 0.5
    r = kpi(engine, "change_lead_time_p50", "2026-11", team="web")
    assert (r.value, r.count) == (pytest.approx(0.5), 2)
    # service db: c3 5, c11 1 -> (1 + 5) / 2 = 3 -> met
    r = kpi(engine, "change_lead_time_p50", "2026-11", service="db")
    assert (r.value, r.count, r.status) == (pytest.approx(3.0), 2, "met")
    # 2026-W44 = [10-26, 11-02): c3 alone (deployed 11-01) -> 5 ; 5 < 5 is false -> missed
    r = kpi(engine, "change_lead_time_p50", "2026-W44", service="db")
    assert (r.value, r.count, r.status) == (pytest.approx(5.0), 1, "missed")
    # team ops and service shop together: nothing matches both
    assert_no_data(kpi(engine, "change_lead_time_p50", "2026-11", team="ops", service="shop"))
    # orphan has no team: only its own service scope sees c8 (15)
    r = kpi(engine, "change_lead_time_p50", "2026-11", service="orphan")
    assert (r.value, r.count, r.status) == (pytest.approx(15.0), 1, "missed")


def test_lead_time_replaced_records(engine: Engine) -> None:
    load_with_topology(engine, LEAD_TIME[:3])
    # c1 2, c2 1, c3 5 -> median 2
    assert kpi(engine, "change_lead_time_p50", "2026-11").value == pytest.approx(2.0)
    load(engine, [
        # the whole record is replaced: no approved_at any more -> out
        change("c1", service="api", deployed_at="2026-11-04T15:00:00Z"),
        # Fri 11-06 -> Mon 11-16: Fri + Mon..Fri (9-13) = 6
        change("c2", service="api", approved_at="2026-11-06T16:00:00Z",
               deployed_at="2026-11-16T08:00:00Z"),
    ])
    r = kpi(engine, "change_lead_time_p50", "2026-11")
    # c2 6, c3 5 -> (5 + 6) / 2 = 5.5 -> missed
    assert (r.value, r.count, r.status) == (pytest.approx(5.5), 2, "missed")


def test_lead_time_empty_period(engine: Engine) -> None:
    load_with_topology(engine, LEAD_TIME)
    assert_no_data(kpi(engine, "change_lead_time_p50", "2026-09"))


# --- provisioning_time_p50 ---------------------------------------------------------------

PROVISIONING = [
    # 10:00 -> 10:20 = 20 min
    {"kind": "provisioning", "id": "p1", "requested_at": "2026-11-03T10:00:00Z",
     "completed_at": "2026-11-03T10:20:00Z"},
    # completed exactly at the start: 23:00 -> 00:00 = 60 min, counts
    {"kind": "provisioning", "id": "p2", "requested_at": "2026-10-31T23:00:00Z",
     "completed_at": "2026-11-01T00:00:00Z"},
    # completed exactly at the end: out
    {"kind": "provisioning", "id": "p3", "requested_at": "2026-11-30T23:00:00Z",
     "completed_at": "2026-12-01T00:00:00Z"},
    # 08:00+01:00 is 07:00Z -> 07:45Z = 45 min
    {"kind": "provisioning", "id": "p4", "requested_at": "2026-11-10T08:00:00+01:00",
     "completed_at": "2026-11-10T07:45:00Z"},
    # never completed: out
    {"kind": "provisioning", "id": "p5", "requested_at": "2026-11-12T09:00:00Z"},
    # 2026-10-31T22:50-02:00 is 2026-11-01T00:50Z -> 01:00Z = 10 min
    {"kind": "provisioning", "id": "p6", "requested_at": "2026-10-31T22:50:00-02:00",
     "completed_at": "2026-11-01T01:00:00Z", "automated": True},
]


def test_provisioning_even_median_and_edges(engine: Engine) -> None:
    load(engine, PROVISIONING)
    r = kpi(engine, "provisioning_time_p50", "2026-11")
    # [20, 60, 45, 10] -> sorted [10, 20, 45, 60] -> (20 + 45) / 2 = 32.5 ; < 30 ? no -> missed
    assert r.value == pytest.approx(32.5)
    assert r.count == 4
    assert r.status == "missed"
    assert_no_data(kpi(engine, "provisioning_time_p50", "2026-10"))


def test_provisioning_policy_and_narrowed_scope(engine: Engine) -> None:
    load_with_topology(engine, PROVISIONING)
    # a bare number keeps the default op "<": 32.5 < 40 -> met
    r = kpi(engine, "provisioning_time_p50", "2026-11",
            policy=Policy.model_validate({"targets": {"provisioning_time_p50": 40}}))
    assert r.status == "met"
    assert r.json["target"]["op"] == "<" and r.json["target"]["value"] == 40
    # provisioning records carry no team or service: any narrowed scope gives no_data
    assert_no_data(kpi(engine, "provisioning_time_p50", "2026-11", team="ops"))
    assert_no_data(kpi(engine, "provisioning_time_p50", "2026-11", service="api"))
    assert_no_data(kpi(engine, "provisioning_time_p50", "2026-11", team="ops", service="api"))


def test_provisioning_replaced(engine: Engine) -> None:
    load(engine, PROVISIONING[:1])
    assert kpi(engine, "provisioning_time_p50", "2026-11").value == pytest.approx(20.0)
    # replaced: completed 10:00 -> 11:30 = 90 min
    load(engine, [{"kind": "provisioning", "id": "p1", "requested_at": "2026-11-03T10:00:00Z",
                   "completed_at": "2026-11-03T11:30:00Z"}])
    r = kpi(engine, "provisioning_time_p50", "2026-11")
    assert (r.value, r.count, r.status) == (pytest.approx(90.0), 1, "missed")


# --- change_failure_rate -------------------------------------------------------------------

FAILURES = [
    change("f1", service="api", outcome="success", deployed_at="2026-11-03T10:00:00Z"),
    change("f2", service="api", outcome="failed", deployed_at="2026-11-04T10:00:00Z"),
    change("f3", service="shop", outcome="rolled_back", deployed_at="2026-11-05T10:00:00Z"),
    change("f4", service="api", outcome="success", deployed_at="2026-11-06T10:00:00Z"),
    change("f5", service="db", deployed_at="2026-11-07T10:00:00Z"),  # no outcome
    change("f6", service="api", outcome="success", deployed_at="2026-11-08T10:00:00Z"),
    change("f7", service="api", outcome="failed", deployed_at="2026-10-20T10:00:00Z"),  # Oct
    change("f8", service="shop", outcome="failed", deployed_at="2026-12-01T00:00:00Z"),  # end
    change("f9", service="api", outcome="success", deployed_at="2026-11-01T00:00:00Z"),  # start
    change("f10", service="api", outcome="failed"),  # never deployed
    # f1 is named by an incident of another service (team web) in another period (2027-01)
    {"kind": "incident", "id": "x1", "severity": 2, "service": "shop",
     "started_at": "2027-01-05T10:00:00Z", "caused_by_change": "f1"},
    # f4 is named by an incident in November (replaced later)
    {"kind": "incident", "id": "x2", "severity": 3, "service": "api",
     "started_at": "2026-11-06T11:00:00Z", "caused_by_change": "f4"},
]


def test_change_failure_rate_incident_anywhere_and_replacement(engine: Engine) -> None:
    load_with_topology(engine, FAILURES)
    r = kpi(engine, "change_failure_rate", "2026-11")
    # deployed in [11-01, 12-01): f1 f2 f3 f4 f5 f6 f9 = 7
    # failed: f1 (incident x1), f2 failed, f3 rolled_back, f4 (incident x2) = 4
    # 100 * 4 / 7
    assert r.value == pytest.approx(400 / 7)
    assert r.count == 7
    assert r.status == "missed"
    ops = kpi(engine, "change_failure_rate", "2026-11", team="ops")
    # team ops (api, db): f1 f2 f4 f5 f6 f9 = 6; failed f1 f2 f4 = 3 -> 50
    assert (ops.value, ops.count) == (pytest.approx(50.0), 6)
    web = kpi(engine, "change_failure_rate", "2026-11", team="web")
    # team web: f3 only, rolled back -> 100
    assert (web.value, web.count, web.status) == (pytest.approx(100.0), 1, "missed")

    # x2 is replaced without caused_by_change: f4 is no longer failed
    load(engine, [{"kind": "incident", "id": "x2", "severity": 3, "service": "api",
                   "started_at": "2026-11-06T11:00:00Z"}])
    r = kpi(engine, "change_failure_rate", "2026-11")
    # 100 * 3 / 7
    assert (r.value, r.count) == (pytest.approx(300 / 7), 7)
    ops = kpi(engine, "change_failure_rate", "2026-11", team="ops")
    # 100 * 2 / 6
    assert ops.value == pytest.approx(200 / 6)


def test_change_failure_rate_zero_is_a_value(engine: Engine) -> None:
    load_with_topology(engine, [
        change("ok1", service="api", outcome="success", deployed_at="2026-11-03T10:00:00Z"),
        change("ok2", service="api", deployed_at="2026-11-04T10:00:00Z"),
    ])
    r = kpi(engine, "change_failure_rate", "2026-11")
    # 0 of 2 -> 0 (a value, not no_data); 0 < 5 -> met
    assert (r.value, r.count, r.status) == (0.0, 2, "met")
    assert_no_data(kpi(engine, "change_failure_rate", "2026-12"))
    # a service scope with no changes: no_data
    assert_no_data(kpi(engine, "change_failure_rate", "2026-11", service="shop"))


# --- deployment_frequency ------------------------------------------------------------------

DEPLOYS = [
    change("d1", service="api", deployed_at="2026-11-02T00:00:00Z"),  # W45 start: in
    change("d2", service="shop", deployed_at="2026-11-08T23:59:59Z"),  # in
    change("d3", service="api", deployed_at="2026-11-09T00:00:00Z"),  # W45 end: out
    change("d4", service="api", deployed_at="2026-11-01T23:30:00-02:00"),  # 11-02T01:30Z: in
    change("d5", service="api", deployed_at="2026-11-08T23:30:00-02:00"),  # 11-09T01:30Z: out
    change("d6", service="api", outcome="success"),  # never deployed
]


def test_deployment_frequency(engine: Engine) -> None:
    load_with_topology(engine, DEPLOYS)
    r = kpi(engine, "deployment_frequency", "2026-W45")
    # d1 d2 d4 = 3 changes / (7 days / 7) = 3.0 per week; report-only target
    assert (r.value, r.count) == (pytest.approx(3.0), 3)
    assert r.status == "report"
    assert r.json["unit"] == "changes/week"
    # November: d1..d5 = 5 changes / (30 / 7) = 35 / 30
    r = kpi(engine, "deployment_frequency", "2026-11")
    assert (r.value, r.count) == (pytest.approx(35 / 30), 5)
    # team ops in W45: d1, d4 -> 2.0 ; service shop: d2 -> 1.0
    ops = kpi(engine, "deployment_frequency", "2026-W45", team="ops")
    assert (ops.value, ops.count) == (pytest.approx(2.0), 2)
    shop = kpi(engine, "deployment_frequency", "2026-W45", service="shop")
    assert (shop.value, shop.count) == (pytest.approx(1.0), 1)
    assert_no_data(kpi(engine, "deployment_frequency", "2026-W47"))
    # 2026-Q4 (31 + 30 + 31 = 92 days) and the year 2026 (365 days): d1..d5 = 5 changes
    q4 = kpi(engine, "deployment_frequency", "2026-Q4")
    assert (q4.value, q4.count) == (pytest.approx(5 / (92 / 7)), 5)
    year = kpi(engine, "deployment_frequency", "2026")
    assert (year.value, year.count) == (pytest.approx(5 / (365 / 7)), 5)
