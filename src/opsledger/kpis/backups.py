"""Backup success rate: expected runs are the cron ticks of each job's schedule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
from sqlalchemy import ColumnElement, Select, String, case, cast, func, select

from opsledger.core.cron import parse, ticks
from opsledger.core.types import from_epoch_us
from opsledger.kpis.model import US_PER_HOUR, US_PER_MIN, Ctx, Evidence, Outcome, pct, where
from opsledger.records.tables import RECORD_TABLES as T

_EMPTY = np.empty(0, dtype=np.int64)


@dataclass(frozen=True)
class Runs:
    """One job's runs of the window, sorted by start: starts (epoch us), success flags, and in
    explain mode the run ids."""

    starts: np.ndarray[Any, Any]
    success: np.ndarray[Any, Any]
    ids: list[str] | None = None


_NO_RUNS = Runs(_EMPTY, np.zeros(0, dtype=bool), [])


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


def _window_filter(ctx: Ctx, q: Select[Any], window: int) -> Select[Any]:
    """Runs that can meet a tick of the period or count as recorded runs: started in
    [start, end + window), in scope. `job IN (the distinct jobs of the runs)` selects no
    fewer runs; it lets SQLite read the (job, started_at, status) index job by job."""
    runs = T["backup_run"]
    rr, other = runs.c, runs.alias("r2").c
    return where(q.where(
        rr.job.in_(select(other.job).distinct()),
        rr.started_at >= ctx.period.start,
        rr.started_at < ctx.period.end + timedelta(microseconds=window)),
        ctx.through(rr.job, "backup_job"))


def runs_by_job(ctx: Ctx, window: int) -> dict[str, Runs]:
    """Each job's runs of the window, whatever the job (scheduled, unscheduled, unknown).
    Without --explain the database aggregates them into one string per job,
    start * 2 + success, so that no Python object is made per run; with --explain the runs
    come as rows, ids included."""
    rr = T["backup_run"].c
    ok: ColumnElement[int] = case((rr.status == "success", 1), else_=0)
    out: dict[str, Runs] = {}
    if not ctx.explain:
        packed = cast(ctx.ts(rr.started_at) * 2 + ok, String)
        q = select(rr.job, func.aggregate_strings(packed, ",")).group_by(rr.job)
        for job_id, text in ctx.conn.execute(_window_filter(ctx, q, window)).all():
            values = np.sort(np.array(text.split(","), dtype=np.int64))
            out[job_id] = Runs(values >> 1, (values & 1).astype(bool))
        return out
    q = select(rr.job, ctx.ts(rr.started_at), ok, rr.id).order_by(rr.job, rr.started_at, rr.id)
    rows = ctx.conn.execute(_window_filter(ctx, q, window)).all()
    pos = 0
    while pos < len(rows):
        job_id, end = rows[pos][0], pos
        while end < len(rows) and rows[end][0] == job_id:
            end += 1
        part = rows[pos:end]
        out[job_id] = Runs(np.array([r[1] for r in part], dtype=np.int64),
                           np.array([bool(r[2]) for r in part], dtype=bool),
                           [r[3] for r in part])
        pos = end
    return out


def backup_success(ctx: Ctx) -> Outcome:
    jobs_t, runs_t = T["backup_job"], T["backup_run"]
    window = ctx.policy.backups.tick_window_minutes * US_PER_MIN
    start, end = ctx.start_us, ctx.end_us
    jobs = ctx.conn.execute(where(
        select(jobs_t.c.id, jobs_t.c.schedule, ctx.ts(jobs_t.c.since)).where(
            jobs_t.c.schedule.is_not(None)),
        ctx.by_service(jobs_t.c.service))).all()
    # a job's first recorded run matters only when it has no `since`
    without_since = select(jobs_t.c.id).where(
        jobs_t.c.schedule.is_not(None), jobs_t.c.since.is_(None))
    first_runs: dict[str, int] = dict(ctx.conn.execute(
        select(runs_t.c.job, ctx.ts(func.min(runs_t.c.started_at)))
        .where(runs_t.c.job.in_(without_since)).group_by(runs_t.c.job)).all())
    by_job = runs_by_job(ctx, window)
    expected = met = silent = 0
    ev: list[Evidence] = []
    for job_id, schedule, since in jobs:
        runs = by_job.pop(job_id, _NO_RUNS)
        lo = _first_tick_us(since, first_runs.get(job_id), window)
        tick_us = ticks(parse(schedule), start if lo is None else max(start, lo), end)
        if tick_us.size == 0:
            continue
        ok_arr = runs.starts[runs.success]
        hit = _met(ok_arr, tick_us, window)
        any_hit = _met(runs.starts, tick_us, window)
        expected += int(tick_us.size)
        met += int(hit.sum())
        silent += int((~any_hit).sum())
        if ctx.explain:
            ids = [i for i, s in zip(runs.ids or [], runs.success.tolist(), strict=True) if s]
            idx = np.searchsorted(ok_arr, tick_us, "left")
            for t, h, a, i in zip(tick_us.tolist(), hit.tolist(), any_hit.tolist(),
                                  idx.tolist(), strict=True):
                when = from_epoch_us(t).isoformat().replace("+00:00", "Z")
                note = (f"tick {when} met by run {ids[i]}" if h else
                        f"tick {when}: " + ("only failed runs" if a else "no run (silent failure)"))
                ev.append(Evidence("backup_job", job_id, "numerator" if h else "denominator",
                                   None, note))
    # what is left are runs of jobs without a schedule (or of unknown jobs, when not
    # narrowed: a narrowed scope reaches runs only through their job); each run started in
    # the period counts as recorded (the window's end reaches past the period for ticks)
    for runs in by_job.values():
        in_period = runs.starts < end
        expected += int(in_period.sum())
        met += int(runs.success[in_period].sum())
        if ctx.explain:
            for rid, ok, inside in zip(runs.ids or [], runs.success.tolist(),
                                       in_period.tolist(), strict=True):
                if inside:
                    status = "success" if ok else "failed"
                    ev.append(Evidence("backup_run", rid, "numerator" if ok else "denominator",
                                       None, f"unscheduled job, run {status}"))
    extras = {"silent_failures": silent, "silent_failures_target": 0,
              "tick_window_hours": window / US_PER_HOUR}
    return Outcome(pct(met, expected), expected, extras, ev if ctx.explain else None)
