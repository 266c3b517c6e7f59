"""The KPI registry: every KPI of spec/kpis.md, declared once. Every surface reads this."""

from __future__ import annotations

from opsledger.errors import NotFoundError
from opsledger.kpis import backups, delivery, hygiene, reliability
from opsledger.kpis.model import Kpi
from opsledger.kpis.policy import Target

KPIS: tuple[Kpi, ...] = (
    Kpi("change_lead_time_p50", "Infrastructure change lead time (P50)", "business days",
        "lower", Target("<", 5), delivery.change_lead_time,
        "changes with approved_at and deployed_at, deployed_at in period",
        "median of numpy.busday_count(approved UTC date, deployed UTC date)"),
    Kpi("provisioning_time_p50", "Provisioning time (P50)", "minutes", "lower",
        Target("<", 30), delivery.provisioning_time,
        "provisioning records with completed_at in period (no team or service scope)",
        "median minutes from requested_at to completed_at"),
    Kpi("change_failure_rate", "Change failure rate", "percent", "lower", Target("<", 5),
        delivery.change_failure_rate, "changes with deployed_at in period",
        "% whose outcome is failed or rolled_back, or named by any incident's caused_by_change"),
    Kpi("mttr_sev1", "MTTR (Sev-1)", "minutes", "lower", Target("<", 60), reliability.mttr,
        "Sev-1 incidents restored (mitigated_at, else resolved_at) in period",
        "mean minutes from started_at to restore"),
    Kpi("mtta", "MTTA", "minutes", "report", Target("report"), reliability.mtta,
        "incidents with acknowledged_at in period",
        "mean minutes from detected_at (else started_at) to acknowledged_at"),
    Kpi("incident_recurrence_rate", "Incident recurrence rate", "percent", "lower",
        Target("<", 10), reliability.recurrence, "incidents started in period",
        "% with a root_cause_key shared by another incident started in the 720 h before"),
    Kpi("alert_noise_ratio", "Alert noise ratio", "percent", "lower", Target("<", 20),
        reliability.alert_noise, "alerts with fired_at in period",
        "% not actionable (actionable true, or absent and acknowledged or linked to an incident)"),
    Kpi("patch_compliance_critical", "Patch compliance (critical)", "percent", "higher",
        Target(">", 95), hygiene.patch_compliance,
        "critical vulnerabilities due (first_seen + SLA days) in period, not risk-accepted at due",
        "% fixed (fixed_at <= due)"),
    Kpi("vuln_sla_adherence", "Vulnerability remediation SLA adherence", "percent", "higher",
        Target(">", 90), hygiene.vuln_sla,
        "vulnerabilities due in period (SLA days by severity), not risk-accepted at due",
        "% fixed by their due time"),
    Kpi("backup_success_rate", "Backup success rate", "percent", "higher", Target(">", 99),
        backups.backup_success, "expected runs: cron ticks of each job in period, and runs of "
        "unscheduled jobs", "% of expected runs met by a successful run in [tick, tick + 1 h)"),
    Kpi("restore_test_pass_rate", "Restore test pass rate", "percent", "higher",
        Target("==", 100), reliability.restore_pass_rate, "restore tests started in period",
        "% passed"),
    Kpi("capacity_forecast_accuracy", "Capacity forecast error (MAPE)", "percent", "lower",
        Target("<=", 15), reliability.capacity_accuracy,
        "forecasts with target_date in period and a non-zero actual",
        "100 * mean(|forecast - actual| / |actual|)"),
    Kpi("cost_variance", "Infrastructure cost variance", "percent", "lower",
        Target("abs<", 10), hygiene.cost_variance,
        "budgets of the months overlapping the period, and the costs of their (scope, month)",
        "100 * (sum of costs - sum of budgets) / sum of budgets"),
    Kpi("automation_coverage", "Automation coverage", "percent", "higher",
        Target("+points", 10), hygiene.automation_coverage, "task runs in period",
        "% of task runs with automated true; target: +10 points vs a year earlier"),
    Kpi("toil_hours_per_week", "Toil hours per week", "hours/week", "lower",
        Target("lower_than_previous"), hygiene.toil_hours, "task runs in period",
        "hours of manual task runs / (period days / 7); target: lower than the previous "
        "period of the same length"),
    Kpi("documentation_freshness", "Documentation freshness", "percent", "higher",
        Target(">", 80), hygiene.documentation_freshness, "every runbook",
        "% with last_reviewed_at >= period end - 182 days"),
    Kpi("stakeholder_satisfaction", "Stakeholder satisfaction", "score (1-5)", "higher",
        Target(">=", 4.2), hygiene.satisfaction, "survey responses submitted in period",
        "mean score"),
    Kpi("delivery_predictability", "Cross-team delivery predictability", "percent", "higher",
        Target(">", 85), delivery.delivery_predictability, "work items whose due date is in period",
        "% completed by the end of their due date (UTC)"),
    Kpi("action_item_follow_through", "Action item follow-through", "percent", "higher",
        Target(">", 90), delivery.action_item_follow_through,
        "post-incident action items whose due date is in period",
        "% completed by the end of their due date (UTC)"),
    Kpi("deployment_frequency", "Deployment frequency", "changes/week", "report",
        Target("report"), delivery.deployment_frequency, "changes with deployed_at in period",
        "count / (period days / 7)"),
)

BY_ID: dict[str, Kpi] = {k.id: k for k in KPIS}
KPI_IDS: set[str] = set(BY_ID)
DEFAULT_TARGETS: dict[str, Target] = {k.id: k.target for k in KPIS}


def get(kpi_id: str) -> Kpi:
    try:
        return BY_ID[kpi_id]
    except KeyError:
        raise NotFoundError(
            f"unknown KPI '{kpi_id}' (known: {', '.join(k.id for k in KPIS)})"
        ) from None
