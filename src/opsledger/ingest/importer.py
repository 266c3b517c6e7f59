"""Applying records to the ledger: all-or-nothing per source, idempotent, raw input kept."""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from opsledger.core.sql import bulk_execute, upsert
from opsledger.ingest.reader import Item, Source, read_items
from opsledger.records.spec import KINDS
from opsledger.records.tables import DIGEST, IMPORT, RECORD_TABLES, imports, raw_events
from opsledger.records.validation import Record

BATCH = 2000


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


def digest(record: Record) -> str:
    """A digest of a normalised record's content (absent fields left out)."""
    body = orjson.dumps({k: v for k, v in record.items() if v is not None},
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(body, digest_size=16).hexdigest()


_UPDATE_COLUMNS = {
    k.name: [f.name for f in k.fields if f.name != "id"] + [DIGEST, IMPORT] for k in KINDS
}


def upsert_rows(conn: Connection, kind: str, rows: list[dict[str, Any]]) -> None:
    if rows:
        table = RECORD_TABLES[kind]
        bulk_execute(conn, upsert(conn, table, _UPDATE_COLUMNS[kind]), table, rows, "upsert")


class _Applier:
    """Batches items of one import: classify against stored digests, log raw, upsert."""

    def __init__(
        self, conn: Connection, import_id: int, lenient: bool, inbound_id: int | None = None
    ) -> None:
        self.inbound_id = inbound_id
        self.conn = conn
        self.import_id = import_id
        self.lenient = lenient
        self.pending: list[Item] = []
        self.counts: dict[str, KindCounts] = {}

    def add(self, item: Item) -> None:
        self.pending.append(item)
        if len(self.pending) >= BATCH:
            self.flush()

    def flush(self) -> None:
        by_kind: dict[str, list[Item]] = {}
        for item in self.pending:
            by_kind.setdefault(item.kind, []).append(item)
        self.pending = []
        events: list[dict[str, Any]] = []
        for kind, items in by_kind.items():
            events.extend(self._apply_kind(kind, items))
        if events:
            bulk_execute(self.conn, insert(raw_events), raw_events, events, "insert")

    def _pre_import(self, kind: str, rid: str) -> tuple[str | None, int | None]:
        """Digest and import of a record as it was before this import (from the raw log)."""
        row = self.conn.execute(
            select(raw_events.c.digest, raw_events.c.import_id)
            .where(
                raw_events.c.kind == kind,
                raw_events.c.record_id == rid,
                raw_events.c.import_id < self.import_id,
            )
            .order_by(raw_events.c.seq.desc())
            .limit(1)
        ).first()
        return (row[0], row[1]) if row else (None, None)

    def _apply_kind(self, kind: str, items: list[Item]) -> list[dict[str, Any]]:
        table = RECORD_TABLES[kind]
        ids = list({it.record["id"] for it in items})
        state: dict[str, tuple[str, int]] = {}
        for chunk in range(0, len(ids), 500):
            part = ids[chunk : chunk + 500]
            for rid, dig, imp in self.conn.execute(
                select(table.c.id, table.c[DIGEST], table.c[IMPORT]).where(table.c.id.in_(part))
            ):
                state[rid] = (dig, imp)
        counts = self.counts.setdefault(kind, KindCounts())
        rows: dict[str, dict[str, Any]] = {}
        events: dict[str, dict[str, Any]] = {}
        for it in items:
            rid = it.record["id"]
            dig = digest(it.record)
            old_digest, old_import = state.get(rid, (None, None))
            if old_digest == dig:
                counts.unchanged += 1
                continue
            import_id = self.import_id
            if old_import == self.import_id:
                # the same id earlier in this file: the last one wins, judged against the
                # record as it was before this import, so a re-import changes nothing
                pre_digest, pre_import = self._pre_import(kind, rid)
                if pre_digest is None:
                    counts.inserted -= 1
                else:
                    counts.replaced -= 1
                events.pop(rid, None)
                self.conn.execute(
                    raw_events.delete().where(
                        raw_events.c.import_id == self.import_id,
                        raw_events.c.kind == kind,
                        raw_events.c.record_id == rid,
                    )
                )
                old_digest = pre_digest
                if pre_digest == dig and pre_import is not None:
                    counts.unchanged += 1
                    import_id = pre_import
            if import_id == self.import_id:
                if old_digest is None:
                    counts.inserted += 1
                else:
                    counts.replaced += 1
                events[rid] = {
                    "import_id": self.import_id,
                    "kind": kind,
                    "record_id": rid,
                    "format": it.fmt,
                    "lenient": self.lenient,
                    "payload": it.payload,
                    "digest": dig,
                    "inbound_id": self.inbound_id,
                }
            state[rid] = (dig, import_id)
            row = dict(it.record)
            row[DIGEST] = dig
            row[IMPORT] = import_id
            rows[rid] = row
        upsert_rows(self.conn, kind, list(rows.values()))
        return list(events.values())


def apply_items(
    conn: Connection,
    items: Iterable[Item],
    source: str,
    lenient: bool = False,
    inbound_id: int | None = None,
) -> ImportResult:
    """Apply items inside the caller's transaction (the caller commits or rolls back)."""
    inserted = conn.execute(
        insert(imports).values(
            source=source,
            imported_at=datetime.now(UTC),
            inserted=0,
            replaced=0,
            unchanged=0,
        )
    ).inserted_primary_key
    assert inserted is not None
    import_id = int(inserted[0])
    applier = _Applier(conn, import_id, lenient, inbound_id)
    # the cyclic garbage collector only costs time here: the batch creates no cycles
    collecting = gc.isenabled()
    gc.disable()
    try:
        for item in items:
            applier.add(item)
        applier.flush()
    finally:
        if collecting:
            gc.enable()
    result = ImportResult(source, import_id, applier.counts)
    t = result.totals()
    if t.inserted + t.replaced == 0:
        # nothing changed: leave no trace, so that a repeated import changes nothing at all
        conn.execute(imports.delete().where(imports.c.id == import_id))
        return result
    conn.execute(
        update(imports)
        .where(imports.c.id == import_id)
        .values(inserted=t.inserted, replaced=t.replaced, unchanged=t.unchanged)
    )
    return result


def import_source(
    conn: Connection,
    src: Source,
    lenient: bool = False,
    progress: Callable[[int], None] | None = None,
) -> ImportResult:
    return apply_items(conn, read_items(src, lenient, progress), src.name, lenient)

