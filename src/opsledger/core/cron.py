"""Vixie cron schedules: parsing and fast, vectorised tick enumeration.

A backup job's ``schedule`` is a standard 5-field Vixie cron expression evaluated in UTC::

    minute  hour  day-of-month  month  day-of-week
    0-59    0-23  1-31          1-12   0-7 (0 and 7 are Sunday)

Each field is a comma-separated list of items; an item is ``*``, ``*/n``, a value, a range
``a-b`` or a stepped range ``a-b/n``. Values are numbers, or in the month and day-of-week
fields the English three-letter names (``jan``..``dec``, ``sun``..``sat``, any case). As in
Vixie cron, ``*`` and ``*/n`` may also appear as list items. Anything else is a `CronError`:
``L``, ``W``, ``#``, ``?``, ``H``, ``@daily`` and other macros, a start with a step but no
range (``5/10``), out-of-range values, a range whose start is after its end, a step of 0,
empty list items, and any number of fields other than 5.

Day-of-month and day-of-week combine as in Vixie cron: when both are restricted, that is
neither field *starts with* ``*``, a day matches if EITHER field matches; otherwise (one or
both start with ``*``, including ``*/2``) a day matches when both match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

import numpy as np
import numpy.typing as npt

__all__ = ["CronError", "CronSpec", "parse", "ticks", "ticks_between"]

MINUTE_US = 60_000_000
DAY_US = 86_400 * 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ONE_US = timedelta(microseconds=1)
# 1970-01-01 was a Thursday; weekday numbers run 0=Sunday..6=Saturday.
_EPOCH_WEEKDAY = 4


class CronError(ValueError):
    """An invalid cron expression; the message names the field and the reason."""


@dataclass(frozen=True)
class CronSpec:
    """A parsed cron expression: the matching values of each field.

    ``weekdays`` uses 0=Sunday..6=Saturday (a 7 in the expression is folded into 0).
    ``dom_star`` / ``dow_star`` record whether the day-of-month / day-of-week field text
    starts with ``*``, which selects AND (either starts with ``*``) or OR (neither does).
    """

    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool


@dataclass(frozen=True)
class _Field:
    name: str
    lo: int
    hi: int
    names: dict[str, int]


_MONTH_NAMES = {
    name: i + 1
    for i, name in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_WEEKDAY_NAMES = {
    name: i for i, name in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])
}

_MINUTE = _Field("minute", 0, 59, {})
_HOUR = _Field("hour", 0, 23, {})
_DOM = _Field("day-of-month", 1, 31, {})
_MONTH = _Field("month", 1, 12, _MONTH_NAMES)
_DOW = _Field("day-of-week", 0, 7, _WEEKDAY_NAMES)
_FIELDS = (_MINUTE, _HOUR, _DOM, _MONTH, _DOW)

_ATOM = r"[0-9]+|[a-z]+"
_ITEM_RE = re.compile(
    rf"(?:(?P<star>\*)|(?P<a>{_ATOM})(?:-(?P<b>{_ATOM}))?)(?:/(?P<step>[0-9]+))?",
    re.ASCII,
)
# Non-standard extensions (Quartz, cronie, Jenkins), recognised only to explain the error.
_EXTENSION_RE = re.compile(r"[#?]|^(?:[0-9]*l|l-[0-9]+|[0-9]*w|lw|h(?:\(.*\))?(?:/[0-9]+)?)$")


def _field_error(field: _Field, text: str, why: str) -> CronError:
    return CronError(f"{field.name} field '{text}': {why}")


def _value(field: _Field, text: str, atom: str) -> int:
    if atom.isdigit():
        value = int(atom)
    elif atom in field.names:
        value = field.names[atom]
    elif _EXTENSION_RE.search(atom):
        raise _field_error(field, text, f"non-standard syntax '{atom}' is not supported")
    elif not field.names:
        raise _field_error(field, text, f"names such as '{atom}' are not allowed in this field")
    else:
        raise _field_error(field, text, f"unknown name '{atom}'")
    if not field.lo <= value <= field.hi:
        raise _field_error(field, text, f"value {value} out of range {field.lo}-{field.hi}")
    return value


def _parse_item(field: _Field, text: str, item: str) -> range:
    if not item:
        raise _field_error(field, text, "empty list item")
    m = _ITEM_RE.fullmatch(item)
    if m is None:
        if _EXTENSION_RE.search(item):
            raise _field_error(field, text, f"non-standard syntax '{item}' is not supported")
        raise _field_error(
            field,
            text,
            f"invalid item '{item}' (expected *, */n, a value, a range a-b or a-b/n)",
        )
    step_text = m.group("step")
    step = 1 if step_text is None else int(step_text)
    if step == 0:
        raise _field_error(field, text, f"step of 0 in '{item}'")
    if m.group("star"):
        return range(field.lo, field.hi + 1, step)
    start = _value(field, text, m.group("a"))
    end_atom = m.group("b")
    if end_atom is None:
        if step_text is not None:
            raise _field_error(
                field, text, f"a step needs '*' or a range a-b before it, not '{item}'"
            )
        return range(start, start + 1)
    end = _value(field, text, end_atom)
    if start > end:
        raise _field_error(field, text, f"range start {start} is after its end {end}")
    return range(start, end + 1, step)


def _parse_field(field: _Field, text: str) -> frozenset[int]:
    values: set[int] = set()
    for item in text.lower().split(","):
        values.update(_parse_item(field, text, item))
    if field is _DOW:
        return frozenset(v % 7 for v in values)
    return frozenset(values)


@lru_cache(maxsize=4096)
def parse(expr: str) -> CronSpec:
    """Parse a 5-field Vixie cron expression (UTC); raise `CronError` if it is not one.

    Results are cached (a `CronSpec` is immutable): the backup KPI parses every job's
    schedule on each evaluation, and organisations reuse a few schedules."""
    parts = expr.split()
    if len(parts) != len(_FIELDS):
        if expr.strip().startswith("@"):
            raise CronError(
                f"cron expression '{expr}': macros such as @daily are not supported;"
                " expected 5 fields (minute hour day-of-month month day-of-week)"
            )
        raise CronError(
            f"cron expression '{expr}': expected 5 fields"
            f" (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    minutes, hours, days, months, weekdays = (
        _parse_field(field, text) for field, text in zip(_FIELDS, parts, strict=True)
    )
    return CronSpec(
        expr=expr,
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=weekdays,
        dom_star=parts[2].startswith("*"),
        dow_star=parts[4].startswith("*"),
    )


def _table(values: frozenset[int], size: int, modulo: int | None = None) -> npt.NDArray[np.bool_]:
    table = np.zeros(size, dtype=np.bool_)
    idx = [v % modulo for v in values] if modulo is not None else list(values)
    if idx:
        table[idx] = True
    return table


@lru_cache(maxsize=1024)
def _day_offsets_us(minutes: frozenset[int], hours: frozenset[int]) -> npt.NDArray[np.int64]:
    """Sorted offsets, in microseconds from midnight, of the matching minutes of a day."""
    h = np.array(sorted(hours), dtype=np.int64) * 60
    m = np.array(sorted(minutes), dtype=np.int64)
    offsets = np.add.outer(h, m).ravel() * MINUTE_US
    offsets.setflags(write=False)
    return offsets


@lru_cache(maxsize=1024)
def _matching_days(
    days: frozenset[int],
    months: frozenset[int],
    weekdays: frozenset[int],
    or_rule: bool,
    first_day: int,
    n_days: int,
) -> npt.NDArray[np.int64]:
    """Day numbers (days since the epoch) in ``[first_day, first_day + n_days)`` that match."""
    day_no = np.arange(first_day, first_day + n_days, dtype=np.int64)
    as_date = day_no.astype("datetime64[D]")
    month_start = as_date.astype("datetime64[M]")
    dom = (as_date - month_start.astype("datetime64[D]")).astype(np.int64) + 1
    month = month_start.astype(np.int64) % 12 + 1
    weekday = (day_no + _EPOCH_WEEKDAY) % 7

    dom_ok = _table(days, 32)[dom]
    dow_ok = _table(weekdays, 7, modulo=7)[weekday]
    day_ok = (dom_ok | dow_ok) if or_rule else (dom_ok & dow_ok)
    matched: npt.NDArray[np.int64] = day_no[day_ok & _table(months, 13)[month]]
    matched.setflags(write=False)
    return matched


def ticks(spec: CronSpec, start_us: int, end_us: int) -> npt.NDArray[np.int64]:
    """Epoch microseconds (UTC) of every matching minute ``t`` with ``start_us <= t < end_us``.

    The result is a new, sorted ``int64`` array. Whole days of the window are enumerated with
    numpy; a per-day mask from day-of-month, month and day-of-week selects the days, whose
    midnights are then combined with the spec's hour x minute offsets.
    """
    start_us, end_us = int(start_us), int(end_us)
    offsets = _day_offsets_us(spec.minutes, spec.hours)
    if end_us <= start_us or offsets.size == 0:
        return np.empty(0, dtype=np.int64)
    first_day = start_us // DAY_US
    n_days = (end_us - 1) // DAY_US - first_day + 1
    days = _matching_days(
        spec.days,
        spec.months,
        spec.weekdays,
        not (spec.dom_star or spec.dow_star),
        first_day,
        n_days,
    )
    out: npt.NDArray[np.int64] = np.add.outer(days * DAY_US, offsets).ravel()
    lo = int(np.searchsorted(out, start_us, side="left"))
    hi = int(np.searchsorted(out, end_us, side="left"))
    if lo == 0 and hi == out.size:
        return out
    return out[lo:hi].copy()


def _to_us(value: datetime, name: str) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} is a naive datetime: a UTC-aware datetime is required")
    return (value - _EPOCH) // _ONE_US


def ticks_between(expr: str, start: datetime, end: datetime) -> list[datetime]:
    """Aware UTC datetimes of every tick of ``expr`` in ``[start, end)``.

    ``start`` and ``end`` must be aware (any offset; they are compared as instants).
    """
    spec = parse(expr)
    found = ticks(spec, _to_us(start, "start"), _to_us(end, "end"))
    return [_EPOCH + timedelta(microseconds=t) for t in found.tolist()]
