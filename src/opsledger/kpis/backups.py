"""Backup success rate: expected runs are the cron ticks of each job's schedule."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from itertools import groupby
from operator import itemgetter
from typing import Any

import numpy as np
from sqlalchemy import func, select

from opsledger.core.cron import parse, ticks
from opsledger.core.types import from_epoch_us
from opsledger.kpis.model import US_PER_HOUR, US_PER_MIN, Ctx, Evidence, Outcome, pct, where
from opsledger.records.tables import RECORD_TABLES as T


def _first_tick_us(since: int | None, first_run: int | None, window: int) -> int | None:
    """Earliest tick that is expected: at or after `since`; else whose window ends after the
    job's first recorded run started; None when every tick counts."""
    if since is not None:
        return since
    if first_run is not None:
        return first_run - window + 1  # tick + window > first_run
    return None


def _met(runs: np.ndarray[Any, Any], tick_us: np.ndarray[Any, Any], window: int) -> Any:
    idx = np.searchsorted(runs, tick_us, "left")
    found = idx < runs.size
    out = np.zeros(tick_us.size, dtype=bool)
    out[found] = runs[idx[found]] < tick_us[found] + window
    return out


def ok_ids(rows: Sequence[Any], a: int, b: int) -> list[str]:
    """Ids of the successful runs in rows[a:b] (explain mode fetches the id as column 4)."""
    return [r[3] for r in rows[a:b] if r[2]]


def backup_success(ctx: Ctx) -> Outcome:
    jobs_t, runs_t = T["backup_job"], T["backup_run"]
    window = ctx.policy.backups.tick_window_minutes * US_PER_MIN
    start, end = ctx.start_us, ctx.end_us
    jobs = ctx.conn.execute(where(
        select(jobs_t.c.id, jobs_t.c.schedule, ctx.ts(jobs_t.c.since)).where(
            jobs_t.c.schedule.is_not(None)),
        ctx.by_service(jobs_t.c.service))).all()
    scheduled_ids = select(jobs_t.c.id).where(jobs_t.c.schedule.is_not(None))
    # a job's first recorded run matters only when it has no `since`
    without_since = scheduled_ids.where(jobs_t.c.since.is_(None))
    first_runs: dict[str, int] = dict(ctx.conn.execute(
        select(runs_t.c.job, func.min(ctx.ts(runs_t.c.started_at)))
        .where(runs_t.c.job.in_(without_since)).group_by(runs_t.c.job)).all())
    cols = [runs_t.c.job, ctx.ts(runs_t.c.started_at), runs_t.c.status == "success"]
    if ctx.explain:
        cols.append(runs_t.c.id)
    rows = ctx.conn.execute(where(
        select(*cols).where(
            runs_t.c.job.in_(scheduled_ids),
            runs_t.c.started_at >= ctx.period.start,
            runs_t.c.started_at < ctx.period.end + timedelta(microseconds=window)),
        ctx.through(runs_t.c.job, "backup_job")).order_by(runs_t.c.job, runs_t.c.started_at)
    ).all()
    # columns as arrays, and each job's slice of them (rows come sorted by job, start)
    starts = np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows))
    success = np.fromiter((bool(r[2]) for r in rows), dtype=bool, count=len(rows))
    slices: dict[str, tuple[int, int]] = {}
    pos = 0
    for job_id, group in groupby(rows, key=itemgetter(0)):
        size = sum(1 for _ in group)
        slices[job_id] = (pos, pos + size)
        pos += size
    expected = met = silent = 0
    ev: list[Evidence] = []
    for job_id, schedule, since in jobs:
        lo = _first_tick_us(since, first_runs.get(job_id), window)
        tick_us = ticks(parse(schedule), start if lo is None else max(start, lo), end)
        if tick_us.size == 0:
            continue
        first, last = slices.get(job_id, (0, 0))
        ok_arr = starts[first:last][success[first:last]]
        hit = _met(ok_arr, tick_us, window)
        any_hit = _met(starts[first:last], tick_us, window)
        expected += int(tick_us.size)
        met += int(hit.sum())
        silent += int((~any_hit).sum())
        if ctx.explain:
            ids = ok_ids(rows, first, last)
            idx = np.searchsorted(ok_arr, tick_us, "left")
            for t, h, a, i in zip(tick_us.tolist(), hit.tolist(), any_hit.tolist(),
                                  idx.tolist(), strict=True):
                when = from_epoch_us(t).isoformat().replace("+00:00", "Z")
                note = (f"tick {when} met by run {ids[i]}" if h else
                        f"tick {when}: " + ("only failed runs" if a else "no run (silent failure)"))
                ev.append(Evidence("backup_job", job_id, "numerator" if h else "denominator",
                                   None, note))
    # runs of jobs without a schedule (or of unknown jobs, when not narrowed) count as recorded
    rr = runs_t.c
    q = select(rr.id, rr.status).where(
        rr.started_at >= ctx.period.start, rr.started_at < ctx.period.end,
        rr.job.not_in(scheduled_ids))
    for rid, status in ctx.conn.execute(where(q, ctx.through(rr.job, "backup_job"))):
        expected += 1
        met += status == "success"
        if ctx.explain:
            ev.append(Evidence("backup_run", rid, "numerator" if status == "success" else
                               "denominator", None, f"unscheduled job, run {status}"))
    extras = {"silent_failures": silent, "silent_failures_target": 0,
              "tick_window_hours": window / US_PER_HOUR}
    return Outcome(pct(met, expected), expected, extras, ev if ctx.explain else None)
