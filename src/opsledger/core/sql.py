"""Dialect differences, in one place. Nothing else in opsledger asks which database it runs on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, cast, func, type_coerce


def epoch_us(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[int]:
    """An expression giving a timestamp column as integer microseconds since the epoch."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) * 1_000_000), BigInteger)
    return type_coerce(column, BigInteger)


def placeholder(conn: Connection) -> str:
    """The driver's positional placeholder, for SQL written by hand (ingest/rows.py)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def native_times(conn: Connection) -> bool:
    """Whether the driver takes datetime and date objects (PostgreSQL). On SQLite opsledger
    stores timestamps as integer microseconds and dates as ISO text (core/types.py)."""
    return conn.dialect.name == "postgresql"
