"""Dialect differences, in one place. Nothing else in opsledger asks which database it runs on."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Connection, Table, cast, func, type_coerce
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert


def epoch_us(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[int]:
    """An expression giving a timestamp column as integer microseconds since the epoch."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) * 1_000_000), BigInteger)
    return type_coerce(column, BigInteger)


def upsert(conn: Connection, table: Table, update_columns: Sequence[str]) -> Insert:
    """INSERT ... ON CONFLICT (id) DO UPDATE of every given column (whole-record replace)."""
    if conn.dialect.name == "postgresql":
        pg = postgresql.insert(table)
        return pg.on_conflict_do_update(
            index_elements=["id"], set_={c: pg.excluded[c] for c in update_columns}
        )
    lite = sqlite.insert(table)
    return lite.on_conflict_do_update(
        index_elements=["id"], set_={c: lite.excluded[c] for c in update_columns}
    )
