"""Change and delivery KPIs: lead time, provisioning time, change failure rate, deployment
frequency and delivery predictability."""

from __future__ import annotations

from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, case, func, or_, select

from opsledger.core.types import from_epoch_us
from opsledger.kpis.model import (
    US_PER_DAY,
    US_PER_MIN,
    Ctx,
    Evidence,
    Outcome,
    int_rows,
    median,
    pct,
    where,
)
from opsledger.records.tables import RECORD_TABLES as T


def _days(us: list[int] | np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return (np.asarray(us, dtype=np.int64) // US_PER_DAY).astype("datetime64[D]")


def change_lead_time(ctx: Ctx) -> Outcome:
    ch = T["change"]
    conds = (ch.c.approved_at.is_not(None), ch.c.deployed_at >= ctx.period.start,
             ch.c.deployed_at < ctx.period.end, ctx.by_service(ch.c.service))
    if not ctx.explain:  # the median needs no ids nor order: both times as one string
        times = int_rows(ctx.conn, [ctx.ts(ch.c.approved_at), ctx.ts(ch.c.deployed_at)], *conds)
        if times.shape[0] == 0:
            return Outcome(None, 0)
        days = np.busday_count(_days(times[:, 0]), _days(times[:, 1]))
        return Outcome(median(days), int(times.shape[0]))
    q = select(ch.c.id, ctx.ts(ch.c.approved_at), ctx.ts(ch.c.deployed_at))
    rows = ctx.conn.execute(where(q, *conds)).all()
    if not rows:
        return Outcome(None, 0)
    ids, approved, deployed = zip(*rows, strict=True)
    days = np.busday_count(_days(list(approved)), _days(list(deployed)))
    ev = [Evidence("change", i, "value", float(d), "business days approved -> deployed")
          for i, d in zip(ids, days, strict=True)] if ctx.explain else None
    return Outcome(median(days), len(rows), evidence=ev)


def provisioning_time(ctx: Ctx) -> Outcome:
    if ctx.scope.narrowed:  # provisioning records carry no service or team
        return Outcome(None, 0, evidence=[] if ctx.explain else None)
    pr = T["provisioning"]
    q = select(pr.c.id, ctx.ts(pr.c.requested_at), ctx.ts(pr.c.completed_at)).where(
        pr.c.completed_at >= ctx.period.start, pr.c.completed_at < ctx.period.end
    )
    rows = ctx.conn.execute(q).all()
    minutes = [(done - req) / US_PER_MIN for _, req, done in rows]
    ev = [Evidence("provisioning", r[0], "value", m, "minutes requested -> completed")
          for r, m in zip(rows, minutes, strict=True)] if ctx.explain else None
    return Outcome(median(minutes), len(rows), evidence=ev)


FAILED_OUTCOMES = ("failed", "rolled_back")


def _caused() -> ColumnElement[bool]:
    """A change named by an incident's caused_by_change (any incident of the ledger)."""
    ch, inc = T["change"], T["incident"]
    return ch.c.id.in_(select(inc.c.caused_by_change).where(inc.c.caused_by_change.is_not(None)))


def _changes_deployed(ctx: Ctx) -> list[Any]:
    ch = T["change"]
    q = select(ch.c.id, ch.c.outcome, _caused()).where(
        ch.c.deployed_at >= ctx.period.start, ch.c.deployed_at < ctx.period.end
    )
    return list(ctx.conn.execute(where(q, ctx.by_service(ch.c.service))).all())


def _failure_totals(ctx: Ctx) -> Outcome:
    """change_failure_rate counted in SQL: a NULL outcome is no failure (its CASE does not
    match), as `outcome in FAILED_OUTCOMES` is False in Python."""
    ch = T["change"]
    bad = or_(ch.c.outcome.in_(FAILED_OUTCOMES), _caused())
    q: Any = select(func.count(), func.sum(case((bad, 1), else_=0))).where(
        ch.c.deployed_at >= ctx.period.start, ch.c.deployed_at < ctx.period.end)
    row = ctx.conn.execute(where(q, ctx.by_service(ch.c.service))).one()
    total, failed = int(row[0] or 0), int(row[1] or 0)
    return Outcome(pct(failed, total), total, {"failed": failed})


def change_failure_rate(ctx: Ctx) -> Outcome:
    if not ctx.explain:
        return _failure_totals(ctx)
    rows = _changes_deployed(ctx)
    failed = 0
    ev: list[Evidence] = []
    for cid, outcome, caused in rows:
        bad = outcome in FAILED_OUTCOMES or bool(caused)
        failed += bad
        if ctx.explain:
            why = [f"outcome {outcome}"] if outcome in FAILED_OUTCOMES else []
            why += ["named by an incident's caused_by_change"] if caused else []
            ev.append(Evidence("change", cid, "numerator" if bad else "denominator", None,
                               "; ".join(why) or "deployed, no failure"))
    return Outcome(pct(failed, len(rows)), len(rows), {"failed": failed},
                   ev if ctx.explain else None)


def deployment_frequency(ctx: Ctx) -> Outcome:
    if not ctx.explain:
        ch = T["change"]
        q = select(func.count()).where(
            ch.c.deployed_at >= ctx.period.start, ch.c.deployed_at < ctx.period.end
        )
        n = int(ctx.conn.execute(where(q, ctx.by_service(ch.c.service))).scalar_one())
        return Outcome(n / (ctx.period.days / 7) if n else None, n)
    rows = _changes_deployed(ctx)
    value = len(rows) / (ctx.period.days / 7) if rows else None
    ev = [Evidence("change", r[0], "numerator", 1.0, "deployed in period") for r in rows]
    return Outcome(value, len(rows), evidence=ev if ctx.explain else None)


_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def on_time(ctx: Ctx, kind: str, due_rows: list[Any]) -> Outcome:
    """Share of items completed by the end of their due date (UTC): completed_at < due + 1 day.
    Rows are (id, due date, completed_at as epoch microseconds or None)."""
    done = 0
    ev: list[Evidence] = []
    for rid, due, completed in due_rows:
        deadline = (due.toordinal() - _EPOCH_ORDINAL + 1) * US_PER_DAY  # due + 1 day, 00:00Z
        ok = completed is not None and completed < deadline
        done += ok
        if ctx.explain:
            when = from_epoch_us(completed).isoformat() if completed is not None else "never"
            note = f"due {due}, completed {when}"
            ev.append(Evidence(kind, rid, "numerator" if ok else "denominator", None, note))
    return Outcome(pct(done, len(due_rows)), len(due_rows), {"on_time": done},
                   ev if ctx.explain else None)


def delivery_predictability(ctx: Ctx) -> Outcome:
    wi = T["work_item"]
    q = select(wi.c.id, wi.c.due, ctx.ts(wi.c.completed_at)).where(
        wi.c.due >= ctx.period.start.date(), wi.c.due < ctx.period.end.date()
    )
    # .all() fetches in one call; iterating a result fetches row by row (slow on psycopg)
    rows = ctx.conn.execute(where(q, ctx.by_team_field(wi.c.team))).all()
    return on_time(ctx, "work_item", list(rows))


def action_item_follow_through(ctx: Ctx) -> Outcome:
    ai = T["action_item"]
    q = select(ai.c.id, ai.c.due, ctx.ts(ai.c.completed_at)).where(
        ai.c.due >= ctx.period.start.date(), ai.c.due < ctx.period.end.date()
    )
    rows = ctx.conn.execute(where(q, ctx.through(ai.c.incident, "incident"))).all()
    return on_time(ctx, "action_item", list(rows))
