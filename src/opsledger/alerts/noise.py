"""Alert-noise analysis: per alert rule (`name`), for the alerts fired in a period and scope,
how noisy it is and what to do about it. Pure domain logic over the ledger; no CLI or HTTP.

Every figure is defined in docs/commands/alerts.md; in short, per rule:

- occurrences and the actionable share, with the scorecard's `alert_noise_ratio` definition
  (actionable: `actionable` true, or absent and acknowledged or linked to an incident);
- flapping: occurrences that fired at most `flap_minutes` after the previous occurrence of the
  same rule and the same series (fingerprint, else label set) resolved;
- median duration fired -> resolved (resolved occurrences, minutes);
- quick unacknowledged: resolved less than `quick_resolve_minutes` after firing, never
  acknowledged;
- storms: windows of `storm_minutes` starting at an occurrence that hold at least
  `storm_count` occurrences of the rule; windows that share an occurrence are one storm;
- missing `runbook_url`.

Then ranked recommendations, each with the exact noise ratio before and after it is applied.

Speed: the order-dependent figures (flapping, storms, medians) need every occurrence's times
anyway, so one query reads each occurrence once, with its per-alert flags (actionable by the
KPI's definition, critical, runbook missing, acknowledged) computed in SQL and its times as
integer microseconds; a separate GROUP BY pass for the counts would scan the alerts a second
time for figures that `numpy.bincount` gives from the fetched arrays in milliseconds. Every
figure is computed with numpy over all occurrences at once: no Python loop per alert.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import numpy as np
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

from opsledger.core.periods import Period
from opsledger.kpis.engine import evaluate, period_json
from opsledger.kpis.model import US_PER_MIN, Ctx, Outcome, Scope, pct, where
from opsledger.kpis.registry import get
from opsledger.records.tables import RECORD_TABLES

NO_TIME = -(2**62)  # stands for "not resolved" in the integer time arrays
CHUNK = 50_000  # rows fetched at a time
_MINUTE = timedelta(minutes=1)

I64 = np.ndarray[Any, np.dtype[np.int64]]
I32 = np.ndarray[Any, np.dtype[np.int32]]
Ints = np.ndarray[Any, np.dtype[np.signedinteger[Any]]]

ACTIONS = ("delete", "demote_to_ticket", "raise_for", "group_or_inhibit", "add_runbook")
ACTION_TITLES = {
    "raise_for": "raise for:",
    "group_or_inhibit": "group or inhibit",
    "demote_to_ticket": "demote from paging to a ticket",
    "delete": "delete",
    "add_runbook": "add a runbook",
}


@dataclass(frozen=True)
class Thresholds:
    """When a recommendation is made. The time windows come from the policy's [alerts]."""

    raise_for_min_count: int = 3  # quick unacknowledged occurrences, at least ...
    raise_for_min_percent: float = 30.0  # ... and at least this % of the rule's occurrences
    demote_min_count: int = 5  # critical occurrences, at least ...
    demote_max_actionable_percent: float = 50.0  # ... of which actionable less than this %
    delete_min_count: int = 10  # never actionable over at least this many occurrences

    def as_json(self) -> dict[str, Any]:
        return {
            "raise_for_min_count": self.raise_for_min_count,
            "raise_for_min_percent": self.raise_for_min_percent,
            "demote_min_count": self.demote_min_count,
            "demote_max_actionable_percent": self.demote_max_actionable_percent,
            "delete_min_count": self.delete_min_count,
        }


@dataclass
class RuleStats:
    """The figures of one alert rule in the period and scope."""

    name: str
    occurrences: int
    actionable: int
    critical: int  # occurrences with severity critical
    critical_actionable: int
    missing_runbook: int  # occurrences with no runbook_url
    actionable_missing_runbook: int
    quick_unacked: int  # resolved in under quick_resolve_minutes, never acknowledged
    quick_unacked_actionable: int
    resolved: int
    flapping: int = 0
    median_duration_minutes: float | None = None
    storms: int = 0
    biggest_storm: int = 0  # occurrences in the biggest storm (0: no storm)
    in_storms: int = 0  # occurrences that are part of a storm
    storm_excess: int = 0  # occurrences in storms beyond the first of each
    storm_excess_non_actionable: int = 0  # of those, how many leave the noise numerator

    @property
    def non_actionable(self) -> int:
        return self.occurrences - self.actionable

    @property
    def actionable_percent(self) -> float | None:
        return pct(self.actionable, self.occurrences)

    @property
    def quick_unacked_percent(self) -> float | None:
        return pct(self.quick_unacked, self.occurrences)

    @property
    def missing_runbook_percent(self) -> float | None:
        return pct(self.missing_runbook, self.occurrences)

    @property
    def critical_actionable_percent(self) -> float | None:
        return pct(self.critical_actionable, self.critical)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "occurrences": self.occurrences,
            "actionable": self.actionable,
            "non_actionable": self.non_actionable,
            "actionable_percent": self.actionable_percent,
            "flapping": self.flapping,
            "resolved": self.resolved,
            "median_duration_minutes": self.median_duration_minutes,
            "quick_unacked": self.quick_unacked,
            "quick_unacked_actionable": self.quick_unacked_actionable,
            "quick_unacked_percent": self.quick_unacked_percent,
            "storms": self.storms,
            "biggest_storm": self.biggest_storm,
            "in_storms": self.in_storms,
            "storm_excess": self.storm_excess,
            "storm_excess_non_actionable": self.storm_excess_non_actionable,
            "missing_runbook": self.missing_runbook,
            "missing_runbook_percent": self.missing_runbook_percent,
            "actionable_missing_runbook": self.actionable_missing_runbook,
            "critical": self.critical,
            "critical_actionable": self.critical_actionable,
            "critical_actionable_percent": self.critical_actionable_percent,
        }


@dataclass
class Recommendation:
    """One action on one rule, with the noise ratio before and after applying it alone."""

    action: str  # one of ACTIONS
    rule: str
    evidence: str
    figures: dict[str, Any]
    removed: int  # occurrences that would no longer be alerts
    removed_non_actionable: int  # of those, how many leave the numerator
    before: float | None
    after: float | None
    rank: int = 0

    @property
    def title(self) -> str:
        return ACTION_TITLES[self.action]

    @property
    def change(self) -> float | None:
        """after - before, in percentage points (negative: less noise)."""
        if self.before is None or self.after is None:
            return None
        return self.after - self.before

    def as_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "action": self.action,
            "title": self.title,
            "rule": self.rule,
            "evidence": self.evidence,
            "figures": self.figures,
            "removed": self.removed,
            "removed_non_actionable": self.removed_non_actionable,
            "noise_ratio_before": self.before,
            "noise_ratio_after": self.after,
            "change_points": self.change,
        }


@dataclass
class NoiseReport:
    period: Period
    scope: Scope
    policy: dict[str, Any]
    thresholds: Thresholds
    occurrences: int
    non_actionable: int
    target: dict[str, Any]
    status: str
    rules: list[RuleStats] = field(default_factory=list)
    recommendations: list[Recommendation] = field(default_factory=list)

    @property
    def noise_ratio(self) -> float | None:
        return pct(self.non_actionable, self.occurrences)

    def as_json(self) -> dict[str, Any]:
        return {
            "period": period_json(self.period),
            "scope": self.scope.as_json(),
            "settings": {**self.policy, **self.thresholds.as_json()},
            "alert_noise_ratio": {
                "value": self.noise_ratio,
                "unit": "percent",
                "count": self.occurrences,
                "non_actionable": self.non_actionable,
                "target": self.target,
                "status": self.status,
            },
            "rules": [r.as_json() for r in self.rules],
            "recommendations": [r.as_json() for r in self.recommendations],
        }


# --- the analysis ---------------------------------------------------------------------------


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


def analyse(ctx: Ctx, thresholds: Thresholds | None = None) -> NoiseReport:
    """The alert-noise report for the context's period and scope."""
    th = thresholds or Thresholds()
    ap = ctx.policy.alerts
    with _no_cyclic_gc():
        names, c = _fetch(ctx)
        rules = _figures(c, names, ap.model_dump())
    total = sum(r.occurrences for r in rules)
    noisy = sum(r.non_actionable for r in rules)
    # target and status exactly as the scorecard gives them, for the value computed here
    outcome = Outcome(pct(noisy, total), total, {"non_actionable": noisy})
    base = get("alert_noise_ratio")

    def compute(other: Ctx) -> Outcome:  # a trend target computes its baseline period anew
        return outcome if other.period == ctx.period else base.compute(other)

    kpi = replace(base, compute=compute)
    figure = evaluate(ctx.conn, kpi, ctx.period, ctx.scope, ctx.policy)
    rules.sort(key=lambda r: (-r.non_actionable, -r.occurrences, r.name))
    return NoiseReport(
        period=ctx.period,
        scope=ctx.scope,
        policy=ap.model_dump(),
        thresholds=th,
        occurrences=total,
        non_actionable=noisy,
        target=figure.target.as_json(),
        status=figure.status,
        rules=rules,
        recommendations=recommend(rules, total, noisy, th, ap.quick_resolve_minutes),
    )


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
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
    value = json.loads(raw[1:])
    if not value:
        return ""
    return "l" + json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


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


def _fetch(ctx: Ctx) -> tuple[list[str], _Columns]:
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


def _figures(c: _Columns, names: list[str], settings: dict[str, Any]) -> list[RuleStats]:
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


# --- recommendations ------------------------------------------------------------------------


def _after(total: int, noisy: int, removed: int, removed_noisy: int) -> float | None:
    return pct(noisy - removed_noisy, total - removed)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def recommend(
    rules: Sequence[RuleStats],
    total: int,
    noisy: int,
    th: Thresholds,
    quick_minutes: int,
) -> list[Recommendation]:
    """The recommendations, ranked: largest fall of the overall noise ratio first."""
    before = pct(noisy, total)
    recs: list[Recommendation] = []

    def add(action: str, r: RuleStats, evidence: str, figures: dict[str, Any],
            removed: int, removed_noisy: int) -> None:
        recs.append(Recommendation(action, r.name, evidence, figures, removed, removed_noisy,
                                   before, _after(total, noisy, removed, removed_noisy)))

    for r in rules:
        if r.actionable == 0 and r.occurrences >= th.delete_min_count:
            add("delete", r,
                f"never actionable over {r.occurrences} occurrences",
                {"occurrences": r.occurrences, "actionable": 0},
                r.occurrences, r.occurrences)
            continue  # deleting the rule makes the other actions moot
        crit_pct = r.critical_actionable_percent
        if (r.critical >= th.demote_min_count and crit_pct is not None
                and crit_pct < th.demote_max_actionable_percent):
            add("demote_to_ticket", r,
                f"{r.critical} critical occurrences, {r.critical_actionable} actionable "
                f"({_fmt(crit_pct)})",
                {"critical": r.critical, "critical_actionable": r.critical_actionable,
                 "critical_actionable_percent": crit_pct},
                r.critical, r.critical - r.critical_actionable)
        quick_pct = r.quick_unacked_percent
        if (r.quick_unacked >= th.raise_for_min_count and quick_pct is not None
                and quick_pct >= th.raise_for_min_percent):
            flaps = f", {r.flapping} flapping" if r.flapping else ""
            add("raise_for", r,
                f"{r.quick_unacked} of {r.occurrences} occurrences ({_fmt(quick_pct)}) "
                f"auto-resolved in under {quick_minutes} min without acknowledgement{flaps}; "
                f"raise for: to at least {quick_minutes}m",
                {"quick_unacked": r.quick_unacked, "quick_unacked_percent": quick_pct,
                 "quick_unacked_actionable": r.quick_unacked_actionable,
                 "occurrences": r.occurrences, "flapping": r.flapping},
                r.quick_unacked, r.quick_unacked - r.quick_unacked_actionable)
        if r.storms:
            add("group_or_inhibit", r,
                f"{r.storms} storm{'s' if r.storms != 1 else ''}, biggest {r.biggest_storm} "
                f"occurrences; {r.storm_excess} occurrences beyond the first of each storm",
                {"storms": r.storms, "biggest_storm": r.biggest_storm,
                 "in_storms": r.in_storms, "storm_excess": r.storm_excess},
                r.storm_excess, r.storm_excess_non_actionable)
        if r.actionable and r.actionable_missing_runbook:
            add("add_runbook", r,
                f"{r.actionable_missing_runbook} of {r.actionable} actionable occurrences "
                f"have no runbook_url",
                {"actionable": r.actionable,
                 "actionable_missing_runbook": r.actionable_missing_runbook,
                 "missing_runbook_percent": r.missing_runbook_percent},
                0, 0)
    ranked = sorted(recs, key=_rank_key)
    for i, rec in enumerate(ranked, 1):
        rec.rank = i
    return ranked


def _rank_key(rec: Recommendation) -> tuple[float, int, int, int, str]:
    change = rec.change
    if change is None:  # nothing left afterwards: the ratio falls to no data
        change = -(rec.before or 0.0)
    return (change, -rec.removed, -int(rec.figures.get("actionable_missing_runbook", 0)),
            ACTIONS.index(rec.action), rec.rule)

