"""Deterministic demo data: twelve months of a mid-size organisation's operations.

``generate(seed, scale, end)`` streams native records (see ``records.md``) as JSON-ready
dicts: reference kinds first (teams, services, assets, backup jobs, runbooks), then the
events of the twelve months ``[end - 12 months, end)`` day by day. Nothing but the seed,
the scale and ``end`` influences the output; the clock is read only for the default
``end`` (the first day of the current UTC month).

Volumes at scale 1 (~155,000 records): 8 teams, 120 services, ~620 assets, ~100,000
alerts, ~27,000 backup runs, ~10,000 task runs, ~8,000 vulnerability findings, ~3,300
changes, ~260 incidents. Everything but the teams grows linearly with ``scale`` (teams
with its square root). Alerts are drawn with numpy one day at a time and every record is
yielded as soon as it is made, so memory stays small (~70 MB resident at scale 10).

The parameters are tuned so that, for the last full month, some KPIs of ``kpis.md`` meet
their default targets and some miss: alert noise (~40 % non-actionable) and critical
patch compliance miss, backup success lands just below 99 % with a few silent failures,
change failure rate sits around 5 %, documentation freshness near 80 %, and restore tests,
Sev-1 MTTR, recurrence and satisfaction meet or miss by chance.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator

from opsledger.demo.common import _Clock, default_end, window
from opsledger.demo.org import _build_org, _reference_records
from opsledger.demo.year import _Year

# --------------------------------------------------------------------------- entry point


def generate(seed: int = 42, scale: float = 1.0,
             end: dt.date | None = None) -> Iterator[dict[str, object]]:
    """Stream the demo organisation's records: references first, then 12 months of events.

    ``end`` (exclusive) defaults to the first day of the current UTC month; the events
    fall in ``[end - 12 months, end)``. Same seed, scale and end give identical output.
    """
    if not scale > 0 or not math.isfinite(scale):
        raise ValueError(f"scale must be a positive number, not {scale!r}")
    if isinstance(end, dt.datetime):
        end = end.date()
    if end is None:
        end = default_end()
    start, end = window(end)
    clock = _Clock(start, end)
    org = _build_org(seed, scale, clock)
    yield from _reference_records(org, clock, seed)
    yield from _Year(org, clock, seed, scale).events()
