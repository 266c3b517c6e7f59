"""Incident and alert KPIs (MTTR, MTTA, recurrence, alert noise), restore tests and capacity
forecasts."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Table, and_, case, func, or_, select

from opsledger.core.types import UTCDateTime
from opsledger.kpis.model import (
    US_PER_HOUR,
    US_PER_MIN,
    Ctx,
    Evidence,
    Outcome,
    mean,
    pct,
    where,
)
from opsledger.records.tables import RECORD_TABLES as T

RECURRENCE_WINDOW_US = 720 * US_PER_HOUR


def mttr(ctx: Ctx) -> Outcome:
    inc = T["incident"]
    restored = func.coalesce(inc.c.mitigated_at, inc.c.resolved_at, type_=UTCDateTime)
    q = select(inc.c.id, inc.c.severity, ctx.ts(inc.c.started_at), ctx.ts(restored)).where(
        restored >= ctx.period.start, restored < ctx.period.end
    )
    rows = ctx.conn.execute(where(q, ctx.by_service(inc.c.service))).all()
    by_sev: dict[int, list[float]] = {1: [], 2: [], 3: []}
    ev: list[Evidence] = []
    for iid, sev, start, end in rows:
        minutes = (end - start) / US_PER_MIN
        by_sev[sev].append(minutes)
        if ctx.explain:
            role = "value" if sev == 1 else "by_severity only"
            ev.append(Evidence("incident", iid, role, minutes, f"Sev-{sev}, minutes to restore"))
    extras = {"by_severity": {str(s): mean(v) for s, v in by_sev.items()}}
    return Outcome(mean(by_sev[1]), len(by_sev[1]), extras, ev if ctx.explain else None)


def mtta(ctx: Ctx) -> Outcome:
    inc = T["incident"]
    detected = func.coalesce(inc.c.detected_at, inc.c.started_at, type_=UTCDateTime)
    q = select(inc.c.id, ctx.ts(detected), ctx.ts(inc.c.acknowledged_at)).where(
        inc.c.acknowledged_at >= ctx.period.start, inc.c.acknowledged_at < ctx.period.end
    )
    rows = ctx.conn.execute(where(q, ctx.by_service(inc.c.service))).all()
    minutes = [(ack - det) / US_PER_MIN for _, det, ack in rows]
    ev = [Evidence("incident", r[0], "value", m, "minutes detected -> acknowledged")
          for r, m in zip(rows, minutes, strict=True)] if ctx.explain else None
    return Outcome(mean(minutes), len(rows), evidence=ev)


def recurrence(ctx: Ctx) -> Outcome:
    inc = T["incident"]
    q = select(inc.c.id, inc.c.root_cause_key, ctx.ts(inc.c.started_at)).where(
        inc.c.started_at >= ctx.period.start, inc.c.started_at < ctx.period.end
    )
    rows = ctx.conn.execute(where(q, ctx.by_service(inc.c.service))).all()
    earlier = select(inc.c.root_cause_key, ctx.ts(inc.c.started_at)).where(
        inc.c.root_cause_key.is_not(None),
        inc.c.started_at >= ctx.period.start - timedelta(hours=720),
        inc.c.started_at < ctx.period.end,
    )
    starts: dict[str, list[int]] = defaultdict(list)
    for key, t in ctx.conn.execute(earlier).all():
        starts[key].append(t)
    sorted_starts = {k: np.sort(np.asarray(v, dtype=np.int64)) for k, v in starts.items()}
    repeats = 0
    ev: list[Evidence] = []
    for iid, key, t in rows:
        hit = False
        if key is not None:
            arr = sorted_starts.get(key)
            if arr is not None:
                lo = int(np.searchsorted(arr, t - RECURRENCE_WINDOW_US, "left"))
                hi = int(np.searchsorted(arr, t, "left"))
                hit = hi > lo
        repeats += hit
        if ctx.explain:
            note = f"key {key}: " + ("same key in the 720 h before" if hit else "no repeat")
            ev.append(Evidence("incident", iid, "numerator" if hit else "denominator", None,
                               note if key else "no root_cause_key"))
    return Outcome(pct(repeats, len(rows)), len(rows), {"repeats": repeats},
                   ev if ctx.explain else None)


def _actionable(al: Table) -> ColumnElement[bool]:
    return or_(
        al.c.actionable.is_(True),
        and_(
            al.c.actionable.is_(None),
            or_(al.c.acknowledged_at.is_not(None), al.c.incident.is_not(None)),
        ),
    )


def alert_noise(ctx: Ctx) -> Outcome:
    al = T["alert"]
    in_period = (al.c.fired_at >= ctx.period.start, al.c.fired_at < ctx.period.end)
    actionable = _actionable(al)
    if not ctx.explain:
        q: Any = select(func.count(), func.sum(case((actionable, 1), else_=0)))
        row = ctx.conn.execute(where(q.where(*in_period), ctx.by_service(al.c.service))).one()
        total, good = row[0], row[1]
        total, good = int(total or 0), int(good or 0)
        return Outcome(pct(total - good, total), total, {"non_actionable": total - good})
    q2 = select(al.c.id, al.c.name, actionable).where(*in_period).order_by(al.c.fired_at)
    ev = []
    noisy = 0
    for aid, name, ok in ctx.conn.execute(where(q2, ctx.by_service(al.c.service))):
        noisy += not ok
        ev.append(Evidence("alert", aid, "denominator" if ok else "numerator", None,
                           f"{name}: {'actionable' if ok else 'not actionable'}"))
    return Outcome(pct(noisy, len(ev)), len(ev), {"non_actionable": noisy}, ev)


def restore_pass_rate(ctx: Ctx) -> Outcome:
    rt = T["restore_test"]
    q = select(rt.c.id, rt.c.passed).where(
        rt.c.started_at >= ctx.period.start, rt.c.started_at < ctx.period.end
    )
    rows = ctx.conn.execute(where(q, ctx.through(rt.c.job, "backup_job"))).all()
    passed = sum(1 for _, p in rows if p)
    ev = [Evidence("restore_test", r, "numerator" if p else "denominator", None,
                   "passed" if p else "failed") for r, p in rows] if ctx.explain else None
    return Outcome(pct(passed, len(rows)), len(rows), {"passed": passed}, ev)


def capacity_accuracy(ctx: Ctx) -> Outcome:
    cf = T["capacity_forecast"]
    q = select(cf.c.id, cf.c.forecast, cf.c.actual).where(
        cf.c.target_date >= ctx.period.start.date(),
        cf.c.target_date < ctx.period.end.date(),
        cf.c.actual.is_not(None),
        cf.c.actual != 0,
    )
    rows = ctx.conn.execute(where(q, ctx.by_service(cf.c.service))).all()
    errors = [100.0 * abs(f - a) / abs(a) for _, f, a in rows]
    ev = [Evidence("capacity_forecast", r[0], "value", e, "absolute % error")
          for r, e in zip(rows, errors, strict=True)] if ctx.explain else None
    return Outcome(mean(errors), len(rows), evidence=ev)
