"""What every part of the demo generator shares: types, constants, the clock, random streams."""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

Record = dict[str, object]
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

MINUTE: Final = 60
HOUR: Final = 3_600
DAY: Final = 86_400

ALERTS_PER_YEAR: Final = 105_000  # at scale 1; aimed a little high so scale 10 > 1e6
SERVICES: Final = 120
TEAMS: Final = 8

REFERENCE_KINDS: Final = ("team", "service", "asset", "backup_job", "runbook")

_EPOCH_ORDINAL: Final = dt.date(1970, 1, 1).toordinal()



# --------------------------------------------------------------------------- helpers


def default_end(today: dt.date | None = None) -> dt.date:
    """The first day of the current UTC month (or of ``today``'s month)."""
    if today is None:
        today = dt.datetime.now(dt.UTC).date()
    return today.replace(day=1)


def window(end: dt.date) -> tuple[dt.date, dt.date]:
    """The twelve months ``[start, end)`` that the events of a run fall in."""
    start_year = end.year - 1
    last_day = (dt.date(start_year + (end.month == 12), end.month % 12 + 1, 1)
                - dt.timedelta(days=1)).day
    return end.replace(year=start_year, day=min(end.day, last_day)), end


def _epoch(day: dt.date) -> int:
    return (day.toordinal() - _EPOCH_ORDINAL) * DAY


@functools.cache
def _time_of_day() -> tuple[str, ...]:
    return tuple(
        f"T{h:02d}:{m:02d}:{s:02d}Z" for h in range(24) for m in range(60) for s in range(60)
    )


class _Clock:
    """Epoch seconds (UTC) to RFC 3339 / date strings, with a per-day cache."""

    def __init__(self, start: dt.date, end: dt.date) -> None:
        self.start = start
        self.end = end
        self.t0 = _epoch(start)
        self.t_end = _epoch(end)
        self.n_days = (end - start).days
        self._tod = _time_of_day()
        self._days: dict[int, str] = {}

    def day_str(self, day_number: int) -> str:
        text = self._days.get(day_number)
        if text is None:
            text = dt.date.fromordinal(_EPOCH_ORDINAL + day_number).isoformat()
            self._days[day_number] = text
        return text

    def iso(self, t: int) -> str:
        d, s = divmod(t, DAY)
        return self.day_str(d) + self._tod[s]

    def date(self, t: int) -> str:
        return self.day_str(t // DAY)

    def day_start(self, d: int) -> int:
        return self.t0 + d * DAY

    def weekday(self, d: int) -> int:
        """Monday 0 .. Sunday 6 of window day ``d``."""
        return (self.start.weekday() + d) % 7

    def calendar(self, d: int) -> dt.date:
        return self.start + dt.timedelta(days=d)

    def day_of(self, t: int) -> int:
        return (t - self.t0) // DAY


class _Picker:
    """Weighted choice by inverse CDF (much cheaper than ``rng.choice(p=...)``)."""

    def __init__(self, weights: Sequence[float]) -> None:
        total = float(sum(weights))
        acc = 0.0
        self.cum: list[float] = []
        for w in weights:
            acc += w / total
            self.cum.append(acc)
        self.cum[-1] = 1.0

    def __call__(self, rng: np.random.Generator) -> int:
        return bisect.bisect_right(self.cum, rng.random())


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([seed % 2**63, stream])


def _lognormal(rng: np.random.Generator, median: float, sigma: float) -> float:
    return float(median * math.exp(sigma * rng.standard_normal()))


def _busday(day: dt.date, offset: int) -> dt.date:
    out: np.datetime64 = np.busday_offset(np.datetime64(day, "D"), offset, roll="forward")
    return dt.date.fromisoformat(str(out))


