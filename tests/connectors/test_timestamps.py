"""connectors.base.timestamp / instant: vendor timestamps to UTC, read by Python's C parser
where it can, and the careful way (which words the errors) where it cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from opsledger.connectors.base import PayloadError, instant, rfc3339, timestamp, utc_text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-10-04T13:22:05Z", "2026-10-04T13:22:05Z"),
        ("2026-10-04T13:22:05+00:00", "2026-10-04T13:22:05Z"),
        ("2026-10-04T13:22:05-00:00", "2026-10-04T13:22:05Z"),
        ("2026-10-04T15:22:05+02:00", "2026-10-04T13:22:05Z"),
        ("2026-10-04T08:52:05.5-04:30", "2026-10-04T13:22:05.500000Z"),
        ("2026-10-04T13:22:05.123Z", "2026-10-04T13:22:05.123000Z"),
        # nanoseconds (Go's RFC3339Nano) are cut to microseconds, never rounded
        ("2026-10-04T13:22:05.123456789Z", "2026-10-04T13:22:05.123456Z"),
        ("2026-10-04T13:22:05.9999999Z", "2026-10-04T13:22:05.999999Z"),
        ("2026-10-04T23:59:59.9999999+01:00", "2026-10-04T22:59:59.999999Z"),
        # what the careful way reads: surrounding spaces
        (" 2026-10-04T13:22:05.123456789Z\n", "2026-10-04T13:22:05.123456Z"),
        ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00Z"),
    ],
)
def test_timestamps_to_utc(value: str, expected: str) -> None:
    assert timestamp("x", "at", value) == expected
    t = instant("x", "at", value)
    assert t.tzinfo is UTC
    assert rfc3339(t) == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-10-04T13:22:05", "timestamp without UTC offset"),
        ("2026-10-04T13:22:05.123456789", "timestamp without UTC offset"),
        (" 2026-10-04T13:22:05 ", "timestamp without UTC offset"),
        ("2026-10-04", "timestamp without UTC offset"),
        ("yesterday", "not an RFC 3339 timestamp"),
        ("2026-10-04T25:00:00Z", "not an RFC 3339 timestamp"),
        ("", "not an RFC 3339 timestamp"),
        (1791120125, "expected a timestamp string"),
        (None, "expected a timestamp string"),
    ],
)
def test_naive_or_bad_timestamps_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as err:
        instant("x", "alerts[0].startsAt", value)
    assert reason in str(err.value)
    assert "alerts[0].startsAt" in str(err.value)
    assert repr(value) in str(err.value) or reason == "expected a timestamp string"


def test_instant_keeps_the_instant() -> None:
    t = instant("x", "at", "2026-10-04T15:22:05.25+02:00")
    assert t == datetime(2026, 10, 4, 15, 22, 5, 250000, tzinfo=timezone(timedelta(hours=2)))
    assert t.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "2026-10-04T13:22:05Z",
        "2026-10-04T13:22:05.000Z",
        "2026-10-04T13:22:05.5Z",
        "2026-10-04T13:22:05.123Z",
        "2026-10-04T13:22:05.123456Z",
        "2026-10-04T13:22:05.000000001Z",
        "2026-10-04T13:22:05.123456789Z",
        "0001-01-01T00:00:00Z",
        "2026-10-04T13:22:05+00:00",
        "2026-10-04T15:22:05.25+02:00",
        "2026-10-04 13:22:05Z",
        "2026-10-04T13:22:05,5Z",
        "20261004T132205Z",
        "2026-W40-7T13:22:05Z",
        "2026-10-04T13:22Z",
        " 2026-10-04T13:22:05.123456789Z",
    ],
)
def test_utc_text_is_rfc3339_of_the_instant(value: str) -> None:
    t = instant("x", "at", value)
    assert utc_text(value, t) == rfc3339(t) == timestamp("x", "at", value)
