"""Alert-noise analysis over the API: the same report as `opsledger alerts noise --format json`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from opsledger.access import TokenInfo
from opsledger.alerts.noise import analyse
from opsledger.api.deps import engine_of, require
from opsledger.api.problems import Problem
from opsledger.core.periods import resolve
from opsledger.errors import PeriodError
from opsledger.kpis.model import Ctx, Scope
from opsledger.kpis.policy import Policy

router = APIRouter(prefix="/api/v1")
Reader = Annotated[TokenInfo, Depends(require("read"))]


@router.get("/alerts/noise", tags=["kpis"], summary="Alert-noise analysis per alert rule")
def alert_noise(
    request: Request,
    _: Reader,
    period: str | None = None,
    start: Annotated[str | None, Query(alias="from", description="Start date (inclusive).")] = None,
    end: Annotated[str | None, Query(alias="to", description="End date (exclusive).")] = None,
    team: str | None = None,
    service: str | None = None,
) -> dict[str, Any]:
    """Per alert rule: occurrences, actionable share, flapping, median duration, quick
    auto-resolves, storms, runbook gaps; then ranked recommendations with the noise ratio
    before and after each. `period` (2026-10, 2026-Q4, 2026-W40, 2026) or `from`/`to` dates;
    default: the last full month."""
    try:
        p = resolve(period, start, end, datetime.now(UTC))
    except PeriodError as exc:
        raise Problem(422, str(exc)) from None
    policy: Policy = request.app.state.policy
    with engine_of(request).connect() as conn:
        return analyse(Ctx(conn, p, Scope(team, service), policy)).as_json()
