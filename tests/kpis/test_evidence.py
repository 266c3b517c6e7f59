"""`evaluate(..., explain=True)`: the evidence of every KPI reproduces its figure, and the
figure is the same with and without explain (spec/kpis.md: every figure can be recomputed by
hand from the records that counted)."""

from __future__ import annotations

import math
import statistics

import pytest
from sqlalchemy import Engine

from opsledger.core.periods import parse_period
from opsledger.kpis.registry import KPIS
from tests.kpis.helpers import MIXED, Result, kpi, load_with_topology

PERIOD = "2026-11"
DAYS = 30.0  # November
TEAM_ONLY = {"automation_coverage", "toil_hours_per_week", "stakeholder_satisfaction",
             "delivery_predictability"}


def _pct(r: Result) -> float | None:
    num, den = len(r.roles("numerator")), len(r.roles("denominator"))
    assert num + den == r.count, f"{r.json['id']}: evidence rows vs count"
    return None if num + den == 0 else 100.0 * num / (num + den)


def _values(r: Result) -> list[float]:
    vals = [e.contribution for e in r.roles("value")]
    assert all(v is not None for v in vals)
    return [float(v) for v in vals if v is not None]


def _mean(r: Result) -> float | None:
    vals = _values(r)
    assert len(vals) == r.count, f"{r.json['id']}: evidence rows vs count"
    return math.fsum(vals) / len(vals) if vals else None


def _median(r: Result) -> float | None:
    vals = _values(r)
    assert len(vals) == r.count
    return statistics.median(vals) if vals else None


def recompute(r: Result) -> float | None:
    """The figure, recomputed from the evidence alone."""
    kid = r.json["id"]
    if kid in ("change_lead_time_p50", "provisioning_time_p50"):
        return _median(r)
    if kid in ("mtta", "capacity_forecast_accuracy", "stakeholder_satisfaction", "mttr_sev1"):
        return _mean(r)
    if kid == "deployment_frequency":
        n = len(r.roles("numerator"))
        assert n == r.count == len(r.evidence)
        return None if n == 0 else n / (DAYS / 7)
    if kid == "toil_hours_per_week":
        assert len(r.evidence) == r.count
        minutes = [e.contribution for e in r.roles("numerator")]
        assert all(m is not None for m in minutes)
        return None if r.count == 0 else math.fsum(m for m in minutes if m) / 60 / (DAYS / 7)
    if kid == "cost_variance":
        budgets = [e.contribution or 0.0 for e in r.roles("denominator")]
        costs = [e.contribution or 0.0 for e in r.roles("numerator")]
        assert len(budgets) == r.count
        total_b = math.fsum(budgets)
        return None if total_b == 0 else 100 * (math.fsum(costs) - total_b) / total_b
    return _pct(r)


def test_registry_has_the_twenty_contract_kpis() -> None:
    # the ids of spec/kpis.md, in its order
    assert [k.id for k in KPIS] == [
        "change_lead_time_p50", "provisioning_time_p50", "change_failure_rate", "mttr_sev1",
        "mtta", "incident_recurrence_rate", "alert_noise_ratio", "patch_compliance_critical",
        "vuln_sla_adherence", "backup_success_rate", "restore_test_pass_rate",
        "capacity_forecast_accuracy", "cost_variance", "automation_coverage",
        "toil_hours_per_week", "documentation_freshness", "stakeholder_satisfaction",
        "delivery_predictability", "action_item_follow_through", "deployment_frequency",
    ]
    assert parse_period(PERIOD).days == DAYS


def test_evidence_reproduces_every_figure(engine: Engine) -> None:
    load_with_topology(engine, MIXED)
    for scope in ({}, {"team": "ops"}, {"team": "web", "service": "shop"}):
        for k in KPIS:
            plain = kpi(engine, k.id, PERIOD, **scope)
            ex = kpi(engine, k.id, PERIOD, explain=True, **scope)
            where = f"{k.id} {scope}"
            # explain changes nothing in the figure
            assert ex.json == plain.json, where
            if (k.id == "provisioning_time_p50" and scope) or (
                    k.id in TEAM_ONLY and "service" in scope):
                # no team or service on provisioning; task runs, work items and survey
                # responses have a team only: outside any --service scope
                assert (ex.value, ex.count) == (None, 0), where
                assert ex.evidence == [], where
                continue
            assert ex.value is not None, f"{where}: the mixed dataset must give a value"
            assert recompute(ex) == pytest.approx(ex.value), where
            if k.id == "mttr_sev1":
                # by_severity from the evidence notes ("Sev-N, ...")
                for sev in ("1", "2", "3"):
                    mins = [e.contribution for e in ex.evidence
                            if e.note.startswith(f"Sev-{sev}") and e.contribution is not None]
                    want = math.fsum(mins) / len(mins) if mins else None
                    assert ex.json["by_severity"][sev] == pytest.approx(want), where
            if k.id == "backup_success_rate":
                silent = [e for e in ex.roles("denominator") if "silent" in e.note]
                assert len(silent) == ex.json["silent_failures"], where
            if k.id in ("patch_compliance_critical", "vuln_sla_adherence"):
                assert len(ex.roles("excluded")) == ex.json["risk_accepted"], where
