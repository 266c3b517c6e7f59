"""Periods: half-open UTC intervals [start, end) named as in spec/kpis.md."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from opsledger.errors import PeriodError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_YEAR = re.compile(r"^(\d{4})$")


def _midnight(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    idx = year * 12 + (month - 1) + n
    return idx // 12, idx % 12 + 1


def _minus_year(d: date) -> date:
    try:
        return d.replace(year=d.year - 1)
    except ValueError:  # 29 February
        return d.replace(year=d.year - 1, day=28)


@dataclass(frozen=True)
class Period:
    """A named, half-open UTC interval. `kind` is month, quarter, week, year or range."""

    label: str
    start: datetime
    end: datetime
    kind: str

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / 86_400

    def contains(self, t: datetime) -> bool:
        return self.start <= t < self.end

    def previous(self) -> Period:
        """The period of the same kind just before this one (a range: same length before)."""
        s = self.start.date()
        if self.kind == "month":
            y, m = _add_months(s.year, s.month, -1)
            return month(y, m)
        if self.kind == "quarter":
            y, m = _add_months(s.year, s.month, -3)
            return quarter(y, (m - 1) // 3 + 1)
        if self.kind == "week":
            return week_of(s - timedelta(days=7))
        if self.kind == "year":
            return year(s.year - 1)
        return self.same_length_before()

    def same_length_before(self) -> Period:
        """[start - length, start): the previous period of the same length."""
        length = self.end - self.start
        s = self.start - length
        return Period(f"{s.date()}..{self.start.date()}", s, self.start, "range")

    def year_earlier(self) -> Period:
        """The same period a year earlier (ISO week: same week number; 53 becomes 52)."""
        s = self.start.date()
        if self.kind == "month":
            return month(s.year - 1, s.month)
        if self.kind == "quarter":
            return quarter(s.year - 1, (s.month - 1) // 3 + 1)
        if self.kind == "year":
            return year(s.year - 1)
        if self.kind == "week":
            iso = s.isocalendar()
            try:
                return week(iso.year - 1, iso.week)
            except PeriodError:
                return week(iso.year - 1, 52)
        return date_range(_minus_year(s), _minus_year(self.end.date()))


def month(y: int, m: int) -> Period:
    if not 1 <= m <= 12:
        raise PeriodError(f"month {m} is not 01-12")
    ny, nm = _add_months(y, m, 1)
    return Period(f"{y:04d}-{m:02d}", _midnight(date(y, m, 1)), _midnight(date(ny, nm, 1)), "month")


def quarter(y: int, q: int) -> Period:
    ny, nm = _add_months(y, (q - 1) * 3 + 1, 3)
    return Period(
        f"{y:04d}-Q{q}",
        _midnight(date(y, (q - 1) * 3 + 1, 1)),
        _midnight(date(ny, nm, 1)),
        "quarter",
    )


def week(y: int, w: int) -> Period:
    try:
        monday = date.fromisocalendar(y, w, 1)
    except ValueError:
        raise PeriodError(f"{y}-W{w:02d}: ISO year {y} has no week {w}") from None
    return Period(
        f"{y:04d}-W{w:02d}", _midnight(monday), _midnight(monday + timedelta(days=7)), "week"
    )


def week_of(d: date) -> Period:
    iso = d.isocalendar()
    return week(iso.year, iso.week)


def year(y: int) -> Period:
    return Period(f"{y:04d}", _midnight(date(y, 1, 1)), _midnight(date(y + 1, 1, 1)), "year")


def date_range(start: date, end: date) -> Period:
    if end <= start:
        raise PeriodError(f"--to {end} must be after --from {start} (--to is exclusive)")
    return Period(
        f"{start.isoformat()}..{end.isoformat()}", _midnight(start), _midnight(end), "range"
    )


def parse_period(text: str) -> Period:
    """`2026-10`, `2026-Q4`, `2026-W40` or `2026`."""
    try:
        return _parse_period(text)
    except PeriodError:
        raise
    except (ValueError, OverflowError):
        raise PeriodError(f"period {text!r} is outside the supported years 1-9998") from None


def _parse_period(text: str) -> Period:
    t = text.strip()
    if m := _MONTH.match(t):
        return month(int(m[1]), int(m[2]))
    if m := _QUARTER.match(t):
        return quarter(int(m[1]), int(m[2]))
    if m := _WEEK.match(t):
        return week(int(m[1]), int(m[2]))
    if m := _YEAR.match(t):
        return year(int(m[1]))
    raise PeriodError(
        f"period {text!r} is not one of YYYY-MM, YYYY-Qn, YYYY-Wnn or YYYY (or use --from/--to)"
    )


def parse_date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def last_full_month(now: datetime) -> Period:
    y, m = _add_months(now.year, now.month, -1)
    return month(y, m)


def resolve(period: str | None, start: str | None, end: str | None, now: datetime) -> Period:
    """The period chosen on a command line; by default the last full month."""
    if period and (start or end):
        raise PeriodError("give either --period or --from/--to, not both")
    if start or end:
        if not (start and end):
            raise PeriodError("--from and --to go together")
        return date_range(parse_date(start, "--from"), parse_date(end, "--to"))
    if period:
        return parse_period(period)
    return last_full_month(now)


def months_overlapping(p: Period) -> list[str]:
    """The `YYYY-MM` months that overlap the period."""
    out = []
    y, m = p.start.year, p.start.month
    while _midnight(date(y, m, 1)) < p.end:
        out.append(f"{y:04d}-{m:02d}")
        y, m = _add_months(y, m, 1)
    return out
