"""Statements on the driver (core.sql.driver), as the importer and the webhook writer run
them: a row read on the driver and converted by `result_processors` must be what SQLAlchemy's
own execution gives, for every column of every record table, on SQLite and PostgreSQL; and
`returning_id` gives the key of the row it inserted."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Column, Engine, select

from opsledger.core.sql import driver, native_times, placeholder, result_processors, returning_id
from opsledger.core.types import to_epoch_us
from opsledger.records.spec import KIND_BY_NAME, KINDS, Field, FieldType, Kind
from opsledger.records.tables import RECORD_TABLES, imports
from opsledger.records.validation import validate_json_line
from tests.conftest import load

LABELS = {"env": "prod", "n": 3, "ratio": 0.5, "ok": True, "none": None,
          "nested": {"list": [1, "two", None]}, "text": "d\u00e9j\u00e0 \u2603"}


def _value(kind: Kind, index: int, f: Field, flag: bool) -> Any:
    """A valid value of field `f` (the index-th of its kind): timestamps rise with the
    field's position, so that every time order of a kind holds."""
    if f.choices is not None:
        return f.choices[-1] if flag else f.choices[0]
    t = f.type
    if t is FieldType.STR:
        return f"{kind.name}-{f.name}-\u00e9"
    if t is FieldType.INT:
        return 2**40 + index
    if t is FieldType.FLOAT:
        return 2.5 if flag else 3.0  # within every kind's bounds (a score is 1 to 5)
    if t is FieldType.BOOL:
        return flag
    if t is FieldType.DATETIME:  # with an offset and microseconds: stored in UTC
        return f"2026-10-04T{10 + index:02d}:22:05.{123456 + index:06d}+02:00"
    if t is FieldType.DATE:
        return "2026-10-04"
    if t is FieldType.MONTH:
        return "2026-10"
    if t is FieldType.OBJECT:
        return LABELS if flag else {}
    if t is FieldType.CRON:
        return "0 3 * * *"
    raise AssertionError(t)


def records() -> list[dict[str, Any]]:
    """Per kind: every field given (booleans true), every field given (booleans false,
    objects empty), and only the required fields (the others NULL)."""
    out: list[dict[str, Any]] = []
    for kind in KINDS:
        for n, flag in ((1, True), (2, False)):
            rec: dict[str, Any] = {"kind": kind.name, "id": f"{kind.name}-{n}"}
            for i, f in enumerate(kind.fields[1:], 1):
                rec[f.name] = _value(kind, i, f, flag)
            out.append(rec)
        rec = {"kind": kind.name, "id": f"{kind.name}-3"}
        for i, f in enumerate(kind.fields[1:], 1):
            if f.required:
                rec[f.name] = _value(kind, i, f, False)
        out.append(rec)
    return out


def _driver_rows(conn: Any, table: Any, columns: list[Column[Any]]) -> list[list[Any]]:
    """The rows of `table` read on the driver, converted as result_processors says."""
    sql = (
        "SELECT " + ", ".join(f'"{c.name}"' for c in columns)
        + f' FROM "{table.name}" ORDER BY "id"'
    )
    processors = result_processors(conn, columns)
    out = []
    for raw in driver(conn).execute(sql, ()).fetchall():
        row = list(raw)
        for i, process in processors:
            row[i] = process(row[i])
        out.append(row)
    return out


def _same(a: list[list[Any]], b: list[list[Any]]) -> None:
    """Equal values of the same types (True is not 1, a timestamp keeps its zone)."""
    assert a == b
    assert [[repr(v) for v in row] for row in a] == [[repr(v) for v in row] for row in b]


@pytest.mark.parametrize("kind", sorted(RECORD_TABLES))
def test_driver_rows_read_as_sqlalchemy_reads_them(
    engine: Engine, kind: str
) -> None:
    recs = [r for r in records() if r["kind"] == kind]
    load(engine, recs)
    expected = {
        r["id"]: validate_json_line(json.dumps(r), "test", "line")[1] for r in recs
    }
    table = RECORD_TABLES[kind]
    numbers = {f.name for f in KIND_BY_NAME[kind].fields if f.type is FieldType.FLOAT}
    others = [c for c in table.c if c.name not in numbers]
    with engine.connect() as conn:
        # every column but the numbers first, then all of them (psycopg's number types
        # choose their conversion by a result's type code: core.sql.result_processors)
        for columns in (others, list(table.c)):
            through_sqlalchemy = [
                list(r) for r in conn.execute(select(*columns).order_by(table.c.id))
            ]
            assert len(through_sqlalchemy) == 3
            on_driver = _driver_rows(conn, table, columns)
            _same(on_driver, through_sqlalchemy)
            # the positions of the conversions follow the columns given, in any order
            _same(_driver_rows(conn, table, columns[::-1]),
                  [r[::-1] for r in through_sqlalchemy])
            # and the values are those of the records as validated (not only the same
            # thing read twice): aware UTC timestamps, booleans, objects, dates, NULLs
            names = [c.name for c in columns]
            for row in on_driver:
                got = dict(zip(names, row, strict=True))
                want = {n: v for n, v in expected[got["id"]].items() if n in names}
                assert {n: got[n] for n in want} == want
                for n, v in want.items():
                    assert type(got[n]) is type(v), (n, got[n], v)
                    if isinstance(v, datetime):
                        offset = got[n].utcoffset()
                        assert offset is not None and offset.total_seconds() == 0
                assert isinstance(got["_import"], int) and isinstance(got["_line"], int)


def test_the_conversions_are_needed_where_the_driver_differs(engine: Engine) -> None:
    """Not a comparison of two identical reads: on SQLite the driver gives timestamps as
    integers, booleans as 0/1 and objects as JSON text, which result_processors converts."""
    load(engine, records())
    table = RECORD_TABLES["alert"]
    columns = [table.c.fired_at, table.c.actionable, table.c.labels]
    sql = 'SELECT "fired_at", "actionable", "labels" FROM "alerts" WHERE "id" = ' + "{m}"
    with engine.connect() as conn:
        raw = driver(conn).execute(sql.format(m=placeholder(conn)), ("alert-1",)).fetchone()
        processors = dict(result_processors(conn, columns))
        converted = [processors[i](v) if i in processors else v for i, v in enumerate(raw)]
        native = native_times(conn)
    fired = datetime(2026, 10, 4, 13, 22, 5, 123461, tzinfo=UTC)  # 15:22:05.123461+02:00
    assert converted == [fired, True, LABELS]
    assert type(converted[1]) is bool
    if not native:
        assert raw[0] == to_epoch_us(fired) and type(raw[0]) is int
        assert raw[1] == 1 and type(raw[1]) is int
        assert isinstance(raw[2], str) and json.loads(raw[2]) == LABELS
        assert set(processors) == {0, 1, 2}


def test_returning_id_is_the_key_of_the_row_inserted(engine: Engine) -> None:
    now = datetime.now(UTC)
    tag = uuid.uuid4().hex
    with engine.begin() as conn:
        mark = placeholder(conn)
        sql = (
            'INSERT INTO "imports" ("source", "imported_at", "inserted", "replaced", '
            f'"unchanged") VALUES ({mark}, {mark}, {mark}, 0, 0) RETURNING "id"'
        )
        when = now if native_times(conn) else to_epoch_us(now)
        got = [returning_id(conn, sql, (f"{tag}-{n}", when, n)) for n in range(3)]
        # in the caller's transaction: SQLAlchemy sees the rows before the commit
        rows = conn.execute(
            select(imports.c.id, imports.c.source, imports.c.inserted, imports.c.imported_at)
            .where(imports.c.source.like(f"{tag}-%"))
        ).all()
    assert len(set(got)) == 3
    by_id = {r.id: r for r in rows}
    assert sorted(by_id) == sorted(got)
    for n, key in enumerate(got):
        assert by_id[key].source == f"{tag}-{n}"
        assert by_id[key].inserted == n
        assert by_id[key].imported_at == now
    assert all(isinstance(k, int) for k in got)
