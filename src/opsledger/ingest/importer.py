"""Applying records to the ledger: all-or-nothing per source, idempotent, raw input kept.

Items are applied in batches. For each batch the importer looks up the stored digests of its
ids (one query per kind), decides for every item whether it inserts, replaces or leaves a
record unchanged, and stores the rows (multi-row upserts), the raw-log chunk and the replaced
versions. (A writer thread that stored one batch while the next was validated was tried and
measured slower on two cores: the GIL hand-overs cost more than the overlap gained;
docs/benchmarks.md.)
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from operator import itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Connection, delete, select

from opsledger.core.sql import (
    arrays,
    driver,
    id_in,
    in_pipeline,
    native_times,
    pipeline,
    placeholder,
    returning_id,
    unnest_rows,
)
from opsledger.core.types import to_epoch_us
from opsledger.ingest.rawlog import fill_chunk, new_chunk, write_chunk
from opsledger.ingest.reader import BLOCK, Entry, Item, Source, entry, read_entries
from opsledger.ingest.rows import digest, kind_sql, same_content, values_digest
from opsledger.records.fast import Values
from opsledger.records.tables import RECORD_TABLES, imports, raw_chunks, record_versions

__all__ = [
    "BATCH", "RESERVE_IDS", "ImportResult", "KindCounts", "RecordState", "Reservation",
    "Reserved",
    "apply_entries", "apply_items", "batches", "digest", "import_source",
]

BATCH = BLOCK


@dataclass
class KindCounts:
    inserted: int = 0
    replaced: int = 0
    unchanged: int = 0

    @property
    def total(self) -> int:
        return self.inserted + self.replaced + self.unchanged


@dataclass
class ImportResult:
    source: str
    import_id: int
    counts: dict[str, KindCounts] = field(default_factory=dict)

    def totals(self) -> KindCounts:
        t = KindCounts()
        for c in self.counts.values():
            t.inserted += c.inserted
            t.replaced += c.replaced
            t.unchanged += c.unchanged
        return t


class RecordState(NamedTuple):
    """A record as it stands: digest, import, and its raw line (chunk seq, line)."""

    digest: str
    import_id: int
    raw: int
    line: int


# a RecordState from a tuple without NamedTuple's __new__, which is Python code (once a record)
_make_state = tuple.__new__

# The most ids of a kind an import remembers having stored into a table that was empty when
# it began (about 100 bytes each); past that it asks the database again (_Applier._known).
KNOWN_IDS = 1_000_000


class _Applier:
    """Applies the items of one import (or, in a rebuild, of the raw log) in batches: each item
    is compared with the record as it stands; the lines that change something are written to
    the raw log, the records upserted, and replaced versions kept in record_versions."""

    def __init__(
        self,
        conn: Connection,
        import_id: int,
        lenient: bool,
        inbound_id: int | None = None,
        bulk: bool = False,
        known: dict[tuple[str, str], RecordState] | None = None,
        premade: tuple[str, int] | None = None,
        unwritten: bool = False,
    ) -> None:
        self.conn = conn
        self.premade = premade  # (form, seq): a chunk started with the import, not yet used
        # the premade chunk's row is not written yet (its seq was reserved): it is written
        # whole when its lines are known, or not at all
        self.unwritten = premade[1] if premade is not None and unwritten else None
        self.known = known  # the caller's states of every id applied (see apply_items)
        self.import_id = import_id
        self.lenient = lenient
        self.inbound_id = inbound_id
        self.counts: dict[str, KindCounts] = {}
        # With `bulk` (a file import, a rebuild), each kind's table is checked once for rows;
        # while it had none when this import began, only ids this import stored can be found,
        # and they are remembered here (None: ask the database). The check costs a query a
        # kind: it pays off over the thousands of records of a file, not for a webhook's few.
        self.bulk = bulk
        self._known: dict[str, set[str] | None] = {}

    def _stored_ids(self, kind: str) -> set[str] | None:
        """The ids of `kind` this import stored, when they are the only ones stored."""
        if not self.bulk:
            return None
        if kind not in self._known:
            table = RECORD_TABLES[kind]
            row = self.conn.execute(select(table.c.id).limit(1)).first()
            self._known[kind] = set() if row is None else None
        return self._known[kind]

    def _lookup(self, entries: list[Entry]) -> dict[tuple[str, str], RecordState]:
        wanted: dict[str, set[str]] = {}
        for kind, values, _, _ in entries:
            ids = wanted.get(kind)
            if ids is None:
                ids = wanted[kind] = set()
            ids.add(values[0])  # the id is every kind's first field
        state: dict[tuple[str, str], RecordState] = {}
        for kind, ids in wanted.items():
            known = self._stored_ids(kind)
            if known is not None:
                ids &= known  # no other id of this kind is stored
                if not ids:
                    continue
            for rid, dig, imp, raw, line in kind_sql(self.conn, kind).states(self.conn, list(ids)):
                state[(kind, rid)] = _make_state(RecordState, (dig, imp, raw, line))
        return state

    def _remember(self, rows: dict[str, dict[tuple[str, str], tuple[Values, RecordState]]]) -> None:
        for kind, kind_rows in rows.items():
            known = self._known.get(kind)
            if known is not None:
                known.update(map(itemgetter(1), kind_rows))
                if len(known) > KNOWN_IDS:
                    self._known[kind] = None

    def _pre_import(self, kind: str, rid: str, pending: dict[tuple[str, str], dict[str, Any]]
                    ) -> tuple[RecordState | None, int | None]:
        """The version that this import replaced (None: the record is new in this import),
        and the record_versions row that keeps it when it is already stored."""
        kept = pending.get((kind, rid))
        if kept is not None:
            return RecordState(kept["digest"], kept["import_id"], kept["raw"], kept["line"]), None
        if in_pipeline(self.conn):  # a caller's pipeline block (api/batch.py never gets here)
            raise RuntimeError("a record twice in one import inside a pipeline block")
        row = self.conn.execute(
            select(record_versions.c.id, record_versions.c.digest, record_versions.c.import_id,
                   record_versions.c.raw, record_versions.c.line)
            .where(record_versions.c.kind == kind, record_versions.c.record_id == rid,
                   record_versions.c.replaced_by == self.import_id)
            .order_by(record_versions.c.id.desc())
            .limit(1)
        ).first()
        if row is None:
            return None, None
        return RecordState(row[1], row[2], row[3], row[4]), int(row[0])

    def apply(self, entries: list[Entry], pointers: list[tuple[int, int]] | None) -> None:
        """Apply a batch of entries. In a rebuild `pointers` gives the raw line each entry
        comes from: the lines are in the log already, so the records point at them and none
        is written."""
        state = self.known if self.known is not None else self._lookup(entries)
        # each record changed, by kind and id (a later line of the same id replaces it)
        rows: dict[str, dict[tuple[str, str], tuple[Values, RecordState]]] = {}
        replaced: dict[tuple[str, str], dict[str, Any]] = {}  # new record_versions rows
        dropped: list[int] = []  # record_versions rows that are current again
        chunks: dict[str, tuple[int, list[str | bytes]]] = {}  # form -> (seq, lines)
        all_counts = self.counts
        import_id = self.import_id
        lines: list[str | bytes] = []  # the lines of the chunk of the last form seen
        last_fmt = None
        seq = 0
        for n, (kind, values, fmt, payload) in enumerate(entries):
            key = (kind, values[0])
            dig = values_digest(values)
            counts = all_counts.get(kind)
            if counts is None:
                counts = all_counts[kind] = KindCounts()
            old = state.get(key)
            new = None
            if old is None:
                counts.inserted += 1
            elif old.digest == dig or (
                old.import_id != import_id and same_content(old.digest, dig, kind, values)
            ):
                counts.unchanged += 1
                continue
            elif old.import_id != import_id:
                counts.replaced += 1
                replaced[key] = {"kind": kind, "record_id": key[1], "import_id": old.import_id,
                                 "digest": old.digest, "raw": old.raw, "line": old.line,
                                 "replaced_by": import_id}
            else:
                # the same id earlier in this import: the last one wins, judged against the
                # version before this import, so that a re-import changes nothing
                pre, kept_id = self._pre_import(kind, key[1], replaced)
                if pre is not None and same_content(pre.digest, dig, kind, values):
                    counts.replaced -= 1
                    counts.unchanged += 1
                    if kept_id is not None:
                        dropped.append(kept_id)
                    replaced.pop(key, None)
                    new = pre
            if pointers is not None:
                seq, line = pointers[n]
            else:
                if fmt is not last_fmt:
                    chunk = chunks.get(fmt)
                    if chunk is None:
                        chunk = chunks[fmt] = (self._new_chunk(fmt), [])
                    seq, lines = chunk
                    last_fmt = fmt
                line = len(lines)
                lines.append(payload)
            st = state[key] = (
                new if new is not None else _make_state(RecordState, (dig, import_id, seq, line))
            )
            kind_rows = rows.get(kind)
            if kind_rows is None:
                kind_rows = rows[kind] = {}
            kind_rows[key] = (values, st)
        self._store(self._statements(rows), chunks, replaced, dropped)
        self._remember(rows)

    def _statements(self, rows: dict[str, dict[tuple[str, str], tuple[Values, RecordState]]]
                    ) -> list[tuple[str, Any]]:
        """The upserts of the changed records, ready for the driver."""
        statements: list[tuple[str, Any]] = []
        for kind, pairs in rows.items():
            prepared = kind_sql(self.conn, kind)
            statements += prepared.statements(prepared.rows(list(pairs.values())))
        return statements

    def _store(
        self,
        statements: list[tuple[str, Any]],
        chunks: dict[str, tuple[int, list[str | bytes]]],
        replaced: dict[tuple[str, str], dict[str, Any]],
        dropped: list[int],
    ) -> None:
        conn = self.conn
        with pipeline(conn):  # PostgreSQL: one round trip for the chunks and the upserts
            for fmt, (seq, lines) in chunks.items():
                if seq == self.unwritten:
                    write_chunk(conn, seq, self.import_id, fmt, self.lenient, self.inbound_id,
                                lines)
                    self.unwritten = None
                else:
                    fill_chunk(conn, seq, lines)
            run = driver(conn)
            for sql, params in statements:
                run.execute(sql, params)
            if replaced:
                keep_versions(conn, list(replaced.values()))
            if dropped:
                condition, params = id_in(conn, dropped)
                run.execute(f'DELETE FROM "{record_versions.name}" WHERE "id" ' + condition,
                            params)

    def _new_chunk(self, fmt: str) -> int:
        if self.premade is not None and self.premade[0] == fmt:
            seq = self.premade[1]
            self.premade = None
            return seq
        return new_chunk(self.conn, self.import_id, fmt, self.lenient, self.inbound_id)


def batches(entries: list[Entry]) -> Iterator[list[Entry]]:
    """`entries` in the importer's batches, for apply_entries."""
    for start in range(0, len(entries), BATCH):
        yield entries[start : start + BATCH]


def apply_items(
    conn: Connection,
    items: Iterable[Item],
    source: str,
    lenient: bool = False,
    inbound_id: int | None = None,
    known: dict[tuple[str, str], RecordState] | None = None,
) -> ImportResult:
    """Apply items inside the caller's transaction (the caller commits or rolls back).

    `known`: the stored state of every (kind, id) the items name, as the caller read it in
    this transaction (a key absent: not stored), so that the importer does not look them up
    again; it is updated as the items are applied, so the same dict serves the next call in
    the transaction."""
    it = iter(items)

    def batches() -> Iterator[list[Entry]]:
        while batch := list(islice(it, BATCH)):
            yield [entry(item) for item in batch]

    return apply_entries(conn, batches(), source, lenient, inbound_id, known=known)


def apply_entries(
    conn: Connection,
    batches: Iterable[list[Entry]],
    source: str,
    lenient: bool = False,
    inbound_id: int | None = None,
    bulk: bool = False,
    known: dict[tuple[str, str], RecordState] | None = None,
    expect: KindCounts | None = None,
    first_format: str | None = None,
    reserved: Reserved | None = None,
) -> ImportResult:
    """Apply batches of entries as one import, inside the caller's transaction. `bulk`: many
    records (see _Applier); `known`: see apply_items; `expect`: the totals the caller expects
    (the webhook batch works them out first), written with the imports row so that it need
    not be updated at the end (it is, if they differ); `first_format`: the form of the first
    entry, when the caller knows it, so that its raw chunk is started with the imports row
    (one statement on PostgreSQL); `reserved` (with `first_format`): the import's id and its
    first chunk's seq, taken ahead (Reservation): nothing is read back, so every statement
    of the import may go in the caller's pipeline block, and the chunk's row is written
    whole once its lines are known."""
    now = datetime.now(UTC)
    counts = (0, 0, 0) if expect is None else (expect.inserted, expect.replaced, expect.unchanged)
    import_id, premade = _start_import(
        conn, source, now, counts, first_format, lenient, inbound_id, reserved
    )
    applier = _Applier(
        conn, import_id, lenient, inbound_id, bulk, known, premade, reserved is not None
    )
    # the cyclic garbage collector only costs time here: the batch creates no cycles
    collecting = gc.isenabled()
    gc.disable()
    try:
        for batch in batches:
            applier.apply(batch, None)
    finally:
        if collecting:
            gc.enable()
    if applier.premade is not None and applier.unwritten is None:
        # started for a form no entry had: not left empty
        driver(conn).execute(
            _DROP_CHUNK.format(mark=placeholder(conn)), (applier.premade[1],)
        )
    result = ImportResult(source, import_id, applier.counts)
    t = result.totals()
    if t.inserted + t.replaced == 0:
        # nothing changed: leave no trace, so that a repeated import changes nothing at all
        # (lines that changed a record and a later line of the same id that changed it back
        # were logged: they go too)
        conn.execute(delete(raw_chunks).where(raw_chunks.c.import_id == import_id))
        conn.execute(imports.delete().where(imports.c.id == import_id))
        return result
    if (t.inserted, t.replaced, t.unchanged) != counts:
        driver(conn).execute(
            _COUNT_IMPORT.format(mark=placeholder(conn)),
            (t.inserted, t.replaced, t.unchanged, import_id),
        )
    return result


# The two statements of every import, on the driver (core.sql.driver): the webhook writer
# runs an import a transaction of a few payloads, and SQLAlchemy's execution of a statement
# cost more than SQLite's work on these rows.
_NEW_IMPORT = (
    f'INSERT INTO "{imports.name}" ("source", "imported_at", "inserted", "replaced", '
    '"unchanged") VALUES ({mark}, {mark}, {mark}, {mark}, {mark}) RETURNING "id"'
)
_RESERVED_IMPORT = (
    f'INSERT INTO "{imports.name}" ("id", "source", "imported_at", "inserted", "replaced", '
    '"unchanged") VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark})'
)
_DROP_CHUNK = f'DELETE FROM "{raw_chunks.name}" WHERE "seq" = {{mark}}'
_COUNT_IMPORT = (
    f'UPDATE "{imports.name}" SET "inserted" = {{mark}}, "replaced" = {{mark}}, '
    '"unchanged" = {mark} WHERE "id" = {mark}'
)


def _start_import(
    conn: Connection,
    source: str,
    now: datetime,
    counts: tuple[int, int, int],
    fmt: str | None,
    lenient: bool,
    inbound_id: int | None,
    reserved: Reserved | None = None,
) -> tuple[int, tuple[str, int] | None]:
    """The imports row, and with `fmt` the import's first raw chunk, of that form: its id, and
    (form, chunk seq). On PostgreSQL both rows come from one statement (a round trip less for
    each webhook transaction); elsewhere, from two. With `reserved` (and `fmt`) the ids are
    those reserved: the imports row is written without reading anything back, and the chunk
    is left for the applier to write whole."""
    when = now if native_times(conn) else to_epoch_us(now)
    if reserved is not None and fmt is not None:
        driver(conn).execute(
            _RESERVED_IMPORT.format(mark=placeholder(conn)),
            (reserved.import_id, source, when, *counts),
        )
        return reserved.import_id, (fmt, reserved.seq)
    if fmt is None or not arrays(conn):
        import_id = returning_id(conn, _NEW_IMPORT.format(mark=placeholder(conn)),
                                 (source, when, *counts))
        if fmt is None:
            return import_id, None
        return import_id, (fmt, new_chunk(conn, import_id, fmt, lenient, inbound_id))
    row = driver(conn).execute(
        _IMPORT_AND_CHUNK, (source, when, *counts, fmt, lenient, b"", inbound_id)
    ).fetchall()[0]
    return int(row[0]), (fmt, int(row[1]))


# PostgreSQL (%s placeholders): the imports row and the first chunk, one statement
_IMPORT_AND_CHUNK = (
    "WITH i AS (" + _NEW_IMPORT.format(mark="%s") + ") "
    f'INSERT INTO "{raw_chunks.name}" ("import_id", "format", "lenient", "lines", "body", '
    '"inbound_id") SELECT i."id", %s, %s, 0, %s, %s FROM i RETURNING "import_id", "seq"'
)


class Reserved(NamedTuple):
    """An import id and a raw chunk seq taken from their sequences ahead of the import."""

    import_id: int
    seq: int


class Reservation:
    """Import ids and as many raw chunk seqs, taken from their sequences (PostgreSQL) by a
    statement that the caller queues in a pipeline block of its own (the webhook writer:
    with its locks and lookup), so that the imports of its transaction need no round trip of
    their own (apply_entries(reserved=...)). Taken after the writer's locks, in the
    transaction, they keep the order of the transactions that touch the same records, as
    ids taken at the INSERT did. An id not used is a gap in the sequence, as a rolled-back
    import leaves. `cursor`: of a statement whose rows are (import id, chunk seq), one per
    import: `ahead` runs the simplest; a caller may put RESERVE_IDS in a statement of its
    own."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._left: list[Reserved] | None = None

    @classmethod
    def ahead(cls, conn: Connection, n: int) -> Reservation:
        """`n` imports' ids."""
        return cls(driver(conn).execute(f"SELECT {RESERVE_IDS} FROM generate_series(1, %s)", (n,)))

    def take(self) -> Reserved | None:
        """The next pair; None when all are taken."""
        if self._left is None:
            self._left = [Reserved(int(i), int(s)) for i, s in self._cursor.fetchall()]
            self._left.reverse()
        return self._left.pop() if self._left else None


# the select list of a Reservation's statement: one row an import
RESERVE_IDS = (
    f"nextval(pg_get_serial_sequence('{imports.name}', 'id')), "
    f"nextval(pg_get_serial_sequence('{raw_chunks.name}', 'seq'))"
)


def keep_versions(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """record_versions rows (the versions an import replaced), on the driver: one statement of
    an array a column on PostgreSQL, an executemany on SQLite."""
    run = driver(conn)
    if arrays(conn):
        sql = _KEEP_VERSIONS + unnest_rows(conn, record_versions, _VERSION_COLUMNS)
        run.execute(sql, [[r[c] for r in rows] for c in _VERSION_COLUMNS])
    else:
        marks = ", ".join([placeholder(conn)] * len(_VERSION_COLUMNS))
        sql = _KEEP_VERSIONS + f"VALUES ({marks})"
        run.executemany(sql, [tuple(r[c] for c in _VERSION_COLUMNS) for r in rows])


_VERSION_COLUMNS = ("kind", "record_id", "import_id", "digest", "raw", "line", "replaced_by")
_KEEP_VERSIONS = (  # then VALUES (...), or core.sql.unnest_rows
    f'INSERT INTO "{record_versions.name}" ('
    + ", ".join(f'"{c}"' for c in _VERSION_COLUMNS) + ") "
)


def import_source(
    conn: Connection,
    src: Source,
    lenient: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    batches = read_entries(src, lenient, progress, BATCH)
    return apply_entries(conn, batches, src.name, lenient, bulk=True)
