"""Vendor payloads (webhooks and vendor files) into the ledger, through a connector."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select

from opsledger.connectors.base import Connector, NativeRecord
from opsledger.core.sql import driver, native_times, placeholder
from opsledger.core.types import to_epoch_us
from opsledger.errors import RecordError, UsageError
from opsledger.ingest.importer import ImportResult, apply_entries, batches
from opsledger.ingest.reader import Entry
from opsledger.kpis.policy import Policy
from opsledger.records.fast import decoder, unsure, values_of
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import RECORD_TABLES, inbound_payloads, rejected_payloads
from opsledger.records.validation import canonical, validate_json_line

MAX_STORED_BODY = 1024 * 1024


def _stored(
    conn: Connection, keys: set[tuple[str, str]]
) -> dict[tuple[str, str], dict[str, Any]]:
    """The stored records of the given (kind, id) pairs: one query per kind and 500 ids."""
    by_kind: dict[str, list[str]] = {}
    for kind, rid in keys:
        by_kind.setdefault(kind, []).append(rid)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for kind, ids in by_kind.items():
        spec = KIND_BY_NAME[kind]
        table = RECORD_TABLES[kind]
        cols = [table.c[f.name] for f in spec.fields]
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for row in conn.execute(select(*cols).where(table.c.id.in_(chunk))):
                found[(kind, row.id)] = json.loads(canonical(dict(row._mapping)))
    return found


def merge_updates(
    conn: Connection,
    records: list[NativeRecord],
    merge: Callable[[NativeRecord, NativeRecord], NativeRecord] | None = None,
) -> list[NativeRecord]:
    """Patch semantics for connectors: a field the payload leaves out keeps its stored (or
    earlier in this payload) value, so a late retry of a firing notification never clears a
    resolution or an acknowledgement. `merge` (the connector's) replaces the plain rule."""
    merged: dict[tuple[str, str], NativeRecord] = {}
    stored_records = _stored(conn, {(rec["kind"], rec["id"]) for rec in records})
    for rec in records:
        key = (rec["kind"], rec["id"])
        base = merged.get(key)
        if base is None:
            stored = stored_records.get(key)
            base = {"kind": key[0], **stored} if stored else {}
        update = {k: v for k, v in rec.items() if v is not None}
        merged[key] = merge(base, update) if merge is not None else {**base, **update}
    return list(merged.values())


def ingest_payload(
    conn: Connection,
    connector: Connector,
    body: bytes,
    headers: Mapping[str, str],
    policy: Policy | None = None,
) -> ImportResult:
    """Parse, keep the verbatim payload, and apply its records, inside the caller's
    transaction. Raises PayloadError or RecordError (nothing is applied then)."""
    return ingest_records(
        conn, connector, connector.parse(body, headers), body, "webhook", policy
    )


def raw_of(path: Path) -> bytes:
    """The verbatim input of a vendor export: a file's bytes, or a directory's JSON files as
    one JSON object {relative path: text}."""
    if path.is_file():
        return path.read_bytes()
    files = {
        str(p.relative_to(path)): p.read_text(encoding="utf-8", errors="replace")
        for p in sorted(path.rglob("*.json"))
    }
    return json.dumps(files, ensure_ascii=False).encode()


def ingest_path(conn: Connection, connector: Connector, path: Path) -> ImportResult:
    """`opsledger import --from NAME PATH`: a vendor export through its connector."""
    if connector.parse_path is None:
        raise UsageError(f"connector {connector.name} reads webhooks only, not files")
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    return ingest_records(conn, connector, connector.parse_path(path), raw_of(path), f"file {path}")


def ingest_records(
    conn: Connection,
    connector: Connector,
    records: list[NativeRecord],
    body: bytes,
    how: str,
    policy: Policy | None = None,
) -> ImportResult:
    """Apply a connector's records and keep the raw vendor input next to them. With a
    policy, alerts matching an [[incidents.auto_open]] rule then open incidents."""
    if connector.prepare is not None:
        records = connector.prepare(conn, records)
    if connector.patch:
        records = merge_updates(conn, records, connector.merge)
    where = f"{connector.name} payload"
    entries = [record_entry(rec, where, f"record {n}") for n, rec in enumerate(records, 1)]
    inbound_id = conn.execute(
        insert(inbound_payloads).values(
            connector=connector.name,
            received_at=datetime.now(UTC),
            body=storable_text(body.decode("utf-8", "replace")),
        )
    ).inserted_primary_key
    assert inbound_id is not None
    result = apply_entries(
        conn, batches(entries), f"{connector.name} {how}", inbound_id=int(inbound_id[0])
    )
    if policy is not None and policy.incidents.auto_open:
        from opsledger.incidents.auto_open import auto_open

        auto_open(conn, policy, [r for r in records if r.get("kind") == "alert"])
    return result


def record_line(rec: NativeRecord) -> bytes:
    """A connector's record as the JSON line that is validated and kept in the raw log
    (compact, UTF-8 text as is; orjson). An integer over 64 bits is refused; NaN and
    infinities (which Python's JSON reader accepts in a vendor payload) become null."""
    try:
        return orjson.dumps(rec)
    except TypeError as exc:
        raise RecordError("payload", f"record {rec.get('id')!r}", None, str(exc)) from None


@cache
def _fast() -> Callable[[bytes], Entry | None]:
    return decoder(lenient=False)


def record_entry(rec: NativeRecord, source: str, location: str) -> Entry:
    """A connector's record validated, as the importer applies it (kind, values, "json", its
    line): by the fast path (records.fast) where it is sure, else by pydantic, which words
    every error (RecordError at `source`, `location`). The same guards as for a file's lines
    (ingest.reader): a NUL escape or a timestamp with over six fractional digits goes to
    pydantic."""
    line = record_line(rec)
    if not unsure(line):
        got = _fast()(line)
        if got is not None:
            return got
    text = line.decode()
    kind, record = validate_json_line(text, source, location)
    return (kind, values_of(kind, record), "json", text)


def storable_text(value: str) -> str:
    """Vendor text as a database can keep it: NUL characters (which PostgreSQL text cannot
    hold) become U+FFFD, like bytes that are not UTF-8."""
    return value.replace("\x00", "\ufffd")


def log_rejected(
    conn: Connection, connector: str, status: int, reason: str, body: bytes, remote: str | None
) -> None:
    """Keep what was refused, so that nothing sent is ever silently lost. On the driver
    (core.sql.driver), so that the webhook writer can send it inside a pipeline block."""
    now = datetime.now(UTC)
    driver(conn).execute(
        _REJECTED.format(mark=placeholder(conn)),
        (
            storable_text(connector[:60]),
            now if native_times(conn) else to_epoch_us(now),
            status,
            storable_text(reason),
            remote,
            storable_text(body[:MAX_STORED_BODY].decode("utf-8", "replace")),
        ),
    )


_REJECTED = (
    f'INSERT INTO "{rejected_payloads.name}" ("connector", "received_at", "status", "reason", '
    '"remote", "body") VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark})'
)
