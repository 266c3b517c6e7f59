"""The KPI model: what a KPI is, the context it is computed in, and what it returns."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from sqlalchemy import ColumnElement, Connection, Select, String, cast, false, func, select

from opsledger.core.periods import Period
from opsledger.core.sql import epoch_us
from opsledger.core.types import to_epoch_us
from opsledger.kpis.policy import Policy, Target
from opsledger.records.tables import RECORD_TABLES

_T = TypeVar("_T")

US_PER_MIN = 60_000_000
US_PER_HOUR = 3_600_000_000
US_PER_DAY = 86_400_000_000


@dataclass(frozen=True)
class Scope:
    team: str | None = None
    service: str | None = None

    @property
    def narrowed(self) -> bool:
        return self.team is not None or self.service is not None

    def as_json(self) -> dict[str, str | None]:
        return {"team": self.team, "service": self.service}


@dataclass(frozen=True)
class Evidence:
    """How one record counted: role is numerator, denominator or value."""

    kind: str
    id: str
    role: str
    contribution: float | None = None
    note: str = ""


@dataclass
class Outcome:
    value: float | None
    count: int
    extras: dict[str, Any] = field(default_factory=dict)
    evidence: list[Evidence] | None = None
    error: str | None = None


@dataclass
class Ctx:
    conn: Connection
    period: Period
    scope: Scope
    policy: Policy
    explain: bool = False
    # shared by the KPIs of one scorecard (see `shared`)
    memo: dict[tuple[Any, ...], Any] = field(default_factory=dict)

    def shared(self, key: tuple[Any, ...], compute: Callable[[], _T]) -> _T:
        """`compute()` once for KPIs that read the same totals in one scorecard (toil and
        automation read the same task runs, the two vulnerability KPIs the same findings).
        The period's bounds and the scope are part of the key; `key` must name whatever
        else the result depends on (policy values)."""
        full = (*key, self.period.start, self.period.end, self.scope, self.explain)
        if full not in self.memo:
            self.memo[full] = compute()
        result: _T = self.memo[full]
        return result

    @property
    def start_us(self) -> int:
        return to_epoch_us(self.period.start)

    @property
    def end_us(self) -> int:
        return to_epoch_us(self.period.end)

    def ts(self, column: ColumnElement[Any]) -> ColumnElement[int]:
        return epoch_us(self.conn, column)

    def services_in_scope(self) -> Select[Any]:
        services = RECORD_TABLES["service"]
        q = select(services.c.id)
        if self.scope.service is not None:
            q = q.where(services.c.id == self.scope.service)
        if self.scope.team is not None:
            q = q.where(services.c.team == self.scope.team)
        return q

    def by_service(self, column: ColumnElement[Any]) -> ColumnElement[bool] | None:
        """Filter for a record's `service` column (None when the scope is not narrowed)."""
        if not self.scope.narrowed:
            return None
        return column.in_(self.services_in_scope())

    def by_team_field(self, column: ColumnElement[Any]) -> ColumnElement[bool] | None:
        """Filter for kinds with a `team` but no `service` (outside any --service scope)."""
        if not self.scope.narrowed:
            return None
        if self.scope.service is not None:
            return false()
        return column == self.scope.team

    def through(
        self, column: ColumnElement[Any], kind: str, service_column: str = "service"
    ) -> ColumnElement[bool] | None:
        """Filter for a reference column (asset, job, incident) that takes the service of the
        referenced record."""
        if not self.scope.narrowed:
            return None
        ref = RECORD_TABLES[kind]
        return column.in_(
            select(ref.c.id).where(ref.c[service_column].in_(self.services_in_scope()))
        )


def where(q: Select[Any], *conds: ColumnElement[bool] | None) -> Select[Any]:
    for c in conds:
        if c is not None:
            q = q.where(c)
    return q


def int_rows(conn: Connection, cols: Sequence[ColumnElement[int]],
             *conds: ColumnElement[bool] | None) -> np.ndarray[Any, Any]:
    """The integer columns `cols` (never NULL) of the rows matching `conds`, as an int64 array
    of shape (rows, len(cols)), in no particular row order. The database returns them as one
    aggregated string ("a:b,a:b,..."), so that no Python object is made per row."""
    packed: ColumnElement[str] = cast(cols[0], String)
    for col in cols[1:]:
        packed = packed + ":" + cast(col, String)
    text = conn.execute(where(select(func.aggregate_strings(packed, ",")), *conds)).scalar()
    if not text:
        return np.empty((0, len(cols)), dtype=np.int64)
    return np.array(text.replace(":", ",").split(","), dtype=np.int64).reshape(-1, len(cols))


@dataclass(frozen=True)
class Kpi:
    id: str
    title: str
    unit: str
    direction: str  # lower | higher | report
    target: Target
    compute: Callable[[Ctx], Outcome]
    records: str  # which records count, in words
    formula: str  # the formula, in words


def pct(num: int, den: int) -> float | None:
    return None if den == 0 else 100.0 * num / den


def median(values: Sequence[float] | np.ndarray[Any, Any]) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    return None if arr.size == 0 else float(np.median(arr))


def mean(values: Sequence[float] | np.ndarray[Any, Any]) -> float | None:
    arr = np.asarray(values, dtype=np.float64)
    return None if arr.size == 0 else math.fsum(arr.tolist()) / arr.size


def status(value: float | None, target: Target, baseline: float | None = None) -> str:
    """met, missed, no_data or report (report-only KPIs with a value)."""
    if value is None:
        return "no_data"
    op, t = target.op, target.value
    if op == "report":
        return "report"
    if op == "+points":
        if baseline is None or t is None:
            return "no_data"
        return "met" if value >= baseline + t else "missed"
    if op == "lower_than_previous":
        if baseline is None:
            return "no_data"
        return "met" if value < baseline else "missed"
    assert t is not None
    checks: dict[str, Callable[[float], bool]] = {
        "<": lambda v: v < t,
        "<=": lambda v: v <= t,
        ">": lambda v: v > t,
        ">=": lambda v: v >= t,
        "==": lambda v: v == t,
        "abs<": lambda v: abs(v) < t,
        "abs<=": lambda v: abs(v) <= t,
    }
    return "met" if checks[op](value) else "missed"
