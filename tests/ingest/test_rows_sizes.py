"""The upserts of a batch of rows (ingest.rows.KindSQL.statements): every row once, in
order. On SQLite in multi-row statements of the largest sizes that fit (the most a
statement takes, then 50, then powers of two), a last single row by the one-row statement;
on PostgreSQL in one statement whatever the number of rows: of one JSON parameter
(json_populate_recordset) up to JSON_ROWS rows, of an array a column (unnest) beyond."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from opsledger.core.sql import driver, placeholder
from opsledger.ingest import rows
from opsledger.ingest.rows import kind_sql, values_digest
from opsledger.records.fast import values_of
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import RECORD_TABLES
from opsledger.records.validation import validate_json_line


def _marks(sql: str, mark: str) -> int:
    return len(re.findall(re.escape(mark), sql))


def _value_groups(sql: str) -> int:
    """The rows of an INSERT ... VALUES (...), (...) ON CONFLICT statement."""
    values = sql.split(" VALUES ", 1)[1].split(" ON CONFLICT ", 1)[0]
    return values.count("(")


def test_every_row_once_in_order_in_few_statements(engine: Engine) -> None:
    with engine.connect() as conn:
        prepared = kind_sql(conn, "alert")
        mark = placeholder(conn)
    if engine.dialect.name == "postgresql":
        _columnar(prepared)
        return
    width = len(KIND_BY_NAME["alert"].fields) + 4  # a record's values and its bookkeeping
    assert len(prepared.fields) + 4 == width
    most = min(rows.MAX_ROWS, rows.MAX_PARAMS // width)  # the rows a statement takes at most
    for n in range(601):
        flat = [(r, c) for r in range(n) for c in range(width)]  # each value told apart
        statements = prepared.statements(flat)
        again: list[Any] = []
        for sql, params in statements:
            assert isinstance(params, tuple)
            assert _marks(sql, mark) == len(params), (n, len(params))
            assert len(params) % width == 0 and params
            assert _value_groups(sql) == len(params) // width
            assert len(params) <= rows.MAX_PARAMS
            if len(params) == width:
                assert sql == prepared.upsert
            again += params
        assert again == flat, n  # every row once, in order, whole
        # a statement for each `most` rows, then each 50, then one for each set bit of what
        # is left
        rest = n % most
        assert len(statements) == n // most + rest // 50 + bin(rest % 50).count("1"), n
        sizes = [len(p) // width for _, p in statements]
        assert sizes == sorted(sizes, reverse=True), n  # largest first
        assert all(s in (most, 50) or s & (s - 1) == 0 for s in sizes), (n, sizes)
    assert len(prepared.statements([0] * width * 40)) == 2  # 32 + 8, not 8 steps of 5
    assert len(prepared.statements([0] * width)) == 1
    assert prepared.statements([]) == []


def _columnar(prepared: rows.KindSQL) -> None:
    """PostgreSQL: one statement. Up to JSON_ROWS rows, of one JSON parameter, an object a
    row, its keys the columns, object fields (JSON text) in it as JSON, not as strings of it;
    beyond, of one array a column, the columns of the rows in order."""
    width = len(KIND_BY_NAME["alert"].fields) + 4
    assert prepared.columnar is not None and prepared.json_upsert is not None
    assert _marks(prepared.columnar, "%b") == width  # short: psycopg caches it; binary arrays
    assert _marks(prepared.json_upsert, "%s") == 1 and "%b" not in prepared.json_upsert
    assert len(prepared.columns) == width and prepared.columns[0] == "id"
    objects = set(prepared.objects)
    assert {prepared.columns[i] for i in objects} == {"labels", "annotations"}
    few = rows.JSON_ROWS
    for n in (1, 2, 40, few, few + 1, 599, 5000):
        flat = [
            f'{{"r": {r}, "c": {c}}}' if c in objects else f"{r}.{c}"
            for r in range(n) for c in range(width)
        ]
        statements = prepared.statements(list(flat))
        assert len(statements) == 1
        sql, params = statements[0]
        if n <= few:
            assert sql == prepared.json_upsert
            assert len(params) == 1
            decoded = json.loads(params[0])
            assert len(decoded) == n
            for r, row in enumerate(decoded):
                assert list(row) == list(prepared.columns)
                assert list(row.values()) == [
                    {"r": r, "c": c} if c in objects else f"{r}.{c}" for c in range(width)
                ], r
        else:
            assert sql == prepared.columnar
            assert len(params) == width
            assert all(len(col) == n for col in params)
            rebuilt = [params[c][r] for r in range(n) for c in range(width)]
            assert rebuilt == flat, n
    assert prepared.statements([]) == []


def test_the_statements_store_every_row(engine: Engine) -> None:
    """Run on the driver as the importer runs them: each row stored, with its values."""
    base = datetime(2026, 10, 4, 13, 22, 5, 123456, tzinfo=UTC)
    # text that JSON escapes, and object text kept as it is written
    weird = 'q"\\ t\t n\n \u00e9 \u2603 </x>'
    odd = json.dumps(weird)[1:-1]  # as it is written in a JSON line
    for n in (1, 3, 40, rows.JSON_ROWS, rows.JSON_ROWS + 1, 599):  # JSON, then arrays
        tag = f"sz{n}-"
        pairs = []
        for i in range(n):
            line = (
                f'{{"kind":"alert","id":"{tag}{i}","name":"Rule{i} {odd}",'
                f'"fired_at":"{(base + timedelta(seconds=i)).isoformat()}",'
                f'"actionable":{"true" if i % 2 else "false"},'
                f'"labels":{{"i":{i},"s":"{odd}","n":[1,{{"z":null}}]}}}}'
            )
            kind, record = validate_json_line(line, "test", f"line {i}")
            values = values_of(kind, record)
            pairs.append((values, (values_digest(values), 7, 8, i)))
        with engine.begin() as conn:
            prepared = kind_sql(conn, "alert")
            for sql, params in prepared.statements(prepared.rows(pairs)):
                driver(conn).execute(sql, params)
        table = RECORD_TABLES["alert"]
        with engine.connect() as conn:
            stored = {
                r.id: r for r in conn.execute(select(table).where(table.c.id.like(f"{tag}%")))
            }
        assert len(stored) == n
        for i in range(n):
            r = stored[f"{tag}{i}"]
            labels = {"i": i, "s": weird, "n": [1, {"z": None}]}
            assert (r.name, r.fired_at, r.actionable, r.labels, r._line) == (
                f"Rule{i} {weird}", base + timedelta(seconds=i),
                bool(i % 2), labels, i,
            )
            assert r.acknowledged_at is None and r.annotations is None
