"""Alert records: listing, and the alert-noise analysis (`opsledger alerts noise`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from opsledger.alerts.noise import NoiseReport, Recommendation, RuleStats, Thresholds, analyse
from opsledger.errors import UsageError
from opsledger.records.listing import list_records

__all__ = [
    "NoiseReport",
    "Recommendation",
    "RuleStats",
    "Thresholds",
    "analyse",
    "list_alerts",
    "parse_timestamp",
]


def parse_timestamp(text: str, option: str) -> datetime:
    """An RFC 3339 timestamp with an offset; a naive one is an error, never guessed."""
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not an RFC 3339 timestamp (e.g. 2026-10-04T13:22:05Z)"
        ) from None
    if value.tzinfo is None:
        raise UsageError(
            f"{option} {text!r} has no UTC offset: write it with one (e.g. 2026-10-04T13:22:05Z)"
        )
    return value


def list_alerts(
    conn: Connection,
    *,
    name: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Alert records with their native fields, newest `fired_at` first; `since` <= fired_at <
    `until`. Each is the record's canonical JSON form (absent fields left out)."""
    return list_records(conn, "alert", "fired_at", name=name, service=service, since=since,
                        until=until, limit=limit)
