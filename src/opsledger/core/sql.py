"""Dialect differences, in one place. Nothing else in opsledger asks which database it runs on."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Float,
    Table,
    cast,
    func,
    type_coerce,
)


def epoch_us(conn: Connection, column: ColumnElement[Any]) -> ColumnElement[int]:
    """An expression giving a timestamp column as integer microseconds since the epoch."""
    if conn.dialect.name == "postgresql":
        return cast(func.floor(func.extract("epoch", column) * 1_000_000), BigInteger)
    return type_coerce(column, BigInteger)


def placeholder(conn: Connection) -> str:
    """The driver's positional placeholder, for SQL written by hand (ingest/rows.py)."""
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def id_in(conn: Connection, ids: Sequence[Any]) -> tuple[str, tuple[Any, ...]]:
    """A condition "is one of `ids`" for SQL written by hand, to follow a column name, and its
    parameters: `= ANY(%b)` with one array on PostgreSQL (psycopg converts the placeholders
    of a statement of over 50 parameters anew for every execution, in Python; this one is
    converted once, and the array goes in binary), `IN (?, ...)` on SQLite."""
    if conn.dialect.name == "postgresql":
        return "= ANY(%b)", (list(ids),)
    return "IN (" + ", ".join([placeholder(conn)] * len(ids)) + ")", tuple(ids)


def arrays(conn: Connection) -> bool:
    """Whether the driver takes a column of many rows as one array parameter (PostgreSQL:
    ingest/rows.py upserts any number of rows in one statement of an array a column)."""
    return conn.dialect.name == "postgresql"


def unnest_rows(conn: Connection, table: Table, columns: Sequence[str]) -> str:
    """Where `arrays` holds: `SELECT * FROM unnest(...)` of one binary array parameter (%b) a
    column of `table`, each cast to the column's type, for an INSERT of any number of rows
    in one statement (psycopg's text form of an array escapes each element with a regular
    expression, 4-5 times slower than binary)."""
    return "SELECT * FROM unnest(" + ", ".join(
        f"%b::{table.c[c].type.compile(dialect=conn.dialect)}[]" for c in columns
    ) + ")"


def native_times(conn: Connection) -> bool:
    """Whether the driver takes datetime and date objects (PostgreSQL). On SQLite opsledger
    stores timestamps as integer microseconds and dates as ISO text (core/types.py)."""
    return conn.dialect.name == "postgresql"


def driver(conn: Connection) -> Any:
    """The driver's own connection under `conn` (a `sqlite3.Connection` or a
    `psycopg.Connection`), in the same transaction. The import's and the webhook writer's
    fixed statements run on it directly: SQLAlchemy's execution context around a statement
    costs more than SQLite's own work for most of them (docs/benchmarks.md). Both drivers
    answer `.execute(sql, parameters)` with a cursor; SQL written for it uses `placeholder`,
    and values go as `native_times` says (nothing converts them on the way)."""
    return conn.connection.driver_connection


def returning_id(conn: Connection, sql: str, params: tuple[Any, ...]) -> int:
    """Run an INSERT ... RETURNING of one integer key on the driver; the key."""
    rows = driver(conn).execute(sql, params).fetchall()  # to the end: the statement is done
    return int(rows[0][0])


def result_processors(
    conn: Connection, columns: Sequence[ColumnElement[Any]]
) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    """(position, function) for each of `columns` whose values SQLAlchemy converts when it
    reads them (timestamps from epoch microseconds on SQLite, booleans, JSON text): what a
    row read on the driver needs to be what `conn.execute` would have returned."""
    dialect = conn.dialect
    out = []
    for i, column in enumerate(columns):
        impl = column.type.dialect_impl(dialect)
        try:
            process = impl.result_processor(dialect, None)
        except TypeError:
            # psycopg's number types choose by the column's type code, which only a result
            # has; opsledger's numbers are double precision, which psycopg reads as float
            if not isinstance(impl, Float):
                raise
            process = None
        if process is not None:
            out.append((i, process))
    return tuple(out)


def pipeline(conn: Connection) -> contextlib.AbstractContextManager[Any]:
    """On PostgreSQL, psycopg's pipeline mode for the driver statements run inside it: they
    are sent without waiting for each other's answers, and the block ends with one round
    trip for all (an error surfaces there at the latest); reading a statement's rows inside
    the block costs a round trip for what is queued up to it. Only statements run on `driver`
    belong inside: SQLAlchemy's execution reads a result's description before the answer
    has come. Inside a block already open it is nothing (psycopg's nested pipeline would
    cost a round trip at each end). On SQLite, nothing."""
    if conn.dialect.name == "postgresql" and not in_pipeline(conn):
        held: contextlib.AbstractContextManager[Any] = driver(conn).pipeline()
        return held
    return contextlib.nullcontext()


def in_pipeline(conn: Connection) -> bool:
    """Whether `conn` is inside a `pipeline` block (where SQLAlchemy's execution must not
    run)."""
    if conn.dialect.name != "postgresql":
        return False
    return bool(driver(conn).pgconn.pipeline_status)  # psycopg.pq.PipelineStatus.OFF is 0


def queue_commit(conn: Connection) -> None:
    """Inside a `pipeline` block on PostgreSQL: queue the COMMIT of the transaction, so that
    the block's closing round trip carries it with the statements before it. SQLAlchemy's
    commit at the end of its transaction block then finds the transaction ended and sends
    nothing (psycopg commits only a transaction that is open); an error of the COMMIT, or of
    any statement before it, surfaces when the pipeline block ends. Elsewhere, nothing: the
    caller's transaction block commits."""
    if in_pipeline(conn):
        driver(conn).execute("COMMIT")
