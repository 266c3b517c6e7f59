"""Many webhook payloads of patch connectors applied together: the writer's fast path.

The records come out as if the payloads had been applied one after the other with
`ingest.inbound.ingest_records`, each in its own transaction: the same merges, the same
record versions in the raw log, the same counts in each answer. What the batch shares:

* one SELECT per kind (`id IN (...)`, 500 ids a query) of the stored records that the
  batch's payloads update, with their digests;
* the merge of each payload's records with what is stored or what the earlier payloads of
  the batch made, and their validation, in memory, in order; a payload of which one record
  does not validate is refused alone (payload.error), and changes nothing, in memory either;
* one `apply_entries` (the importer's public function: one import, its raw log) for each run
  of consecutive payloads of one connector that update different records; a record that
  two payloads of the batch update starts a new run, so each of its versions is kept;
* one INSERT of the inbound payloads of the batch, each with the import that applied it
  (`inbound_payloads.import_id`; raw log lines of these imports carry no inbound_id).

Each payload's counts (inserted, replaced, unchanged) are worked out here from the digests,
and checked against the totals of `apply_entries`; a run that changes nothing makes no
import at all.

It serves connectors that patch stored records (`Connector.patch`) and have no `prepare`
step, when no [[incidents.auto_open]] rule is set; other payloads take the general path,
one SAVEPOINT each (api/writer.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection

from opsledger.connectors.base import Connector, NativeRecord
from opsledger.core.sql import driver, id_in, native_times, placeholder, result_processors
from opsledger.core.types import to_epoch_us
from opsledger.errors import RecordError
from opsledger.ingest.importer import (
    ImportResult,
    KindCounts,
    RecordState,
    Reservation,
    apply_entries,
    batches,
)
from opsledger.ingest.inbound import record_entry, storable_text
from opsledger.ingest.reader import Entry
from opsledger.ingest.rows import same_content, values_digest
from opsledger.kpis.policy import Policy
from opsledger.records.fast import Values, field_names, object_fields
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import (
    DIGEST,
    IMPORT,
    LINE,
    RAW,
    RECORD_TABLES,
    inbound_payloads,
)
from opsledger.records.validation import plain_value

CHUNK = 500


def batchable(connector: Connector, policy: Policy | None) -> bool:
    """Whether payloads of `connector` may take the fast path."""
    auto_open = policy is not None and bool(policy.incidents.auto_open)
    return connector.patch and connector.prepare is None and not auto_open


@dataclass
class Payload:
    """One payload of the batch: its input, and what applying it made."""

    connector: Connector
    records: list[NativeRecord]
    body: bytes
    items: list[Entry] = field(default_factory=list)
    counts: dict[str, KindCounts] = field(default_factory=dict)
    error: RecordError | None = None
    result: ImportResult | None = None


@dataclass
class _Stored:
    """A record as it stands: as stored (`row`: its values read back, and its digest), or as
    a payload of the batch made it (`values`: in its kind's field order, objects as JSON
    text). Its merge base and digest are worked out when needed (most records occur once in
    a batch)."""

    kind: str
    row: dict[str, Any] | None = None
    stored_digest: str | None = None
    values: Values | None = None

    @property
    def plain(self) -> dict[str, Any]:
        if self.row is not None:
            return _as_plain(self.kind, self.row.items())
        assert self.values is not None
        values = list(self.values)
        for i in object_fields(self.kind):
            if values[i] is not None:
                values[i] = orjson.loads(values[i])
        return _as_plain(self.kind, zip(field_names(self.kind), values, strict=True))

    @property
    def digest(self) -> str:
        if self.stored_digest is not None:
            return self.stored_digest
        assert self.values is not None
        return values_digest(self.values)


def _as_plain(kind: str, values: Any) -> dict[str, Any]:
    """A record as ingest.inbound.merge_updates sees a stored one: JSON values, absent
    fields left out, with its kind."""
    plain = {"kind": kind}
    plain.update((k, plain_value(v)) for k, v in values if v is not None)
    return plain


_SELECTS: dict[tuple[str, str], tuple[list[str], str, Any]] = {}


def _select(conn: Connection, kind: str) -> tuple[list[str], str, Any]:
    """The fields of `kind`, a SELECT of them and of the bookkeeping columns by id (to be
    followed by core.sql.id_in's condition), and the conversions of what the driver returns
    (built once per dialect)."""
    key = (conn.dialect.name, kind)
    found = _SELECTS.get(key)
    if found is None:
        table = RECORD_TABLES[kind]
        names = [f.name for f in KIND_BY_NAME[kind].fields]
        columns = [table.c[n] for n in (*names, DIGEST, IMPORT, RAW, LINE)]
        sql = (
            "SELECT " + ", ".join(f'"{c.name}"' for c in columns)
            + f' FROM "{table.name}" WHERE "id" '
        )
        found = _SELECTS[key] = (names, sql, result_processors(conn, columns))
    return found


Loaded = tuple[dict[tuple[str, str], _Stored], dict[tuple[str, str], RecordState]]


class Loading:
    """The lookup of the stored records of a batch, sent (one query per kind and CHUNK ids,
    on the driver) and read when `done` is called: so that the writer can send it in one
    round trip with its lock and its token check (core.sql.pipeline). `reservation`
    (PostgreSQL): the ids of the imports the batch makes and of their first raw chunks,
    taken ahead (importer.Reservation; `imports_needed` says how many it may make), so that
    applying the batch reads nothing back before its commit."""

    def __init__(
        self,
        conn: Connection,
        keys: set[tuple[str, str]],
        reservation: Reservation | None = None,
    ) -> None:
        by_kind: dict[str, list[str]] = {}
        for kind, rid in keys:
            by_kind.setdefault(kind, []).append(rid)
        self.keys = keys
        self._done: Loaded | None = None
        self._queries: list[tuple[str, list[str], Any, Any]] = []
        run = driver(conn)
        for kind, ids in by_kind.items():
            names, sql, processors = _select(conn, kind)
            for start in range(0, len(ids), CHUNK):
                condition, params = id_in(conn, ids[start : start + CHUNK])
                cursor = run.execute(sql + condition, params)
                self._queries.append((kind, names, processors, cursor))
        self.reservation = reservation

    def done(self) -> Loaded:
        """The stored records, and their states as the importer keeps them (so that it need
        not look them up again)."""
        if self._done is not None:
            return self._done
        found: dict[tuple[str, str], _Stored] = {}
        states: dict[tuple[str, str], RecordState] = {}
        for kind, names, processors, cursor in self._queries:
            n = len(names)
            for raw in cursor.fetchall():
                row = list(raw)
                for i, process in processors:
                    row[i] = process(row[i])
                values = dict(zip(names, row[:n], strict=True))
                key = (kind, values["id"])
                found[key] = _Stored(kind, row=values, stored_digest=row[n])
                states[key] = RecordState(row[n], row[n + 1], row[n + 2], row[n + 3])
        self._done = (found, states)
        return self._done


def payload_keys(records: list[NativeRecord]) -> set[tuple[str, str]]:
    """The (kind, id) of the records of a payload."""
    return {(r["kind"], r["id"]) for r in records}


def _merge(payload: Payload, state: dict[tuple[str, str], _Stored]) -> None:
    """Merge, validate and count one payload's records (payload.items, payload.counts); on
    a RecordError payload.error says why and `state` is left as it was."""
    connector = payload.connector
    merged: dict[tuple[str, str], NativeRecord] = {}
    for rec in payload.records:  # as ingest.inbound.merge_updates
        key = (rec["kind"], rec["id"])
        base = merged.get(key)
        if base is None:
            known = state.get(key)
            base = known.plain if known is not None else {}
        update = {k: v for k, v in rec.items() if v is not None}
        merged[key] = (
            connector.merge(base, update) if connector.merge is not None else {**base, **update}
        )
    items: list[Entry] = []
    where = f"{connector.name} payload"
    for n, rec in enumerate(merged.values(), 1):  # as ingest.inbound.ingest_records
        try:
            items.append(record_entry(rec, where, f"record {n}"))
        except RecordError as exc:
            payload.error = exc
            return
    for item in items:
        kind, values = item[0], item[1]
        key = (kind, values[0])
        counts = payload.counts.get(kind)
        if counts is None:
            counts = payload.counts[kind] = KindCounts()
        known = state.get(key)
        if known is None:
            counts.inserted += 1
        elif same_content(known.digest, values_digest(values), kind, values):
            counts.unchanged += 1
        else:
            counts.replaced += 1
        state[key] = _Stored(kind, values=values)
    payload.items = items


def _breaks(parts: Iterable[tuple[Connector, set[tuple[str, str]]]]) -> Iterator[bool]:
    """For each payload (its connector and the keys of its records), whether it begins a new
    run: consecutive payloads of one connector that update different records go together."""
    seen: set[tuple[str, str]] = set()
    last: Connector | None = None
    for connector, keys in parts:
        new = last is None or connector is not last or not keys.isdisjoint(seen)
        if new:
            seen = set()
        seen |= keys
        last = connector
        yield new


def _runs(payloads: list[Payload]) -> list[list[Payload]]:
    """The runs of `payloads` (each made one import)."""
    runs: list[list[Payload]] = []
    parts = ((p.connector, {(kind, values[0]) for kind, values, _, _ in p.items}) for p in payloads)
    for payload, new in zip(payloads, _breaks(parts), strict=True):
        if new:
            runs.append([])
        runs[-1].append(payload)
    return runs


def imports_needed(parts: list[tuple[Connector, list[NativeRecord]]]) -> int:
    """The most imports `apply_batch` makes of payloads (connector, records) in this order:
    its runs are of the payloads it accepts, whose merged records have the same keys, so
    they are as many or fewer."""
    return sum(_breaks((c, payload_keys(records)) for c, records in parts))


def _totals(counts: list[dict[str, KindCounts]]) -> dict[str, tuple[int, int, int]]:
    out: dict[str, list[int]] = {}
    for per_kind in counts:
        for kind, c in per_kind.items():
            t = out.setdefault(kind, [0, 0, 0])
            t[0] += c.inserted
            t[1] += c.replaced
            t[2] += c.unchanged
    return {k: (v[0], v[1], v[2]) for k, v in out.items() if any(v)}


def apply_batch(conn: Connection, payloads: list[Payload], loaded: Loading | None = None) -> None:
    """Apply `payloads` in order inside the caller's transaction. A payload whose records
    do not validate gets `error` and leaves no trace; each other gets its `result`. Raises
    RuntimeError if apply_entries counted otherwise than this module (the caller then rolls
    back and applies the payloads the general way). A run of payloads that changes nothing
    makes no import at all (apply_entries would make one and delete it again). `loaded`: the
    lookup of the stored records, sent already in this transaction (it must cover every
    record of `payloads`); without it, it is made here."""
    keys: set[tuple[str, str]] = set()
    for p in payloads:
        keys |= payload_keys(p.records)
    if loaded is None or not keys <= loaded.keys:
        loaded = Loading(conn, keys)
    reservation = loaded.reservation
    state, stored = loaded.done()
    for payload in payloads:
        _merge(payload, state)
    accepted = [p for p in payloads if p.error is None]
    now = datetime.now(UTC)
    inbound: list[tuple[str, int | None, str]] = []
    for run in _runs(accepted):
        source = f"{run[0].connector.name} webhook"
        expected = _totals([p.counts for p in run])
        import_id: int | None = None
        if any(c[0] + c[1] for c in expected.values()):
            total = KindCounts(*(sum(c[i] for c in expected.values()) for i in range(3)))
            entries = [e for p in run for e in p.items]
            done = apply_entries(
                conn, batches(entries), source, known=stored, expect=total,
                first_format=entries[0][2],
                reserved=reservation.take() if reservation is not None else None,
            )
            if _totals([done.counts]) != expected:
                raise RuntimeError(f"counts differ: {done.counts} vs {[p.counts for p in run]}")
            import_id = done.import_id
        # else every record is as stored (a repeated notification): no import, as
        # apply_entries would leave none
        for p in run:
            p.result = ImportResult(source, import_id or 0, p.counts)
            inbound.append(
                (p.connector.name, import_id, storable_text(p.body.decode("utf-8", "replace")))
            )
    if inbound:
        _insert_inbound(conn, now, inbound)


def _insert_inbound(
    conn: Connection, now: datetime, rows: list[tuple[str, int | None, str]]
) -> None:
    """The inbound payloads of a batch in ONE statement (an executemany is a statement a
    row on PostgreSQL, which plans each: 8 payloads took 1.0 ms there, one statement a
    third of that), INBOUND_ROWS rows at most a statement."""
    mark = placeholder(conn)
    received = now if native_times(conn) else to_epoch_us(now)
    one = f"({mark}, {mark}, {mark}, {mark})"
    for start in range(0, len(rows), INBOUND_ROWS):
        part = rows[start : start + INBOUND_ROWS]
        sql = _INBOUND_SQL + ", ".join([one] * len(part))
        params = [v for name, import_id, body in part for v in (name, received, import_id, body)]
        driver(conn).execute(sql, tuple(params))


INBOUND_ROWS = 500
_INBOUND_SQL = (
    f'INSERT INTO "{inbound_payloads.name}" ("connector", "received_at", "import_id", "body") '
    "VALUES "
)
