"""Many webhook payloads of patch connectors applied together: the writer's fast path.

The records come out as if the payloads had been applied one after the other with
`ingest.inbound.ingest_records`, each in its own transaction: the same merges, the same
record versions in the raw log, the same counts in each answer. What the batch shares:

* one SELECT per kind (`id IN (...)`, 500 ids a query) of the stored records that the
  batch's payloads update, with their digests;
* the merge of each payload's records with what is stored or what the earlier payloads of
  the batch made, and their validation, in memory, in order; a payload of which one record
  does not validate is refused alone (payload.error), and changes nothing, in memory either;
* one `apply_items` (the importer's public function: one import, its raw log) for each run
  of consecutive payloads of one connector that update different records; a record that
  two payloads of the batch update starts a new run, so each of its versions is kept;
* one INSERT of the inbound payloads of the batch, each with the import that applied it
  (`inbound_payloads.import_id`; raw log lines of these imports carry no inbound_id).

Each payload's counts (inserted, replaced, unchanged) are worked out here from the digests,
and checked against the totals of `apply_items`.

It serves connectors that patch stored records (`Connector.patch`) and have no `prepare`
step, when no [[incidents.auto_open]] rule is set; other payloads take the general path,
one SAVEPOINT each (api/writer.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, bindparam, select

from opsledger.connectors.base import Connector, NativeRecord
from opsledger.core.sql import native_times, placeholder
from opsledger.core.types import to_epoch_us
from opsledger.errors import RecordError
from opsledger.ingest.importer import (
    ImportResult,
    KindCounts,
    RecordState,
    apply_items,
    digest,
)
from opsledger.ingest.inbound import record_line, storable_text
from opsledger.ingest.reader import Item
from opsledger.ingest.rows import same_content, values_digest
from opsledger.kpis.policy import Policy
from opsledger.records.fast import values_of
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import (
    DIGEST,
    IMPORT,
    LINE,
    RAW,
    RECORD_TABLES,
    inbound_payloads,
)
from opsledger.records.validation import plain_value, validate_json_line

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
    items: list[Item] = field(default_factory=list)
    counts: dict[str, KindCounts] = field(default_factory=dict)
    error: RecordError | None = None
    result: ImportResult | None = None


@dataclass
class _Stored:
    """A record as it stands after the payloads merged so far, or as stored. Its merge
    base and digest are worked out when needed (most records occur once in a batch)."""

    kind: str
    values: dict[str, Any]  # the validated record, or the stored row's values
    stored_digest: str | None = None  # the stored one, until a payload of the batch merges

    @property
    def plain(self) -> dict[str, Any]:
        return _as_plain(self.kind, self.values.items())

    @property
    def digest(self) -> str:
        return (self.stored_digest if self.stored_digest is not None
                else digest(self.kind, self.values))


def _as_plain(kind: str, values: Any) -> dict[str, Any]:
    """A record as ingest.inbound.merge_updates sees a stored one: JSON values, absent
    fields left out, with its kind."""
    plain = {"kind": kind}
    plain.update((k, plain_value(v)) for k, v in values if v is not None)
    return plain


_SELECTS: dict[str, tuple[list[str], Select[Any]]] = {}


def _select(kind: str) -> tuple[list[str], Select[Any]]:
    """The fields of `kind` and a SELECT of them and the digest by `id IN :ids` (built once)."""
    found = _SELECTS.get(kind)
    if found is None:
        table = RECORD_TABLES[kind]
        names = [f.name for f in KIND_BY_NAME[kind].fields]
        stmt: Select[Any] = select(
            *(table.c[n] for n in names), table.c[DIGEST], table.c[IMPORT], table.c[RAW],
            table.c[LINE],
        ).where(table.c.id.in_(bindparam("ids", expanding=True)))
        found = _SELECTS[kind] = (names, stmt)
    return found


def _load(conn: Connection, keys: set[tuple[str, str]]
          ) -> tuple[dict[tuple[str, str], _Stored], dict[tuple[str, str], RecordState]]:
    """The stored records of `keys`, and their states as the importer keeps them (so that
    it need not look them up again): one query per kind and CHUNK ids."""
    by_kind: dict[str, list[str]] = {}
    for kind, rid in keys:
        by_kind.setdefault(kind, []).append(rid)
    found: dict[tuple[str, str], _Stored] = {}
    states: dict[tuple[str, str], RecordState] = {}
    for kind, ids in by_kind.items():
        names, stmt = _select(kind)
        n = len(names)
        for start in range(0, len(ids), CHUNK):
            for row in conn.execute(stmt, {"ids": ids[start : start + CHUNK]}):
                values = dict(zip(names, row[:n], strict=True))
                key = (kind, values["id"])
                found[key] = _Stored(kind, values, row[n])
                states[key] = RecordState(row[n], row[n + 1], row[n + 2], row[n + 3])
    return found, states


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
    items: list[Item] = []
    for n, rec in enumerate(merged.values(), 1):  # as ingest.inbound.ingest_records
        try:
            line = record_line(rec)
            kind, record = validate_json_line(line, f"{connector.name} payload", f"record {n}")
        except RecordError as exc:
            payload.error = exc
            return
        items.append(Item(kind, record, "json", line))
    for item in items:
        key = (item.kind, item.record["id"])
        counts = payload.counts.setdefault(item.kind, KindCounts())
        known = state.get(key)
        if known is None:
            counts.inserted += 1
        else:
            values = values_of(item.kind, item.record)
            if same_content(known.digest, values_digest(values), item.kind, values):
                counts.unchanged += 1
            else:
                counts.replaced += 1
        state[key] = _Stored(item.kind, item.record)
    payload.items = items


def _runs(payloads: list[Payload]) -> list[list[Payload]]:
    """Consecutive payloads of one connector that update different records, together."""
    runs: list[list[Payload]] = []
    seen: set[tuple[str, str]] = set()
    for payload in payloads:
        keys = {(it.kind, it.record["id"]) for it in payload.items}
        if not runs or keys & seen or payload.connector is not runs[-1][0].connector:
            runs.append([])
            seen = set()
        runs[-1].append(payload)
        seen |= keys
    return runs


def _totals(counts: list[dict[str, KindCounts]]) -> dict[str, tuple[int, int, int]]:
    out: dict[str, list[int]] = {}
    for per_kind in counts:
        for kind, c in per_kind.items():
            t = out.setdefault(kind, [0, 0, 0])
            t[0] += c.inserted
            t[1] += c.replaced
            t[2] += c.unchanged
    return {k: (v[0], v[1], v[2]) for k, v in out.items() if any(v)}


def apply_batch(conn: Connection, payloads: list[Payload]) -> None:
    """Apply `payloads` in order inside the caller's transaction. A payload whose records
    do not validate gets `error` and leaves no trace; each other gets its `result`. Raises
    RuntimeError if apply_items counted otherwise than this module (the caller then rolls
    back and applies the payloads one by one)."""
    state, stored = _load(conn, {(r["kind"], r["id"]) for p in payloads for r in p.records})
    for payload in payloads:
        _merge(payload, state)
    accepted = [p for p in payloads if p.error is None]
    now = datetime.now(UTC)
    inbound: list[tuple[str, int | None, str]] = []
    for run in _runs(accepted):
        source = f"{run[0].connector.name} webhook"
        done = apply_items(conn, [it for p in run for it in p.items], source, known=stored)
        if _totals([done.counts]) != _totals([p.counts for p in run]):
            raise RuntimeError(f"counts differ: {done.counts} vs {[p.counts for p in run]}")
        t = done.totals()
        import_id = done.import_id if t.inserted + t.replaced else None
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
        conn.exec_driver_sql(sql, tuple(params))


INBOUND_ROWS = 500
_INBOUND_SQL = (
    f'INSERT INTO "{inbound_payloads.name}" ("connector", "received_at", "import_id", "body") '
    "VALUES "
)
