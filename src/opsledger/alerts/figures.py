"""The per-rule figures of the alert-noise analysis, computed from one pass over the
occurrences: the fetch (SQL, flags and integer times) and the numpy work (counts, flapping,
medians, storms). Definitions in docs/commands/alerts.md."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)

from opsledger.alerts.model import RuleStats
from opsledger.kpis.model import US_PER_MIN, Ctx, where
from opsledger.records.tables import RECORD_TABLES

NO_TIME = -(2**62)  # stands for "not resolved" in the integer time arrays
CHUNK = 50_000  # rows fetched at a time
_MINUTE = timedelta(minutes=1)

I64 = np.ndarray[Any, np.dtype[np.int64]]
I32 = np.ndarray[Any, np.dtype[np.int32]]
Ints = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]


def actionable_expr() -> ColumnElement[bool]:
    """The scorecard's definition of an actionable alert (spec/kpis.md, alert_noise_ratio)."""
    al = RECORD_TABLES["alert"]
    return or_(
        al.c.actionable.is_(True),
        and_(
            al.c.actionable.is_(None),
            or_(al.c.acknowledged_at.is_not(None), al.c.incident.is_not(None)),
        ),
    )


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a million rows pass through: it would scan the
    young objects again and again for cycles that these rows and tuples never form (this
    halves the fetch time). Reference counting still frees everything; the previous state is
    restored."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Per-occurrence flags, computed in SQL and packed into one integer.
ACTIONABLE, CRITICAL, NO_RUNBOOK, ACKED = 1, 2, 4, 8


def _flag(cond: ColumnElement[bool], bit: int) -> ColumnElement[Any]:
    return case((cond, bit), else_=0)


def _in_period(ctx: Ctx) -> list[ColumnElement[bool]]:
    al = RECORD_TABLES["alert"]
    return [al.c.fired_at >= ctx.period.start, al.c.fired_at < ctx.period.end]


@dataclass
class _Columns:
    """Every fetched occurrence as parallel arrays: first the `inside` occurrences of the
    period, then the look-back ones (before it) that only serve as previous occurrences."""

    rule: I32  # index into the rule names
    series: I32  # the series key (fingerprint, else label set), across rules
    fired: I64  # epoch microseconds
    resolved: I64  # epoch microseconds, NO_TIME when not resolved
    flags: I64  # ACTIONABLE | CRITICAL | NO_RUNBOOK | ACKED
    inside: int  # how many of the rows are in the period

    def period(self) -> _Columns:
        """The occurrences in the period (views, no copy)."""
        n = self.inside
        return _Columns(self.rule[:n], self.series[:n], self.fired[:n], self.resolved[:n],
                        self.flags[:n], n)


def _series_key(raw: str | None) -> str:
    """The canonical series of a raw key from SQL: 'f' + fingerprint, 'l' + the labels as JSON
    text (key order does not matter), or None (no labels either): the rule as a whole."""
    if raw is None or raw[0] == "f":
        return raw or ""
    value = orjson.loads(raw[1:])
    if not value:
        return ""
    return "l" + orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _chunks(
    conn: Connection, queries: list[tuple[int, Select[Any]]]
) -> Iterator[tuple[int, Sequence[Row[Any]]]]:
    """The queries' rows, CHUNK at a time (a server-side cursor on PostgreSQL)."""
    for flag, q in queries:
        result = conn.execute(q, execution_options={"yield_per": CHUNK})
        try:
            for chunk in result.partitions(CHUNK):
                yield flag, chunk
        finally:
            result.close()


def fetch(ctx: Ctx) -> tuple[list[str], _Columns]:
    """One pass over the occurrences in the period, plus those before it that resolved at most
    flap_minutes before its start (the previous occurrence of a series may be one of them).
    Returns the rule names and the columns. The per-row Python work is a few dictionary
    look-ups done by `map`; everything else is numpy."""
    al = RECORD_TABLES["alert"]
    flags = (
        _flag(actionable_expr(), ACTIONABLE)
        + _flag(al.c.severity == "critical", CRITICAL)
        + _flag(or_(al.c.runbook_url.is_(None), al.c.runbook_url == ""), NO_RUNBOOK)
        + _flag(al.c.acknowledged_at.is_not(None), ACKED)
    )
    raw_series = func.coalesce(
        literal("f", Text) + func.nullif(al.c.fingerprint, ""),
        literal("l", Text) + cast(al.c.labels, Text),
    )
    cols = (
        al.c.name,
        raw_series,
        ctx.ts(al.c.fired_at),
        func.coalesce(ctx.ts(al.c.resolved_at), NO_TIME),
        flags,
    )
    scope = ctx.by_service(al.c.service)
    queries = [(1, where(select(*cols).where(*_in_period(ctx)), scope))]
    try:
        flap_back = ctx.period.start - ctx.policy.alerts.flap_minutes * _MINUTE
    except OverflowError:  # a period starting on 0001-01-01 has nothing before it
        pass
    else:
        queries.append((0, where(select(*cols).where(al.c.fired_at < ctx.period.start,
                                                     al.c.resolved_at >= flap_back), scope)))
    names: dict[str, int] = {}
    series: dict[str | None, int] = {}
    canonical: dict[str, int] = {}
    parts: list[list[Any]] = [[], [], [], [], []]
    inside = 0
    for in_period, chunk in _chunks(ctx.conn, queries):
        name, key, fired, resolved, flag = zip(*chunk, strict=True)
        if in_period:
            for new in set(name).difference(names):
                names[new] = len(names)
            inside += len(chunk)
        else:  # look-back rows matter only for rules that fired in the period
            keep = [x in names for x in name]
            name, key, fired, resolved, flag = (
                tuple(v for v, k in zip(col, keep, strict=True) if k)
                for col in (name, key, fired, resolved, flag)
            )
        for new in set(key).difference(series):
            series[new] = canonical.setdefault(_series_key(new), len(canonical))
        n = len(name)
        parts[0].append(np.fromiter(map(names.__getitem__, name), np.int32, n))
        parts[1].append(np.fromiter(map(series.__getitem__, key), np.int32, n))
        parts[2].append(np.array(fired, np.int64))
        parts[3].append(np.array(resolved, np.int64))
        parts[4].append(np.array(flag, np.int64))
    rule, ser, fired_a, resolved_a, flags_a = (
        np.concatenate(p) if p else np.zeros(0, dt)
        for p, dt in zip(parts, (np.int32, np.int32, np.int64, np.int64, np.int64), strict=True)
    )
    columns = _Columns(rule, ser, fired_a, resolved_a, flags_a, inside)
    return sorted(names, key=names.__getitem__), columns


def figures(c: _Columns, names: list[str], settings: dict[str, Any]) -> list[RuleStats]:
    """Every per-rule figure from the occurrence columns, vectorised."""
    n_rules = len(names)
    if n_rules == 0:
        return []
    flapping = _flapping(c, settings["flap_minutes"] * US_PER_MIN, n_rules)
    p = c.period()
    quick_us = settings["quick_resolve_minutes"] * US_PER_MIN

    def per_rule(mask: np.ndarray[Any, np.dtype[np.bool_]]) -> I64:
        return np.bincount(p.rule[mask], minlength=n_rules).astype(np.int64)

    act = (p.flags & ACTIONABLE) != 0
    crit = (p.flags & CRITICAL) != 0
    no_rb = (p.flags & NO_RUNBOOK) != 0
    done = p.resolved != NO_TIME
    quick = done & ((p.flags & ACKED) == 0) & (p.resolved - p.fired < quick_us)
    counts = {
        "occurrences": per_rule(np.ones(p.rule.size, bool)),
        "actionable": per_rule(act),
        "critical": per_rule(crit),
        "critical_actionable": per_rule(crit & act),
        "missing_runbook": per_rule(no_rb),
        "actionable_missing_runbook": per_rule(no_rb & act),
        "quick_unacked": per_rule(quick),
        "quick_unacked_actionable": per_rule(quick & act),
        "resolved": per_rule(done),
        "flapping": flapping,
    }
    medians = _medians(p.rule, p.fired, p.resolved, n_rules)
    storms = _storms(p.rule, p.fired, act.astype(np.int64), settings["storm_count"],
                     settings["storm_minutes"] * US_PER_MIN, n_rules)
    rules = []
    for i, name in enumerate(names):
        r = RuleStats(name, **{k: int(v[i]) for k, v in counts.items()})
        r.median_duration_minutes = None if np.isnan(medians[i]) else float(medians[i])
        r.storms, r.biggest_storm, r.in_storms, r.storm_excess, r.storm_excess_non_actionable = (
            int(x[i]) for x in storms
        )
        rules.append(r)
    return rules


def _sort_key(group: I64, time: I64) -> I64 | None:
    """One int64 key ordering rows by (group, time), or None when it would overflow."""
    if group.size == 0:
        return group
    tmin = int(time.min())
    span = int(time.max()) - tmin + 1
    if (int(group.max()) + 1) * span >= 2**62:
        return None
    return group * span + (time - tmin)


def _flapping(c: _Columns, flap_us: int, n_rules: int) -> I64:
    """Per rule: occurrences in the period that fired within flap_us after the previous
    occurrence of the same series resolved."""
    if c.rule.size < 2:
        return np.zeros(n_rules, np.int64)
    # ties (same series, same fired_at) by resolved_at, so the order never depends on storage
    order = np.lexsort((c.resolved, c.fired, c.series, c.rule))
    rule, series = c.rule[order], c.series[order]
    same = (rule[1:] == rule[:-1]) & (series[1:] == series[:-1])
    del series
    prev_resolved = c.resolved[order[:-1]]
    gap = c.fired[order[1:]] - prev_resolved
    flap = same & (prev_resolved != NO_TIME) & (gap >= 0) & (gap <= flap_us)
    flap &= order[1:] < c.inside  # the occurrence itself is in the period
    return np.bincount(rule[1:][flap], minlength=n_rules).astype(np.int64)


def _medians(
    rules: Ints, fired: I64, resolved: I64, n_rules: int
) -> np.ndarray[Any, np.dtype[np.float64]]:
    """Per rule: median minutes fired -> resolved of the resolved occurrences (NaN: none)."""
    done = resolved != NO_TIME
    rule, dur = rules[done].astype(np.int64), resolved[done] - fired[done]
    out = np.full(n_rules, np.nan)
    if dur.size == 0:
        return out
    key = _sort_key(rule, dur)
    if key is None:
        order = np.lexsort((dur, rule))
        rule, dur = rule[order], dur[order]
    else:  # sorting the keys alone is enough: each key still holds its duration
        key.sort()
        span = int(dur.max()) - int(dur.min()) + 1
        rule, dur = key // span, key % span + int(dur.min())
    minutes = dur / US_PER_MIN
    counts = np.bincount(rule, minlength=n_rules)
    starts = np.cumsum(counts) - counts
    has = counts > 0
    lo = starts[has] + (counts[has] - 1) // 2
    hi = starts[has] + counts[has] // 2
    out[has] = (minutes[lo] + minutes[hi]) / 2
    return out


def _window_ends(rule: I64, fired: I64, window_us: int) -> I64:
    """For rows sorted by (rule, fired): the index just past the last row of the same rule
    that fired less than window_us after this row."""
    tmin = int(fired.min())
    span = int(fired.max()) - tmin + window_us + 1
    if (int(rule.max()) + 1) * span < 2**62:  # one composite key, one searchsorted
        key = rule * span + (fired - tmin)
        return np.searchsorted(key, key + window_us, side="left").astype(np.int64)
    ends = np.empty(rule.size, np.int64)  # too many rules for one key: per rule
    bounds = np.flatnonzero(np.diff(rule)) + 1
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, rule.size], strict=True):
        seg = fired[lo:hi]
        ends[lo:hi] = lo + np.searchsorted(seg, seg + window_us, side="left")
    return ends


def _storms(
    rules: Ints, fired: I64, actionable: I64, storm_count: int, window_us: int, n_rules: int
) -> tuple[I64, I64, I64, I64, I64]:
    """Per rule: storms, biggest storm, occurrences in storms, occurrences beyond the first of
    each storm, and how many of those leave the noise numerator when each storm is grouped into
    one notification (actionable when any occurrence of the storm was)."""
    zeros = [np.zeros(n_rules, np.int64) for _ in range(5)]
    rule = rules.astype(np.int64)
    if rule.size < storm_count:
        return zeros[0], zeros[1], zeros[2], zeros[3], zeros[4]
    key = _sort_key(rule, fired)
    order = np.lexsort((fired, rule)) if key is None else np.argsort(key, kind="stable")
    rule, fired, actionable = rule[order], fired[order], actionable[order]
    idx = np.arange(rule.size, dtype=np.int64)
    ends = _window_ends(rule, fired, window_us)
    qualifies = ends - idx >= storm_count
    # reach[k]: the furthest end of a qualifying window starting at or before k
    reach = np.maximum.accumulate(np.where(qualifies, ends, 0))
    covered = reach > idx
    before = np.r_[np.int64(0), reach[:-1]]
    starts = covered & (before <= idx)  # not linked to a window that started earlier
    if not starts.any():
        return zeros[0], zeros[1], zeros[2], zeros[3], zeros[4]
    storm_id = (np.cumsum(starts) - 1)[covered]
    sizes = np.bincount(storm_id).astype(np.int64)
    acts = np.bincount(storm_id, weights=actionable[covered]).astype(np.int64)
    owner = rule[starts]
    count = np.bincount(owner, minlength=n_rules).astype(np.int64)
    biggest = np.zeros(n_rules, np.int64)
    np.maximum.at(biggest, owner, sizes)
    in_storms = np.bincount(owner, weights=sizes, minlength=n_rules).astype(np.int64)
    excess = in_storms - count
    # grouped: one notification per storm, non-actionable only when no occurrence was
    left_numerator = (sizes - acts) - (acts == 0)
    excess_na = np.bincount(owner, weights=left_numerator, minlength=n_rules).astype(np.int64)
    return count, biggest, in_storms, excess, excess_na
