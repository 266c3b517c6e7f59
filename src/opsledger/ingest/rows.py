"""Record rows as the database driver takes them, for the import's hot path.

Per kind and dialect, prepared once: the upsert (one row, and many rows in one statement),
the lookup of stored digests and raw-line pointers by id, and how each value goes to the driver
(timestamps to epoch microseconds and dates to ISO text on SQLite; objects arrive as their
JSON text already, records.fast.values_of). Also the digests of records. A multi-row
statement costs the driver one step for a few hundred rows (SQLite runs 28 % fewer
instructions than for the same rows one by one).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

import orjson
import xxhash
from sqlalchemy import Connection

from opsledger.core.sql import arrays, driver, id_in, native_times, placeholder, unnest_rows
from opsledger.core.types import EPOCH, MICROSECOND
from opsledger.records.fast import Values, values_of
from opsledger.records.spec import KIND_BY_NAME, FieldType
from opsledger.records.tables import DIGEST, IMPORT, LINE, RAW, RECORD_TABLES
from opsledger.records.validation import Record

MAX_PARAMS = 30_000  # SQLite allows 32,766 bound values a statement, PostgreSQL 65,535
MAX_ROWS = 500
# PostgreSQL: upserts of this many rows at most take their rows as JSON (KindSQL.json_rows).
# An upsert of n alert rows (bench-shaped), Python CPU / wall, JSON vs arrays: n=10 135/575
# vs 245/767 us; 40: 228/1194 vs 417/1343; 80: 348/1921 vs 590/1987; 160: 532/3243 vs
# 941/3243; 500: 1376/9689 vs 2275/8134 (PostgreSQL reads the arrays faster). A file's
# batches (500) stay arrays: 50,000 records took 2.16 s as JSON, 1.96 s as arrays.
JSON_ROWS = 160


DIGEST_MARK = "x"  # digests of this scheme start so; legacy ones are lowercase hex only


def values_digest(values: Values) -> str:
    """The digest of a record's content: its values in its kind's field order (timestamps in
    UTC, absent fields null), as JSON with object keys sorted, hashed with XXH3-128; 32
    characters, the first of them `DIGEST_MARK`. It tells an unchanged record from a changed
    one, nothing more."""
    body = orjson.dumps(values, option=orjson.OPT_SORT_KEYS)  # validated: 64-bit integers
    return DIGEST_MARK + xxhash.xxh3_128_hexdigest(body)[1:]


def digest(kind: str, record: Record) -> str:
    """The digest of a validated record given as a dict (see values_digest)."""
    return values_digest(values_of(kind, record))


def legacy_digest(record: Record) -> str:
    """The digest that databases written before the XXH3 scheme hold (blake2b of the record
    as JSON with sorted keys, absent and null fields left out); still recognised, so that a
    re-import into such a database changes nothing."""
    if None in record.values():
        record = {k: v for k, v in record.items() if v is not None}
    body = orjson.dumps(record, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(body, digest_size=16).hexdigest()


def same_content(stored: str, new: str, kind: str, values: Values) -> bool:
    """Whether a stored digest (of either scheme) is that of a record whose new digest is `new`."""
    if stored == new:
        return True
    if stored[:1] == DIGEST_MARK:
        return False
    spec = KIND_BY_NAME[kind]
    record = {  # the record as validated: objects as objects, not their JSON text
        f.name: orjson.loads(v) if f.type is FieldType.OBJECT and v is not None else v
        for f, v in zip(spec.fields, values, strict=True)
    }
    return stored == legacy_digest(record)


@dataclass(frozen=True)
class KindSQL:
    """One kind's prepared SQL and value conversion for one dialect."""

    fields: tuple[str, ...]  # the record fields; a row adds DIGEST, IMPORT, RAW, LINE
    upsert: str  # one row
    upsert_many: tuple[tuple[int, str], ...]  # (rows, statement), most rows first
    lookup: str  # followed by core.sql.id_in's condition on the ids
    converters: tuple[tuple[int, Callable[[Any], Any]], ...]  # other than epoch_us
    epoch_us: tuple[int, ...]  # timestamps to integer microseconds (SQLite)
    columnar: str | None = None  # PostgreSQL: the upsert of any number of rows (unnest)
    json_upsert: str | None = None  # PostgreSQL: the same, of JSON_ROWS rows at most
    columns: tuple[str, ...] = ()  # the columns of a row, in order
    objects: tuple[int, ...] = ()  # the positions of object fields (JSON text) in a row

    def rows(self, pairs: Sequence[tuple[Values, tuple[str, int, int, int]]]) -> list[Any]:
        """The driver values of records, one row after the other in one flat list (digest,
        import, raw chunk and line appended to each record's values)."""
        converters, times = self.converters, self.epoch_us
        flat: list[Any] = []
        for values, bookkeeping in pairs:
            base = len(flat)
            flat += values
            flat += bookkeeping
            for i in times:  # inline: the commonest conversion, two or three a record
                v = flat[base + i]
                if v is not None:
                    flat[base + i] = (v - EPOCH) // MICROSECOND
            for i, conv in converters:
                v = flat[base + i]
                if v is not None:
                    flat[base + i] = conv(v)
        return flat

    def statements(self, flat: list[Any]) -> list[tuple[str, Any]]:
        """(sql, parameters) that upsert the rows of `flat` (as `rows` makes it). PostgreSQL:
        one statement, of the rows as JSON up to JSON_ROWS rows, else of an array a column.
        SQLite: multi-row statements of the largest sizes that fit (see _sizes), then the
        one-row statement for a last row."""
        width = len(self.fields) + 4
        if self.columnar is not None and self.json_upsert is not None:
            if not flat:
                return []
            if len(flat) <= JSON_ROWS * width:
                return [(self.json_upsert, (self.json_rows(flat),))]
            return [(self.columnar, [flat[i::width] for i in range(width)])]
        out: list[tuple[str, Any]] = []
        start = 0
        for rows, sql in self.upsert_many:
            size = rows * width
            while len(flat) - start >= size:
                out.append((sql, tuple(flat[start : start + size])))
                start += size
        if start < len(flat):
            out.append((self.upsert, tuple(flat[start:])))
        return out

    def json_rows(self, flat: list[Any]) -> str:
        """The rows of `flat` as one JSON array of objects, a key a column, for
        `json_upsert`: orjson writes it in C, where psycopg dumps each array parameter of
        `columnar` in Python, with a cost of its own for each array that a webhook
        transaction's few rows do not repay (20 arrays of 34 alert rows: 149 us, this 20 us
        with its execution). Objects go in as the JSON text they are (orjson.Fragment), so a
        json column keeps that text; timestamps and dates in ISO 8601 with their offset;
        validated values hold no NaN or infinity, which JSON cannot say."""
        names, objects, width = self.columns, self.objects, len(self.columns)
        fragment = orjson.Fragment
        out = []
        for start in range(0, len(flat), width):
            row = flat[start : start + width]
            for i in objects:
                v = row[i]
                if v is not None:
                    row[i] = fragment(v)
            out.append(dict(zip(names, row, strict=True)))
        return orjson.dumps(out).decode()

    def states(self, conn: Connection, ids: list[str]) -> Iterator[tuple[Any, ...]]:
        """(id, digest, import, raw, line) of the stored records among `ids`."""
        for start in range(0, len(ids), 1000):
            condition, params = id_in(conn, ids[start : start + 1000])
            yield from driver(conn).execute(self.lookup + condition, params)


_PREPARED: dict[tuple[str, str], KindSQL] = {}


def _sizes(most: int) -> list[int]:
    """The rows of the multi-row statements, most first: `most`, 50, then powers of two from
    32 down to 2, so that a webhook transaction's few rows take a statement for each bit of
    their number (40 rows: 32 + 8, where steps of 50 and 5 took eight statements). A one-row
    remainder goes by the one-row statement. Statements of 64 to 256 rows as well made file
    imports 7-16 % slower (each kind's eleven statement texts overflow the driver's cache of
    prepared statements, and long statements cost SQLite much to prepare again)."""
    return [most] + [n for n in (50, 32, 16, 8, 4, 2) if n < most]


def kind_sql(conn: Connection, kind: str) -> KindSQL:
    dialect = conn.dialect.name  # the cache key only; the differences are in core/sql.py
    found = _PREPARED.get((dialect, kind))
    if found is not None:
        return found
    spec = KIND_BY_NAME[kind]
    table = RECORD_TABLES[kind]
    columns = (*spec.field_names, DIGEST, IMPORT, RAW, LINE)
    mark = placeholder(conn)
    native = native_times(conn)
    names = ", ".join(f'"{c}"' for c in columns)
    sets = ", ".join(f'"{c}" = excluded."{c}"' for c in columns if c != "id")
    one = "(" + ", ".join([mark] * len(columns)) + ")"
    per_statement = max(1, min(MAX_ROWS, MAX_PARAMS // len(columns)))

    def upsert(rows: int) -> str:
        return (
            f'INSERT INTO "{table.name}" ({names}) VALUES {", ".join([one] * rows)} '
            f'ON CONFLICT ("id") DO UPDATE SET {sets}'
        )

    lookup = (
        f'SELECT "id", "{DIGEST}", "{IMPORT}", "{RAW}", "{LINE}" FROM "{table.name}" '
        'WHERE "id" '
    )
    converters: list[tuple[int, Callable[[Any], Any]]] = []
    epoch_us: list[int] = []
    for i, f in enumerate(spec.fields):
        if f.type is FieldType.DATETIME and not native:
            epoch_us.append(i)  # as core.types.to_epoch_us; records are aware (validated)
        # objects come as their JSON text already (records.fast.values_of)
        elif f.type is FieldType.DATE and not native:
            converters.append((i, date.isoformat))
    columnar = json_upsert = None
    if arrays(conn):
        # one statement for any number of rows: psycopg converts the placeholders of a
        # statement of over 50 parameters anew each time, in Python (about 3 ms for 40 alert
        # rows here), where these short ones are converted once. Many rows (a file's batch
        # of 500) go as an array a column, in binary (%b; psycopg's text form of an array
        # escapes each element with a regular expression, 4-5 times slower), which
        # PostgreSQL reads faster than JSON; a few (a webhook transaction's) as one JSON text
        # (KindSQL.json_rows), read by json_populate_recordset in the table's row type
        columnar = (
            f'INSERT INTO "{table.name}" ({names}) {unnest_rows(conn, table, columns)} '
            f'ON CONFLICT ("id") DO UPDATE SET {sets}'
        )
        json_upsert = (
            f'INSERT INTO "{table.name}" ({names}) SELECT {names} '
            f'FROM json_populate_recordset(NULL::"{table.name}", %s::json) '
            f'ON CONFLICT ("id") DO UPDATE SET {sets}'
        )
    objects = tuple(i for i, f in enumerate(spec.fields) if f.type is FieldType.OBJECT)
    prepared = KindSQL(
        spec.field_names, upsert(1),
        tuple((n, upsert(n)) for n in _sizes(per_statement)),
        lookup,
        tuple(converters), tuple(epoch_us), columnar, json_upsert, columns, objects,
    )
    _PREPARED[(dialect, kind)] = prepared
    return prepared
