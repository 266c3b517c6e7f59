"""The policy file (`opsledger.toml`): KPI targets globally and per team or service, the
vulnerability SLA days per severity and the backup tick window. Validated on load."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from opsledger.errors import PolicyError

Op = Literal[
    "<", "<=", ">", ">=", "==", "abs<", "abs<=", "+points", "lower_than_previous", "report"
]
DEFAULT_SLA_DAYS = {"critical": 14, "high": 30, "medium": 90, "low": 180}


@dataclass(frozen=True)
class Target:
    op: Op
    value: float | None = None

    def text(self) -> str:
        v = "" if self.value is None else f"{self.value:g}"
        if self.op == "+points":
            return f"+{v} pts vs a year earlier"
        if self.op == "lower_than_previous":
            return "lower than the previous period"
        if self.op == "report":
            return "report only"
        if self.op.startswith("abs"):
            return f"|x| {self.op[3:]} {v}"
        return f"{self.op} {v}"

    def as_json(self) -> dict[str, object]:
        return {"op": self.op, "value": self.value, "text": self.text()}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TargetSpec(_Strict):
    op: Op
    value: float | None = None


TargetValue = float | int | TargetSpec


class Scoped(_Strict):
    targets: dict[str, TargetValue] = Field(default_factory=dict)


class SlaDays(_Strict):
    critical: int = Field(DEFAULT_SLA_DAYS["critical"], gt=0)
    high: int = Field(DEFAULT_SLA_DAYS["high"], gt=0)
    medium: int = Field(DEFAULT_SLA_DAYS["medium"], gt=0)
    low: int = Field(DEFAULT_SLA_DAYS["low"], gt=0)


class Backups(_Strict):
    tick_window_minutes: int = Field(60, gt=0, le=1440)


class AlertsPolicy(_Strict):
    """Alert-noise analysis settings: the windows of the figures, and when a recommendation
    is made (docs/commands/alerts.md)."""

    flap_minutes: int = Field(10, gt=0, le=1440)  # re-fired within N minutes of resolving
    quick_resolve_minutes: int = Field(5, gt=0, le=1440)  # auto-resolved faster, unacked
    storm_count: int = Field(50, gt=1)  # this many occurrences of one rule ...
    storm_minutes: int = Field(10, gt=0, le=1440)  # ... within this many minutes = a storm
    # raise for: at least this many quick unacknowledged occurrences, and this % of the rule's
    raise_for_min_count: int = Field(3, ge=1)
    raise_for_min_percent: float = Field(30.0, gt=0, le=100)
    # demote to a ticket: at least this many critical occurrences, actionable less than this %
    demote_min_count: int = Field(5, ge=1)
    demote_max_actionable_percent: float = Field(50.0, gt=0, le=100)
    # delete: never actionable over at least this many occurrences
    delete_min_count: int = Field(10, ge=1)


class AutoOpenRule(_Strict):
    """Open an incident automatically from an alert that matches every given condition."""

    name: str
    alert_severity: list[Literal["critical", "warning", "info"]] | None = None
    service_tier: list[Literal["critical", "high", "standard"]] | None = None
    alert_names: list[str] | None = None
    incident_severity: int = Field(2, ge=1, le=3)
    # close the incidents this rule opened once every linked alert is resolved
    resolve_with_alerts: bool = False
    resolve_acknowledged: bool = False  # ... also when a person acknowledged or mitigated it
    resolve_reopened: bool = False  # ... also when it was resolved before and reopened

    @model_validator(mode="after")
    def _resolve_options_need_resolve(self) -> AutoOpenRule:
        for key in ("resolve_acknowledged", "resolve_reopened"):
            if getattr(self, key) and not self.resolve_with_alerts:
                raise ValueError(f"{key} = true needs resolve_with_alerts = true")
        return self


class IncidentsPolicy(_Strict):
    auto_open: list[AutoOpenRule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_rule_names(self) -> IncidentsPolicy:
        names = [r.name for r in self.auto_open]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:  # an auto-opened incident names its rule; the name must say which
            raise ValueError(f"rule names must be unique: {', '.join(twice)} used twice")
        if any(not n.strip() for n in names):
            raise ValueError("a rule needs a non-empty name")
        return self


class Policy(_Strict):
    """The whole policy. `Policy()` is the default (blueprint targets)."""

    targets: dict[str, TargetValue] = Field(default_factory=dict)
    teams: dict[str, Scoped] = Field(default_factory=dict)
    services: dict[str, Scoped] = Field(default_factory=dict)
    vulnerability_sla_days: SlaDays = Field(default_factory=SlaDays)
    backups: Backups = Field(default_factory=Backups)
    alerts: AlertsPolicy = Field(default_factory=AlertsPolicy)
    incidents: IncidentsPolicy = Field(default_factory=IncidentsPolicy)

    def sla_days(self) -> dict[str, int]:
        return self.vulnerability_sla_days.model_dump()


def _check_ids(policy: Policy, known: Mapping[str, Target] | set[str], path: str) -> None:
    tables = [("targets", policy.targets)]
    tables += [(f"teams.{t}.targets", s.targets) for t, s in policy.teams.items()]
    tables += [(f"services.{s}.targets", v.targets) for s, v in policy.services.items()]
    for where, targets in tables:
        for kpi_id in targets:
            if kpi_id not in known:
                raise PolicyError(
                    f"{path}: [{where}] names unknown KPI '{kpi_id}' "
                    f"(known: {', '.join(sorted(known))})"
                )
            if isinstance(known, Mapping):  # check the override now, not at first use
                try:
                    _to_target(targets[kpi_id], kpi_id, known[kpi_id])
                except PolicyError as exc:
                    raise PolicyError(f"{path}: [{where}] {exc}") from None


def load_policy(path: Path | None, known_kpis: Mapping[str, Target] | set[str]) -> Policy:
    """Load and validate a policy file; None (and no OPSLEDGER_POLICY) gives the defaults."""
    if path is None:
        env = os.environ.get("OPSLEDGER_POLICY")
        path = Path(env) if env else None
    if path is None:
        return Policy()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    try:
        policy = Policy.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in err["loc"])
        raise PolicyError(f"{path}: [{where}] {err['msg']}") from None
    _check_ids(policy, known_kpis, str(path))
    return policy


def resolve_target(
    policy: Policy, kpi_id: str, default: Target, team: str | None, service: str | None
) -> Target:
    """Service override, else team override, else global, else the default."""
    chosen: TargetValue | None = None
    if service and service in policy.services:
        chosen = policy.services[service].targets.get(kpi_id)
    if chosen is None and team and team in policy.teams:
        chosen = policy.teams[team].targets.get(kpi_id)
    if chosen is None:
        chosen = policy.targets.get(kpi_id)
    if chosen is None:
        return default
    return _to_target(chosen, kpi_id, default)


def _to_target(chosen: TargetValue, kpi_id: str, default: Target) -> Target:
    if isinstance(chosen, TargetSpec):
        if chosen.value is None and chosen.op not in ("lower_than_previous", "report"):
            raise PolicyError(f"target of {kpi_id}: op {chosen.op!r} needs a value")
        return Target(chosen.op, chosen.value)
    if default.op in ("lower_than_previous", "report"):
        raise PolicyError(
            f"target of {kpi_id}: a bare number cannot replace '{default.text()}'; "
            'write {op = "<", value = N}'
        )
    return Target(default.op, float(chosen))
