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

from dataclasses import replace

from opsledger.alerts.figures import actionable_expr, fetch, figures, no_cyclic_gc
from opsledger.alerts.model import (
    ACTION_TITLES,
    ACTIONS,
    NoiseReport,
    Recommendation,
    RuleStats,
    Thresholds,
)
from opsledger.alerts.recommend import recommend
from opsledger.kpis.engine import evaluate
from opsledger.kpis.model import Ctx, Outcome, pct
from opsledger.kpis.registry import get

__all__ = [
    "ACTIONS",
    "ACTION_TITLES",
    "NoiseReport",
    "Recommendation",
    "RuleStats",
    "Thresholds",
    "actionable_expr",
    "analyse",
    "recommend",
]


def analyse(ctx: Ctx, thresholds: Thresholds | None = None) -> NoiseReport:
    """The alert-noise report for the context's period and scope. Windows and thresholds
    come from the policy's [alerts] (`thresholds` overrides the latter)."""
    ap = ctx.policy.alerts
    th = thresholds or Thresholds.of(ap)
    windows = {"flap_minutes": ap.flap_minutes, "quick_resolve_minutes": ap.quick_resolve_minutes,
               "storm_count": ap.storm_count, "storm_minutes": ap.storm_minutes}
    with no_cyclic_gc():
        names, c = fetch(ctx)
        rules = figures(c, names, windows)
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
        windows=windows,
        thresholds=th,
        occurrences=total,
        non_actionable=noisy,
        target=figure.target.as_json(),
        status=figure.status,
        rules=rules,
        recommendations=recommend(rules, total, noisy, th, ap.quick_resolve_minutes),
    )
