"""Tests for opsledger.core.cron: hand cases, rejections, and properties.

The properties check `ticks` three ways over random expressions and random windows:

* against a slow pure-Python oracle built from the *generated* field values (not from
  `parse`), which covers the whole syntax the spec allows;
* against croniter with ``implement_cron_bug=True``, which uses the spec's day rule;
* against croniter's default mode (``day_or=True``) on the expressions where that mode and the
  spec agree.

Where croniter 7 disagrees with the spec we follow the spec (see the comment above FieldDef).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone

import numpy as np
import pytest
from croniter import CroniterBadDateError, croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsledger.core.cron import CronError, CronSpec, parse, ticks, ticks_between

MINUTE = timedelta(minutes=1)
MINUTE_US = 60_000_000
DAY_US = 86_400_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def us(value: datetime) -> int:
    return (value - EPOCH) // timedelta(microseconds=1)


def fmt(values: list[datetime]) -> list[str]:
    return [v.strftime("%a %Y-%m-%d %H:%M") for v in values]


def days_of(expr: str, start: datetime, end: datetime) -> list[str]:
    return [v.strftime("%a %m-%d") for v in ticks_between(expr, start, end)]


# --------------------------------------------------------------------------------------------
# Hand cases
# --------------------------------------------------------------------------------------------


def test_daily_schedule_times() -> None:
    got = ticks_between("30 2 * * *", utc(2024, 3, 1), utc(2024, 3, 4))
    assert got == [utc(2024, 3, 1, 2, 30), utc(2024, 3, 2, 2, 30), utc(2024, 3, 3, 2, 30)]
    assert all(t.tzinfo is UTC for t in got)


def test_dom_and_dow_both_restricted_is_or() -> None:
    # Jan 2024: the 1st is a Monday; Mondays are 1, 8, 15, 22, 29; Feb 1 is a Thursday.
    got = days_of("0 0 1 * mon", utc(2024, 1, 1), utc(2024, 3, 1))
    assert got == [
        "Mon 01-01",
        "Mon 01-08",
        "Mon 01-15",
        "Mon 01-22",
        "Mon 01-29",
        "Thu 02-01",
        "Mon 02-05",
        "Mon 02-12",
        "Mon 02-19",
        "Mon 02-26",
    ]


def test_full_range_dom_is_restricted_so_or_matches_every_day() -> None:
    # "1-31" does not start with "*", so with a restricted day-of-week the OR rule applies.
    got = days_of("0 0 1-31 * mon", utc(2024, 1, 1), utc(2024, 1, 8))
    assert len(got) == 7


def test_star_step_in_dom_makes_it_and() -> None:
    # "*/2" starts with "*": day must be odd AND a Monday.
    got = days_of("0 0 */2 * mon", utc(2024, 1, 1), utc(2024, 3, 1))
    assert got == ["Mon 01-01", "Mon 01-15", "Mon 01-29", "Mon 02-05", "Mon 02-19"]
    spec = parse("0 0 */2 * mon")
    assert spec.dom_star and not spec.dow_star


def test_star_step_in_dow_makes_it_and() -> None:
    # "*/3" in day-of-week is Sun, Wed, Sat; AND with the 1st-10th of the month.
    got = days_of("0 0 1-10 * */3", utc(2024, 1, 1), utc(2024, 2, 1))
    assert got == ["Wed 01-03", "Sat 01-06", "Sun 01-07", "Wed 01-10"]


def test_star_one_step_is_still_star_for_the_day_rule() -> None:
    # "*/1" covers every day but starts with "*": AND, so Mondays only.
    assert days_of("0 0 */1 * mon", utc(2024, 1, 1), utc(2024, 1, 15)) == [
        "Mon 01-01",
        "Mon 01-08",
    ]


def test_plain_star_dom_with_dow() -> None:
    assert days_of("0 0 * * fri", utc(2024, 1, 1), utc(2024, 1, 15)) == [
        "Fri 01-05",
        "Fri 01-12",
    ]


@pytest.mark.parametrize("dow", ["0", "7", "sun", "SUN", "Sun"])
def test_sunday_spellings(dow: str) -> None:
    assert parse(f"0 0 * * {dow}").weekdays == frozenset({0})
    assert days_of(f"0 0 * * {dow}", utc(2024, 1, 1), utc(2024, 1, 22)) == [
        "Sun 01-07",
        "Sun 01-14",
        "Sun 01-21",
    ]


def test_dow_range_up_to_seven() -> None:
    assert parse("0 0 * * 5-7").weekdays == frozenset({5, 6, 0})
    assert parse("0 0 * * 0-7").weekdays == frozenset(range(7))
    assert parse("0 0 * * sun-7").weekdays == frozenset(range(7))
    assert parse("0 0 * * 1-7/2").weekdays == frozenset({1, 3, 5, 0})


def test_names_case_insensitive_in_lists_and_ranges() -> None:
    spec = parse("0 12 * JAN,mar-May,Dec MON-fri")
    assert spec.months == frozenset({1, 3, 4, 5, 12})
    assert spec.weekdays == frozenset({1, 2, 3, 4, 5})
    assert parse("0 0 * feb-NOV/3 *").months == frozenset({2, 5, 8, 11})
    assert parse("0 0 * * mon-sat/2").weekdays == frozenset({1, 3, 5})
    # Names and numbers can be mixed in a range.
    assert parse("0 0 * 2-apr 1-wed").months == frozenset({2, 3, 4})
    got = days_of("0 0 * * Sat,SUN", utc(2024, 1, 1), utc(2024, 1, 15))
    assert got == ["Sat 01-06", "Sun 01-07", "Sat 01-13", "Sun 01-14"]


def test_stepped_ranges() -> None:
    spec = parse("10-50/15 */6 1-31/10 */5 *")
    assert spec.minutes == frozenset({10, 25, 40})
    assert spec.hours == frozenset({0, 6, 12, 18})
    assert spec.days == frozenset({1, 11, 21, 31})
    assert spec.months == frozenset({1, 6, 11})
    assert parse("*/7 * * * *").minutes == frozenset(range(0, 60, 7))
    assert parse("*/100 * * * *").minutes == frozenset({0})
    assert parse("5-5 * * * *").minutes == frozenset({5})
    got = ticks_between("10-50/15 9 * * *", utc(2024, 1, 1), utc(2024, 1, 2))
    assert got == [utc(2024, 1, 1, 9, 10), utc(2024, 1, 1, 9, 25), utc(2024, 1, 1, 9, 40)]


def test_lists_and_star_items() -> None:
    spec = parse("1,5,9 0,12 * * *")
    assert spec.minutes == frozenset({1, 5, 9})
    assert spec.hours == frozenset({0, 12})
    # Vixie cron allows "*" and "*/n" as list items; only the field's first character
    # decides the day rule.
    spec = parse("0 0 5,*/10 * mon")
    assert spec.days == frozenset({1, 5, 11, 21, 31})
    assert not spec.dom_star
    assert parse("0 0 */10,5 * mon").dom_star


def test_leap_day() -> None:
    got = ticks_between("0 0 29 2 *", utc(2024, 1, 1), utc(2029, 1, 1))
    assert got == [utc(2024, 2, 29), utc(2028, 2, 29)]


def test_impossible_date_has_no_ticks() -> None:
    assert ticks_between("0 0 30 2 *", utc(2020, 1, 1), utc(2030, 1, 1)) == []
    assert ticks_between("0 0 31 4,6,9,11 *", utc(2020, 1, 1), utc(2030, 1, 1)) == []


def test_thirty_first_only_in_long_months() -> None:
    got = days_of("0 0 31 * *", utc(2023, 1, 1), utc(2024, 1, 1))
    assert got == [
        d.strftime("%a %m-%d") for d in (date(2023, m, 31) for m in (1, 3, 5, 7, 8, 10, 12))
    ]


def test_full_range_bounds_accepted() -> None:
    spec = parse("0-59 0-23 1-31 1-12 0-7")
    assert spec.minutes == frozenset(range(60))
    assert spec.hours == frozenset(range(24))
    assert spec.days == frozenset(range(1, 32))
    assert spec.months == frozenset(range(1, 13))
    assert spec.weekdays == frozenset(range(7))
    assert not spec.dom_star and not spec.dow_star
    edge = parse("59 23 31 12 7")
    assert (edge.minutes, edge.hours, edge.days, edge.months, edge.weekdays) == (
        frozenset({59}),
        frozenset({23}),
        frozenset({31}),
        frozenset({12}),
        frozenset({0}),
    )


def test_whitespace_and_expr_kept() -> None:
    spec = parse("  0\t0  *  * *\n")
    assert spec.expr == "  0\t0  *  * *\n"
    assert spec.minutes == frozenset({0}) and spec.dom_star and spec.dow_star


def test_spec_is_frozen_and_hashable() -> None:
    spec = parse("0 0 * * *")
    assert hash(spec) == hash(parse("0 0 * * *"))
    with pytest.raises(AttributeError):
        spec.expr = "x"  # type: ignore[misc]


def test_window_bounds_are_half_open_and_sub_minute() -> None:
    spec = parse("*/5 * * * *")
    base = us(utc(2024, 1, 1))
    assert ticks(spec, base, base + 10 * MINUTE_US).tolist() == [base, base + 5 * MINUTE_US]
    # A start one microsecond after a tick excludes it; an end one after includes it.
    got = ticks(spec, base + 1, base + 10 * MINUTE_US + 1).tolist()
    assert got == [base + 5 * MINUTE_US, base + 10 * MINUTE_US]
    got = ticks(spec, base - 1, base + 1).tolist()
    assert got == [base]
    assert ticks(spec, base + 1, base + 5 * MINUTE_US).size == 0
    assert ticks(spec, base, base).size == 0
    assert ticks(spec, base + MINUTE_US, base).size == 0


def test_window_across_days_and_inside_one_day() -> None:
    spec = parse("0 6,18 * * *")
    start = us(utc(2024, 1, 1, 12))
    end = us(utc(2024, 1, 3, 12))
    got = ticks(spec, start, end)
    assert got.dtype == np.int64
    assert got.tolist() == [
        us(utc(2024, 1, 1, 18)),
        us(utc(2024, 1, 2, 6)),
        us(utc(2024, 1, 2, 18)),
        us(utc(2024, 1, 3, 6)),
    ]
    assert ticks(spec, us(utc(2024, 1, 1, 7)), us(utc(2024, 1, 1, 17))).size == 0


def test_before_epoch() -> None:
    got = ticks_between("0 0 1 * thu", utc(1969, 12, 20), utc(1970, 1, 9))
    assert got == [
        utc(1969, 12, 25),  # Thursday
        utc(1970, 1, 1),  # 1st, also a Thursday
        utc(1970, 1, 8),
    ]


def test_ticks_between_converts_offsets_and_rejects_naive() -> None:
    plus2 = timezone(timedelta(hours=2))
    got = ticks_between("0 0 * * *", datetime(2024, 1, 1, 2, 0, tzinfo=plus2), utc(2024, 1, 3))
    assert got == [utc(2024, 1, 1), utc(2024, 1, 2)]
    naive = datetime(2024, 1, 1)  # noqa: DTZ001
    with pytest.raises(ValueError, match="naive"):
        ticks_between("0 0 * * *", naive, utc(2024, 1, 2))
    with pytest.raises(ValueError, match="naive"):
        ticks_between("0 0 * * *", utc(2024, 1, 1), naive)


def test_cron_error_is_value_error_and_names_field() -> None:
    with pytest.raises(CronError) as info:
        parse("* * * * 8")
    assert isinstance(info.value, ValueError)
    assert str(info.value) == "day-of-week field '8': value 8 out of range 0-7"


# --------------------------------------------------------------------------------------------
# Rejections
# --------------------------------------------------------------------------------------------

REJECTED = [
    # non-standard extensions
    ("0 0 L * *", "day-of-month"),
    ("0 0 15W * *", "day-of-month"),
    ("0 0 LW * *", "day-of-month"),
    ("0 0 * * 5L", "day-of-week"),
    ("0 0 * * 5#3", "day-of-week"),
    ("0 0 ? * *", "day-of-month"),
    ("0 0 * * ?", "day-of-week"),
    ("H * * * *", "minute"),
    ("H/5 * * * *", "minute"),
    ("0 H(0-5) * * *", "hour"),
    # wrong shape
    ("@daily", "5 fields"),
    ("@reboot", "5 fields"),
    ("0 0 * * * *", "5 fields"),
    ("0 0 * * * 2024", "5 fields"),
    ("0 0 * *", "5 fields"),
    ("", "5 fields"),
    # out of range
    ("60 * * * *", "minute"),
    ("* 24 * * *", "hour"),
    ("* * 0 * *", "day-of-month"),
    ("* * 32 * *", "day-of-month"),
    ("* * * 0 *", "month"),
    ("* * * 13 *", "month"),
    ("* * * * 8", "day-of-week"),
    ("0-60 * * * *", "minute"),
    ("* * 1-32 * *", "day-of-month"),
    ("* * * * 1-8", "day-of-week"),
    ("99999999999999999999 * * * *", "minute"),
    # ranges whose start is after their end
    ("5-1 * * * *", "minute"),
    ("5-4 * * * *", "minute"),
    ("* * * * tue-mon", "day-of-week"),
    ("* * * dec-jan *", "month"),
    ("* * * * fri-mon", "day-of-week"),
    ("* * * * 7-1", "day-of-week"),
    ("* * * * sat-sun", "day-of-week"),
    # steps
    ("*/0 * * * *", "minute"),
    ("* 1-5/0 * * *", "hour"),
    ("5/10 * * * *", "minute"),
    ("* * * jan/2 *", "month"),
    ("* * * * 1/2", "day-of-week"),
    ("*/ * * * *", "minute"),
    ("*/-1 * * * *", "minute"),
    ("*/2/3 * * * *", "minute"),
    ("1-5/2/3 * * * *", "minute"),
    # empty list items
    ("1,,2 * * * *", "minute"),
    ("1, * * * *", "minute"),
    (",1 * * * *", "minute"),
    ("* * * * mon,", "day-of-week"),
    # names in the wrong field, unknown names, other junk
    ("* * * mon *", "month"),
    ("* * * * jan", "day-of-week"),
    ("mon * * * *", "minute"),
    ("* * * * monday", "day-of-week"),
    ("* * * january *", "month"),
    ("* * * foo *", "month"),
    ("-5 * * * *", "minute"),
    ("1-2-3 * * * *", "minute"),
    ("1.5 * * * *", "minute"),
    ("** * * * *", "minute"),
    ("*-5 * * * *", "minute"),
    ("+5 * * * *", "minute"),
    ("\u0663 * * * *", "minute"),  # ARABIC-INDIC DIGIT THREE
    ("5- * * * *", "minute"),
]


@pytest.mark.parametrize(("expr", "mentions"), REJECTED)
def test_rejected(expr: str, mentions: str) -> None:
    with pytest.raises(CronError) as info:
        parse(expr)
    message = str(info.value)
    assert mentions in message
    if mentions != "5 fields":
        assert message.startswith(f"{mentions} field '")


def test_rejection_messages_say_why() -> None:
    cases = {
        "5-1 * * * *": "range start 5 is after its end 1",
        "*/0 * * * *": "step of 0",
        "1,,2 * * * *": "empty list item",
        "0 0 L * *": "not supported",
        "0 0 * * 5#3": "not supported",
        "5/10 * * * *": "step",
        "* 24 * * *": "value 24 out of range 0-23",
        "* * * 13 *": "value 13 out of range 1-12",
        "0 0 * * * *": "got 6",
    }
    for expr, why in cases.items():
        with pytest.raises(CronError, match=why):
            parse(expr)


# --------------------------------------------------------------------------------------------
# Property tests
# --------------------------------------------------------------------------------------------

# Croniter vs the spec. Where croniter 7.0 disagrees with the spec (checked by hand),
# the spec wins and the croniter comparisons do not generate the disputed syntax:
#
# 1. "*/n" (and "*/1") in day-of-month or day-of-week. By default croniter decides OR vs AND
#    from the *expanded* values: "*/2" expands to a list, so "0 0 */2 * mon" is OR in croniter
#    (every odd day plus every Monday), but the spec says a field starting with "*" makes the
#    rule AND (odd Mondays only). Passing implement_cron_bug=True makes croniter use the
#    "starts with *" rule, which is the spec's; the default-mode comparison only generates
#    day fields that are exactly "*" or do not start with "*".
# 2. Equal-bound ranges: croniter reads "5-5" (and "jan-jan", "5-5/2") as the whole field,
#    the spec as the single value 5. The croniter comparisons only generate ranges a-b, a < b.
# 3. "*" items later in a day-field list: croniter turns "5,*" into the whole field "*" and
#    then uses AND, and it turns a full "1-15,16-31" into "*" when the other day field
#    contains a "*" anywhere ("1,*/2"). So "0 0 5 * 1,*" is the 5th of each month in
#    croniter but every day in the spec (and in Vixie cron: "1,*" does not start with "*",
#    so OR). The croniter comparisons only put "*" items first in a day-field list.
# 4. croniter also accepts syntax the spec rejects (wrapping ranges "fri-mon", "5/10", "L",
#    "#", ...); the generators never produce those, and `test_rejected` covers them.


@dataclass(frozen=True)
class FieldDef:
    name: str
    lo: int
    hi: int
    names: tuple[str, ...]  # month names from 1, weekday names from 0


FIELD_DEFS = (
    FieldDef("minute", 0, 59, ()),
    FieldDef("hour", 0, 23, ()),
    FieldDef("day-of-month", 1, 31, ()),
    FieldDef(
        "month",
        1,
        12,
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"),
    ),
    FieldDef("day-of-week", 0, 7, ("Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat")),
)


@dataclass(frozen=True)
class Generated:
    expr: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    dom_star: bool
    dow_star: bool


def _name_of(field: FieldDef, value: int) -> str | None:
    index = value - field.lo if field.name == "month" else value
    if field.names and 0 <= index < len(field.names):
        return field.names[index]
    return None


@st.composite
def _atom(draw: st.DrawFn, field: FieldDef, value: int) -> str:
    name = _name_of(field, value)
    if name is not None and draw(st.booleans()):
        return draw(st.sampled_from([name.lower(), name.upper(), name]))
    return str(value)


@st.composite
def _item(
    draw: st.DrawFn, field: FieldDef, strict_ranges: bool, star_ok: bool
) -> tuple[str, set[int]]:
    kinds = ["value", "range", "range_step"]
    if star_ok:
        kinds += ["star", "star_step"]
    kind = draw(st.sampled_from(kinds))
    span = field.hi - field.lo + 1
    if kind == "star":
        return "*", set(range(field.lo, field.hi + 1))
    if kind == "star_step":
        step = draw(st.integers(1, span + 2))
        return f"*/{step}", set(range(field.lo, field.hi + 1, step))
    a = draw(st.integers(field.lo, field.hi))
    if kind == "value":
        return draw(_atom(field, a)), {a}
    if strict_ranges and a == field.hi:
        return draw(_atom(field, a)), {a}
    b = draw(st.integers(a + 1 if strict_ranges else a, field.hi))
    text = f"{draw(_atom(field, a))}-{draw(_atom(field, b))}"
    if kind == "range":
        return text, set(range(a, b + 1))
    step = draw(st.integers(1, span + 2))
    return f"{text}/{step}", set(range(a, b + 1, step))


@st.composite
def _field(draw: st.DrawFn, field: FieldDef, mode: str) -> tuple[str, frozenset[int]]:
    """One field's text and expected values.

    mode "full": everything the spec allows; "bug": croniter with implement_cron_bug=True;
    "default": croniter's default mode (see the comment above FieldDef).
    """
    day_field = field.name in ("day-of-month", "day-of-week")
    # A bare "*" half of the time in the day and month fields: common in real schedules,
    # and without it most generated schedules would have no tick in a 60-day window.
    if field.name in ("day-of-month", "month", "day-of-week") and draw(st.booleans()):
        return "*", frozenset(range(field.lo, (6 if field.hi == 7 else field.hi) + 1))
    parts: list[str] = []
    values: set[int] = set()
    for i in range(draw(st.integers(1, 3))):
        star_ok = not (mode != "full" and day_field and (i > 0 or mode == "default"))
        text, vals = draw(_item(field, mode != "full", star_ok))
        parts.append(text)
        values |= vals
    if field.hi == 7:
        values = {v % 7 for v in values}
    return ",".join(parts), frozenset(values)


@st.composite
def expressions(draw: st.DrawFn, mode: str = "full") -> Generated:
    fields = [draw(_field(f, mode)) for f in FIELD_DEFS]
    sep = draw(st.sampled_from([" ", "  ", "\t"]))
    expr = sep.join(text for text, _ in fields)
    return Generated(
        expr=expr,
        minutes=fields[0][1],
        hours=fields[1][1],
        days=fields[2][1],
        months=fields[3][1],
        weekdays=fields[4][1],
        dom_star=fields[2][0].startswith("*"),
        dow_star=fields[4][0].startswith("*"),
    )


@st.composite
def windows(draw: st.DrawFn, max_days: int = 60) -> tuple[datetime, datetime]:
    start = draw(
        st.datetimes(
            min_value=datetime(1965, 1, 1),  # noqa: DTZ001
            max_value=datetime(2040, 1, 1),  # noqa: DTZ001
            timezones=st.just(UTC),
        )
    )
    if draw(st.booleans()):
        start = start.replace(second=0, microsecond=0)
    length = timedelta(days=draw(st.integers(0, max_days)))
    if draw(st.booleans()):
        length += timedelta(microseconds=draw(st.integers(0, DAY_US - 1)))
    return start, start + length


def reference_ticks(gen: Generated, start: datetime, end: datetime) -> list[int]:
    """Slow oracle: walk the days of the window with the datetime module."""
    out: list[int] = []
    day = start.date()
    while day <= end.date():
        dom_ok = day.day in gen.days
        dow_ok = (day.isoweekday() % 7) in gen.weekdays
        either = gen.dom_star or gen.dow_star
        day_ok = (dom_ok and dow_ok) if either else (dom_ok or dow_ok)
        if day_ok and day.month in gen.months:
            midnight = datetime(day.year, day.month, day.day, tzinfo=UTC)
            for h in sorted(gen.hours):
                for m in sorted(gen.minutes):
                    t = midnight + timedelta(hours=h, minutes=m)
                    if start <= t < end:
                        out.append(us(t))
        day += timedelta(days=1)
    return out


@settings(max_examples=300, deadline=None)
@given(expressions())
def test_parse_matches_generated_values(gen: Generated) -> None:
    spec = parse(gen.expr)
    assert spec == CronSpec(
        expr=gen.expr,
        minutes=gen.minutes,
        hours=gen.hours,
        days=gen.days,
        months=gen.months,
        weekdays=gen.weekdays,
        dom_star=gen.dom_star,
        dow_star=gen.dow_star,
    )
    assert parse(gen.expr.upper()) == replace(spec, expr=gen.expr.upper())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(), windows())
def test_ticks_match_reference(gen: Generated, window: tuple[datetime, datetime]) -> None:
    start, end = window
    got = ticks(parse(gen.expr), us(start), us(end))
    assert got.dtype == np.int64
    assert got.ndim == 1
    if got.size:
        assert np.all(np.diff(got) > 0)
        assert np.all(got % MINUTE_US == 0)
        assert got[0] >= us(start) and got[-1] < us(end)
    assert got.tolist() == reference_ticks(gen, start, end)


CRONITER_CAP = 300  # croniter is slow: compare at most this many ticks per example


def croniter_ticks(expr: str, start: datetime, end: datetime, cron_bug: bool) -> list[int]:
    """Up to CRONITER_CAP ticks t, start <= t < end, iterating croniter as documented."""
    first_minute = start.replace(second=0, microsecond=0)
    if first_minute < start:
        first_minute += MINUTE
    it = croniter(expr, first_minute - MINUTE, implement_cron_bug=cron_bug)
    out: list[int] = []
    while len(out) < CRONITER_CAP:
        try:
            t = it.get_next(datetime)
        except CroniterBadDateError:  # croniter found no further date at all
            break
        if t >= end:
            break
        out.append(us(t))
    return out


def _compare_with_croniter(
    gen: Generated, window: tuple[datetime, datetime], cron_bug: bool
) -> None:
    start, end = window
    got = ticks(parse(gen.expr), us(start), us(end)).tolist()
    expected = croniter_ticks(gen.expr, start, end, cron_bug)
    if len(expected) < CRONITER_CAP:
        assert got == expected
    else:
        assert got[:CRONITER_CAP] == expected


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(mode="bug"), windows())
def test_ticks_match_croniter_spec_day_rule(
    gen: Generated, window: tuple[datetime, datetime]
) -> None:
    # implement_cron_bug=True: OR only when neither day field starts with "*" (the spec).
    _compare_with_croniter(gen, window, cron_bug=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions(mode="default"), windows())
def test_ticks_match_croniter_default(gen: Generated, window: tuple[datetime, datetime]) -> None:
    # croniter's default day_or=True; day fields are exactly "*" or do not start with "*".
    _compare_with_croniter(gen, window, cron_bug=False)


# --------------------------------------------------------------------------------------------
# Speed (loose bounds, ~20x the measured cost, to catch a non-vectorised regression)
# --------------------------------------------------------------------------------------------


def test_speed_one_year() -> None:
    start = us(utc(2025, 1, 1)) + 1
    end = us(utc(2026, 1, 1))
    specs = [parse(f"{1 + i % 59} {i % 24} * * *") for i in range(200)]
    t0 = time.perf_counter()
    for i, spec in enumerate(specs):
        assert ticks(spec, start - 1 + i, end).size == 365
    daily = (time.perf_counter() - t0) / len(specs)
    t0 = time.perf_counter()
    assert ticks(parse("*/5 * * * *"), start, end).size == 365 * 288 - 1
    five = time.perf_counter() - t0
    assert daily < 2e-3, f"daily schedule took {daily * 1e3:.2f} ms"
    assert five < 0.05, f"*/5 schedule took {five * 1e3:.2f} ms"
