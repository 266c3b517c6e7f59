"""Security, cost, toil, documentation and satisfaction KPIs."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select

from opsledger.core.periods import months_overlapping
from opsledger.kpis.model import (
    US_PER_DAY,
    Ctx,
    Evidence,
    Outcome,
    mean,
    pct,
    where,
)
from opsledger.records.tables import RECORD_TABLES as T


def _windows(ctx: Ctx, severities: tuple[str, ...]) -> ColumnElement[bool]:
    """Findings whose due time falls in the period, for these severities."""
    v = T["vulnerability"]
    sla = ctx.policy.sla_days()
    windows = [
        (v.c.severity == sev)
        & (v.c.first_seen >= ctx.period.start - timedelta(days=sla[sev]))
        & (v.c.first_seen < ctx.period.end - timedelta(days=sla[sev]))
        for sev in severities
    ]
    # the union of the windows as one range too: the database then reads that range of the
    # first_seen index once instead of once per severity
    days = [sla[sev] for sev in severities]
    return and_(v.c.first_seen >= ctx.period.start - timedelta(days=max(days)),
                v.c.first_seen < ctx.period.end - timedelta(days=min(days)), or_(*windows))


def _vulns(ctx: Ctx, severities: tuple[str, ...]) -> Outcome:
    v = T["vulnerability"]
    sla = ctx.policy.sla_days()
    if not ctx.explain:
        by_sev = ctx.shared(("vulnerabilities", *sorted(sla.items())),
                            lambda: _vuln_counts(ctx, tuple(sla)))
        total = accepted = fixed = 0
        for sev in severities:
            n, a, f = by_sev.get(sev, (0, 0, 0))
            total, accepted, fixed = total + n, accepted + a, fixed + f
        counted = total - accepted
        extras = {"fixed_in_time": fixed, "risk_accepted": accepted}
        return Outcome(pct(fixed, counted), counted, extras)
    q = select(
        v.c.id, v.c.severity, ctx.ts(v.c.first_seen), ctx.ts(v.c.fixed_at),
        ctx.ts(v.c.accepted_until),
    ).where(_windows(ctx, severities))
    rows = ctx.conn.execute(where(q, ctx.through(v.c.asset, "asset"))).all()
    fixed = counted = accepted = 0
    ev: list[Evidence] = []
    for vid, sev, first, fixed_at, until in rows:
        due = first + sla[sev] * US_PER_DAY
        if until is not None and until >= due:
            accepted += 1
            ev.append(Evidence("vulnerability", vid, "excluded", None, "risk-accepted at due"))
            continue
        counted += 1
        ok = fixed_at is not None and fixed_at <= due
        fixed += ok
        ev.append(Evidence("vulnerability", vid, "numerator" if ok else "denominator", None,
                           f"{sev}, due after {sla[sev]} days: "
                           + ("fixed in time" if ok else "not fixed by due")))
    extras = {"fixed_in_time": fixed, "risk_accepted": accepted}
    return Outcome(pct(fixed, counted), counted, extras, ev)


def _vuln_counts(ctx: Ctx, severities: tuple[str, ...]) -> dict[str, tuple[int, int, int]]:
    """What `_vulns` counts, counted in SQL per severity: (findings, risk-accepted, fixed in
    time and not accepted), with the same integer microseconds (`ctx.ts`) and the same rules
    as CASE expressions (a WHEN whose condition is NULL does not match)."""
    v = T["vulnerability"]
    sla = ctx.policy.sla_days()
    due = ctx.ts(v.c.first_seen) + case(
        *((v.c.severity == sev, sla[sev] * US_PER_DAY) for sev in severities))
    accepted = and_(v.c.accepted_until.is_not(None), ctx.ts(v.c.accepted_until) >= due)
    in_time = and_(v.c.fixed_at.is_not(None), ctx.ts(v.c.fixed_at) <= due)
    q: Any = select(
        v.c.severity,
        func.count(),
        func.sum(case((accepted, 1), else_=0)),
        func.sum(case((accepted, 0), (in_time, 1), else_=0)),
    ).where(_windows(ctx, severities)).group_by(v.c.severity)
    rows = ctx.conn.execute(where(q, ctx.through(v.c.asset, "asset"))).all()
    return {r[0]: (int(r[1]), int(r[2] or 0), int(r[3] or 0)) for r in rows}


def patch_compliance(ctx: Ctx) -> Outcome:
    return _vulns(ctx, ("critical",))


def vuln_sla(ctx: Ctx) -> Outcome:
    return _vulns(ctx, ("critical", "high", "medium", "low"))


def _money_scope(ctx: Ctx, column: ColumnElement[str]) -> ColumnElement[bool] | None:
    if not ctx.scope.narrowed:
        return None
    services = column.in_(ctx.services_in_scope())
    if ctx.scope.service is None:
        return or_(column == ctx.scope.team, services)
    return services


def cost_variance(ctx: Ctx) -> Outcome:
    months = months_overlapping(ctx.period)
    b, c = T["budget"], T["cost"]
    budgets = ctx.conn.execute(where(
        select(b.c.id, b.c.scope, b.c.month, b.c.amount, b.c.currency).where(b.c.month.in_(months)),
        _money_scope(ctx, b.c.scope))).all()
    costs = ctx.conn.execute(where(
        select(c.c.id, c.c.scope, c.c.month, c.c.amount, c.c.currency).where(c.c.month.in_(months)),
        _money_scope(ctx, c.c.scope))).all()
    currencies = {r.currency for r in budgets} | {r.currency for r in costs}
    if len(currencies) > 1:
        names = ", ".join(sorted(x or "(none)" for x in currencies))
        return Outcome(None, len(budgets), error=f"costs and budgets of {', '.join(months)} mix "
                       f"currencies ({names}); amounts in different currencies are never added")
    budget_by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in budgets:
        budget_by[(r.scope, r.month)].append(r.amount)
    cost_by: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in costs:
        if (r.scope, r.month) in budget_by:
            cost_by[(r.scope, r.month)].append(r.amount)
    total_b = math.fsum(a for v in budget_by.values() for a in v)
    total_c = math.fsum(a for v in cost_by.values() for a in v)
    value = None if not budgets or total_b == 0 else 100.0 * (total_c - total_b) / total_b
    ev = None
    if ctx.explain:
        ev = [Evidence("budget", r.id, "denominator", r.amount, f"{r.scope} {r.month}")
              for r in budgets]
        for r in costs:
            paired = (r.scope, r.month) in budget_by
            ev.append(Evidence("cost", r.id, "numerator" if paired else "excluded", r.amount,
                               f"{r.scope} {r.month}" + ("" if paired else ": no budget")))
    extras = {"budget": total_b, "cost": total_c, "currency": next(iter(currencies), None)}
    return Outcome(value, len(budgets), extras, ev)


def _task_runs(ctx: Ctx) -> list[tuple[str, bool, float]]:
    tr = T["task_run"]
    q = select(tr.c.id, tr.c.automated, tr.c.minutes).where(
        tr.c.performed_at >= ctx.period.start, tr.c.performed_at < ctx.period.end
    )
    return [tuple(r) for r in ctx.conn.execute(where(q, ctx.by_team_field(tr.c.team)))]


def _task_totals(ctx: Ctx) -> tuple[int, int, float]:
    """(task runs, automated runs, manual minutes) in period and scope, counted in SQL."""
    tr = T["task_run"]
    q: Any = select(
        func.count(),
        func.sum(case((tr.c.automated.is_(True), 1), else_=0)),
        func.sum(case((tr.c.automated.is_(False), tr.c.minutes), else_=0.0)),
    ).where(tr.c.performed_at >= ctx.period.start, tr.c.performed_at < ctx.period.end)
    row = ctx.conn.execute(where(q, ctx.by_team_field(tr.c.team))).one()
    return int(row[0] or 0), int(row[1] or 0), float(row[2] or 0.0)


def automation_coverage(ctx: Ctx) -> Outcome:
    if not ctx.explain:
        total, auto, _ = ctx.shared(("task_runs",), lambda: _task_totals(ctx))
        return Outcome(pct(auto, total), total, {"automated": auto})
    rows = _task_runs(ctx)
    auto = sum(1 for _, a, _ in rows if a)
    ev = [Evidence("task_run", r, "numerator" if a else "denominator", None,
                   "automated" if a else "manual") for r, a, _ in rows] if ctx.explain else None
    return Outcome(pct(auto, len(rows)), len(rows), {"automated": auto}, ev)


def toil_hours(ctx: Ctx) -> Outcome:
    if not ctx.explain:
        total, _, minutes = ctx.shared(("task_runs",), lambda: _task_totals(ctx))
        if total == 0:
            return Outcome(None, 0)
        hours = minutes / 60.0
        return Outcome(hours / (ctx.period.days / 7), total, {"manual_hours": hours})
    rows = _task_runs(ctx)
    if not rows:
        return Outcome(None, 0, evidence=[] if ctx.explain else None)
    manual = math.fsum(m for _, a, m in rows if not a)
    value = manual / 60.0 / (ctx.period.days / 7)
    ev = [Evidence("task_run", r, "denominator" if a else "numerator", None if a else m,
                   "automated (no toil)" if a else "manual minutes") for r, a, m in rows]
    return Outcome(value, len(rows), {"manual_hours": manual / 60.0}, ev if ctx.explain else None)


def documentation_freshness(ctx: Ctx) -> Outcome:
    rb = T["runbook"]
    cutoff = ctx.period.end - timedelta(days=182)
    q = select(rb.c.id, rb.c.last_reviewed_at)
    rows = ctx.conn.execute(where(q, ctx.by_service(rb.c.service))).all()
    fresh = sum(1 for _, t in rows if t >= cutoff)
    ev = [Evidence("runbook", r, "numerator" if t >= cutoff else "denominator", None,
                   f"last reviewed {t.date()}") for r, t in rows] if ctx.explain else None
    extras = {"fresh": fresh, "cutoff": cutoff.isoformat().replace("+00:00", "Z")}
    return Outcome(pct(fresh, len(rows)), len(rows), extras, ev)


def satisfaction(ctx: Ctx) -> Outcome:
    sr = T["survey_response"]
    q = select(sr.c.id, sr.c.score).where(
        sr.c.submitted_at >= ctx.period.start, sr.c.submitted_at < ctx.period.end
    )
    rows = ctx.conn.execute(where(q, ctx.by_team_field(sr.c.team))).all()
    ev = [Evidence("survey_response", r, "value", s, "score") for r, s in rows] \
        if ctx.explain else None
    return Outcome(mean([s for _, s in rows]), len(rows), evidence=ev)
