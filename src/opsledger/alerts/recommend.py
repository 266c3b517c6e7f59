"""Ranked recommendations from the per-rule figures, each with the exact noise ratio
before and after it is applied alone (docs/commands/alerts.md)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opsledger.alerts.model import ACTIONS, Recommendation, RuleStats, Thresholds
from opsledger.kpis.model import pct


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
