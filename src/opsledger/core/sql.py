"""Dialect differences, in one place. Nothing else in opsledger asks which database it runs on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    Date,
    Table,
    cast,
    func,
    type_coerce,
)
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


def _converter(column_type: Any, dialect: str) -> Callable[[Any], Any] | None:
    """How a Python value of a column goes to the driver, without SQLAlchemy's per-row work."""
    from opsledger.core.types import UTCDateTime, to_epoch_us

    if isinstance(column_type, UTCDateTime):
        return (
            None if dialect == "postgresql" else (lambda v: None if v is None else to_epoch_us(v))
        )
    if isinstance(column_type, JSON):
        return lambda v: None if v is None else orjson.dumps(v).decode()
    if dialect == "sqlite" and isinstance(column_type, Date):
        return lambda v: None if v is None else v.isoformat()
    return None


@dataclass(frozen=True)
class _Prepared:
    sql: str
    keys: tuple[str, ...]
    positional: bool
    converters: tuple[tuple[str, Callable[[Any], Any]], ...]


_PREPARED: dict[tuple[str, str, str, tuple[str, ...]], _Prepared] = {}


def bulk_execute(
    conn: Connection, stmt: Insert, table: Table, rows: Sequence[dict[str, Any]], tag: str
) -> None:
    """executemany of an INSERT (or upsert) with the driver directly: the statement is
    compiled once per (dialect, table, columns), and values are converted by column type.
    The same rows through conn.execute() give the same result, several times slower."""
    if not rows:
        return
    keys = tuple(rows[0])
    dialect = conn.dialect.name
    cache_key = (dialect, table.name, tag, keys)
    prepared = _PREPARED.get(cache_key)
    if prepared is None:
        compiled = stmt.compile(dialect=conn.dialect, column_keys=list(keys))
        positional = bool(compiled.positional)
        order = tuple(compiled.positiontup or ()) if positional else keys
        converters = tuple(
            (k, conv) for k in keys if (conv := _converter(table.c[k].type, dialect)) is not None
        )
        prepared = _Prepared(str(compiled), order, positional, converters)
        _PREPARED[cache_key] = prepared
    params: list[Any] = []
    for row in rows:
        values = dict(row)
        for key, conv in prepared.converters:
            values[key] = conv(values[key])
        params.append(tuple(values[k] for k in prepared.keys) if prepared.positional else values)
    conn.exec_driver_sql(prepared.sql, params)
