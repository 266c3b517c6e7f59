"""Portable column types.

Timestamps are aware UTC datetimes in Python. PostgreSQL stores them as `timestamptz`; SQLite,
which has no date type, stores them as integer microseconds since the Unix epoch, which keeps them
exact, sortable and cheap to subtract in SQL (see `core.sql.epoch_us`).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Dialect
from sqlalchemy.dialects.postgresql import TIMESTAMP
from sqlalchemy.types import TypeDecorator, TypeEngine

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_epoch_us(value: datetime) -> int:
    """Exact microseconds since the epoch of an aware datetime."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: a timestamp needs a UTC offset")
    return (value - EPOCH) // MICROSECOND


def from_epoch_us(value: int) -> datetime:
    return EPOCH + timedelta(microseconds=value)


class UTCDateTime(TypeDecorator[datetime]):
    """An aware UTC datetime; naive values are refused."""

    impl = BigInteger
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(TIMESTAMP(timezone=True))
        return dialect.type_descriptor(BigInteger())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: a timestamp needs a UTC offset")
        if dialect.name == "postgresql":
            return value.astimezone(UTC)
        return to_epoch_us(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, datetime):
            return value.astimezone(UTC)
        return from_epoch_us(int(value))
