"""The alert-noise report's data: per-rule figures, recommendations, thresholds, the
report (docs/commands/alerts.md). No computation beyond derived shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from opsledger.core.periods import Period
from opsledger.kpis.engine import period_json
from opsledger.kpis.model import Scope, pct
from opsledger.kpis.policy import AlertsPolicy

ACTIONS = ("delete", "demote_to_ticket", "raise_for", "group_or_inhibit", "add_runbook")
ACTION_TITLES = {
    "raise_for": "raise for:",
    "group_or_inhibit": "group or inhibit",
    "demote_to_ticket": "demote from paging to a ticket",
    "delete": "delete",
    "add_runbook": "add a runbook",
}


_DEFAULT = AlertsPolicy()


@dataclass(frozen=True)
class Thresholds:
    """When a recommendation is made: the policy's [alerts] thresholds (`of`); the defaults
    are the policy's defaults."""

    # quick unacknowledged occurrences: at least this many, and this % of the rule's
    raise_for_min_count: int = _DEFAULT.raise_for_min_count
    raise_for_min_percent: float = _DEFAULT.raise_for_min_percent
    # critical occurrences: at least this many, of which actionable less than this %
    demote_min_count: int = _DEFAULT.demote_min_count
    demote_max_actionable_percent: float = _DEFAULT.demote_max_actionable_percent
    # never actionable over at least this many occurrences
    delete_min_count: int = _DEFAULT.delete_min_count

    @classmethod
    def of(cls, policy: AlertsPolicy) -> Thresholds:
        return cls(
            raise_for_min_count=policy.raise_for_min_count,
            raise_for_min_percent=policy.raise_for_min_percent,
            demote_min_count=policy.demote_min_count,
            demote_max_actionable_percent=policy.demote_max_actionable_percent,
            delete_min_count=policy.delete_min_count,
        )

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
    windows: dict[str, Any]  # flap_minutes, quick_resolve_minutes, storm_count, storm_minutes
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
            "settings": {**self.windows, **self.thresholds.as_json()},
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
