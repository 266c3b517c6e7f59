"""Vulnerability KPIs computed by hand: patch_compliance_critical and vuln_sla_adherence
(spec/kpis.md). Due time = first_seen + SLA days x 24 h (critical 14, high 30, medium 90,
low 180); fixed in time when fixed_at <= due; left out when accepted_until >= due.
Period 2026-11 = [2026-11-01T00:00Z, 2026-12-01T00:00Z)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.kpis.policy import Policy
from tests.conftest import load
from tests.kpis.helpers import assert_no_data, kpi, load_with_topology

ASSETS = [
    {"kind": "asset", "id": "h1", "hostname": "h1", "service": "api"},  # team ops
    {"kind": "asset", "id": "h2", "hostname": "h2", "service": "shop"},  # team web
    {"kind": "asset", "id": "h3", "hostname": "h3"},  # no service
]


def vuln(vid: str, asset: str, severity: str, first_seen: str, **fields: Any) -> dict[str, Any]:
    return {"kind": "vulnerability", "id": vid, "asset": asset, "severity": severity,
            "first_seen": first_seen, **fields}


VULNS = [
    # due 10-20 + 14 d = 11-03T10:00Z ; fixed exactly at due: fixed in time
    vuln("v1", "h1", "critical", "2026-10-20T10:00:00Z", fixed_at="2026-11-03T10:00:00Z"),
    # due 11-08T00:00Z ; fixed one second after due: not in time
    vuln("v2", "h1", "critical", "2026-10-25T00:00:00Z", fixed_at="2026-11-08T00:00:01Z"),
    # due 10-18 + 14 d = 11-01T00:00Z, exactly the period start: counts ; never fixed
    vuln("v3", "h1", "critical", "2026-10-18T00:00:00Z"),
    # due 11-17 + 14 d = 12-01T00:00Z, exactly the period end: out
    vuln("v4", "h1", "critical", "2026-11-17T00:00:00Z"),
    # due 11-09T00:00Z ; accepted_until exactly at due: risk-accepted, left out
    vuln("v5", "h1", "critical", "2026-10-26T00:00:00Z", accepted_until="2026-11-09T00:00:00Z"),
    # due 11-10T00:00Z ; acceptance ends one second before due: not accepted ; fixed 11-05: ok
    vuln("v6", "h1", "critical", "2026-10-27T00:00:00Z", accepted_until="2026-11-09T23:59:59Z",
         fixed_at="2026-11-05T00:00:00Z"),
    # team web: due 11-11, fixed 11-01: ok
    vuln("v7", "h2", "critical", "2026-10-28T00:00:00Z", fixed_at="2026-11-01T00:00:00Z"),
    # high, 30 d: 10-10 + 30 d = 11-09T00:00Z ; fixed exactly at due: ok
    vuln("v8", "h1", "high", "2026-10-10T00:00:00Z", fixed_at="2026-11-09T00:00:00Z"),
    # medium, 90 d: 08-10 + 90 d = 11-08 (21 d to 08-31, +30 Sep, +31 Oct = 82, +8) ; never fixed
    vuln("v9", "h1", "medium", "2026-08-10T00:00:00Z"),
    # low, 180 d: 06-01 + 180 d = 11-28 (29+31+31+30+31 = 152 to 10-31, +28) ; fixed 11-27: ok
    vuln("v10", "h1", "low", "2026-06-01T00:00:00Z", fixed_at="2026-11-27T00:00:00Z"),
    # asset without service: only in the unscoped figure ; due 11-13, fixed: ok
    vuln("v11", "h3", "critical", "2026-10-30T00:00:00Z", fixed_at="2026-11-02T00:00:00Z"),
    # unknown asset: only in the unscoped figure ; due 11-13, never fixed
    vuln("v12", "ghost", "critical", "2026-10-30T00:00:00Z"),
    # 2026-10-17T23:30-02:00 = 10-18T01:30Z -> due 11-01T01:30Z (in Nov) ; fixed exactly at due
    vuln("v13", "h1", "critical", "2026-10-17T23:30:00-02:00", fixed_at="2026-11-01T01:30:00Z"),
    # high due 11-04 (10-05 + 30 d), risk accepted well past due: left out
    vuln("v14", "h1", "high", "2026-10-05T00:00:00Z", accepted_until="2027-01-01T00:00:00Z"),
    # critical due in October (10-01 + 14 d = 10-15): out
    vuln("v15", "h1", "critical", "2026-10-01T00:00:00Z"),
]


def test_patch_compliance_critical(engine: Engine) -> None:
    load_with_topology(engine, ASSETS + VULNS)
    r = kpi(engine, "patch_compliance_critical", "2026-11")
    # critical due in Nov, not accepted: v1 ok, v2 late, v3 open, v6 ok, v7 ok, v11 ok,
    # v12 open, v13 ok = 8 ; fixed 5 -> 100 * 5 / 8 = 62.5
    assert (r.value, r.count, r.status) == (pytest.approx(62.5), 8, "missed")
    ops = kpi(engine, "patch_compliance_critical", "2026-11", team="ops")
    # via asset h1 (api): v1 ok, v2, v3, v6 ok, v13 ok -> 3 / 5 = 60
    assert (ops.value, ops.count) == (pytest.approx(60.0), 5)
    web = kpi(engine, "patch_compliance_critical", "2026-11", service="shop")
    # via asset h2 (shop): v7 -> 100 > 95 -> met
    assert (web.value, web.count, web.status) == (pytest.approx(100.0), 1, "met")
    assert_no_data(kpi(engine, "patch_compliance_critical", "2026-11", service="orphan"))
    assert_no_data(kpi(engine, "patch_compliance_critical", "2026-09"))


def test_vuln_sla_adherence(engine: Engine) -> None:
    load_with_topology(engine, ASSETS + VULNS)
    r = kpi(engine, "vuln_sla_adherence", "2026-11")
    # the 8 critical above + v8 ok, v9 open, v10 ok (v14 accepted) = 11 ; fixed 5 + 2 = 7
    # 100 * 7 / 11
    assert (r.value, r.count, r.status) == (pytest.approx(700 / 11), 11, "missed")
    ops = kpi(engine, "vuln_sla_adherence", "2026-11", team="ops", service="api")
    # h1 only: v1 v2 v3 v6 v13 + v8 v9 v10 = 8 ; fixed v1 v6 v13 v8 v10 = 5 -> 62.5
    assert (ops.value, ops.count) == (pytest.approx(62.5), 8)
    assert_no_data(kpi(engine, "vuln_sla_adherence", "2026-11", team="web", service="api"))


def test_vulnerability_replaced_and_policy_sla(engine: Engine) -> None:
    load_with_topology(engine, ASSETS + VULNS[:3])
    r = kpi(engine, "patch_compliance_critical", "2026-11")
    # v1 ok, v2 late, v3 open -> 100 / 3
    assert (r.value, r.count) == (pytest.approx(100 / 3), 3)
    load(engine, [
        # v2 replaced: fixed before due now
        vuln("v2", "h1", "critical", "2026-10-25T00:00:00Z", fixed_at="2026-11-07T00:00:00Z"),
        # v3 replaced: now risk-accepted through its due time 11-01T00:00Z -> left out
        vuln("v3", "h1", "critical", "2026-10-18T00:00:00Z",
             accepted_until="2026-11-01T00:00:00Z"),
    ])
    r = kpi(engine, "patch_compliance_critical", "2026-11")
    # v1 ok, v2 ok -> 100 (count 2)
    assert (r.value, r.count, r.status) == (pytest.approx(100.0), 2, "met")

    # policy: critical SLA 7 days -> due = first_seen + 7 d
    pol = Policy.model_validate({"vulnerability_sla_days": {"critical": 7}})
    r = kpi(engine, "patch_compliance_critical", "2026-11", policy=pol)
    # v1 due 10-27T10:00Z (Oct: out) ; v2 due 11-01T00:00Z (start: in), fixed 11-07: late ;
    # v3 due 10-25 (out) -> 0 of 1
    assert (r.value, r.count, r.status) == (0.0, 1, "missed")
    # October with the 7-day SLA: v1 due 10-27 fixed 11-03 (late) ; v3 due 10-25 is accepted
    # until 11-01 >= due -> left out ; v2 due 11-01 is November's -> 0 of 1
    r = kpi(engine, "patch_compliance_critical", "2026-10", policy=pol)
    assert (r.value, r.count) == (0.0, 1)
