"""The KPI engine: evaluates registered KPIs for a period and scope, with targets and trends."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select

from opsledger.core.periods import Period
from opsledger.kpis.model import Ctx, Kpi, Outcome, Scope, status
from opsledger.kpis.policy import Policy, resolve_target
from opsledger.kpis.registry import KPIS
from opsledger.records.tables import RECORD_TABLES


@dataclass
class Figure:
    kpi: Kpi
    period: Period
    outcome: Outcome
    target: Any
    status: str
    baseline: dict[str, Any] | None = None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.kpi.id,
            "title": self.kpi.title,
            "value": self.outcome.value,
            "unit": self.kpi.unit,
            "target": self.target.as_json(),
            "status": self.status,
            "count": self.outcome.count,
        }
        if self.outcome.error:
            out["error"] = self.outcome.error
        if self.baseline is not None:
            out["baseline"] = self.baseline
        out.update(self.outcome.extras)
        return out


def evaluate(
    conn: Connection,
    kpi: Kpi,
    period: Period,
    scope: Scope,
    policy: Policy,
    explain: bool = False,
    memo: dict[tuple[Any, ...], Any] | None = None,
) -> Figure:
    """One KPI for a period and scope, with its target, baseline and status. KPIs evaluated
    with the same `memo` (one scorecard) share totals that they both read."""
    with without_cyclic_gc():
        return _evaluate(conn, kpi, period, scope, policy, explain, {} if memo is None else memo)


@contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """KPIs make many short-lived, acyclic objects (rows, tuples); each time enough of them
    pile up, the cyclic collector would walk every object of the process. Reference counting
    frees them all the same. Nested uses are fine; the previous state is restored."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _evaluate(conn: Connection, kpi: Kpi, period: Period, scope: Scope, policy: Policy,
              explain: bool, memo: dict[tuple[Any, ...], Any]) -> Figure:
    ctx = Ctx(conn, period, scope, policy, explain, memo)
    outcome = kpi.compute(ctx)
    target = resolve_target(policy, kpi.id, kpi.target, _target_team(conn, scope), scope.service)
    baseline: dict[str, Any] | None = None
    base_value: float | None = None
    if target.op in ("+points", "lower_than_previous"):
        bp = period.year_earlier() if target.op == "+points" else period.same_length_before()
        base_value = kpi.compute(Ctx(conn, bp, scope, policy, memo=memo)).value
        baseline = {"period": bp.label, "value": base_value}
    st = "error" if outcome.error else status(outcome.value, target, base_value)
    if kpi.id == "backup_success_rate" and "silent_failures" in outcome.extras:
        outcome.extras["silent_failures_status"] = (
            "no_data" if outcome.count == 0 else
            "met" if outcome.extras["silent_failures"] == 0 else "missed"
        )
    return Figure(kpi, period, outcome, target, st, baseline)


def _target_team(conn: Connection, scope: Scope) -> str | None:
    """The team whose policy targets apply: --team, else the team of --service."""
    if scope.team is not None or scope.service is None:
        return scope.team
    services = RECORD_TABLES["service"]
    team: str | None = conn.execute(
        select(services.c.team).where(services.c.id == scope.service)
    ).scalar()
    return team


def period_json(p: Period) -> dict[str, str]:
    return {"label": p.label, "start": p.start.isoformat().replace("+00:00", "Z"),
            "end": p.end.isoformat().replace("+00:00", "Z")}


def scorecard(
    conn: Connection,
    period: Period,
    scope: Scope,
    policy: Policy,
    trend: int = 0,
    kpis: tuple[Kpi, ...] = KPIS,
) -> dict[str, Any]:
    """The scorecard as a JSON-ready dict (values exact, not rounded)."""
    previous: list[Period] = []
    p = period
    for _ in range(trend):
        p = p.previous()
        previous.append(p)
    rows = []
    memo: dict[tuple[Any, ...], Any] = {}
    with without_cyclic_gc():
        for kpi in kpis:
            rows.append(_scorecard_item(conn, kpi, period, previous, scope, policy, memo))
    return {"period": period_json(period), "scope": scope.as_json(), "kpis": rows}


def _scorecard_item(conn: Connection, kpi: Kpi, period: Period, previous: list[Period],
                    scope: Scope, policy: Policy, memo: dict[tuple[Any, ...], Any]
                    ) -> dict[str, Any]:
    item = evaluate(conn, kpi, period, scope, policy, memo=memo).as_json()
    if previous:
        item["trend"] = [
            {"period": pp.label, "value": f.outcome.value, "status": f.status,
             "count": f.outcome.count}
            for pp in previous
            for f in [evaluate(conn, kpi, pp, scope, policy, memo=memo)]
        ]
    return item
