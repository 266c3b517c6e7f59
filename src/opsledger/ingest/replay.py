"""Export of records (round-trips with import) and rebuild of the tables from the raw event log."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from opsledger.errors import RecordError
from opsledger.ingest.importer import digest, upsert_rows
from opsledger.records.spec import KIND_BY_NAME, KINDS, FieldType
from opsledger.records.tables import DIGEST, IMPORT, RECORD_TABLES, raw_events
from opsledger.records.validation import Record, canonical, validate_csv_row, validate_json_line


def iter_records(conn: Connection, kind: str) -> Iterator[Record]:
    """Every stored record of a kind, by id, as normalised records."""
    spec = KIND_BY_NAME[kind]
    table = RECORD_TABLES[kind]
    cols = [table.c[f.name] for f in spec.fields]
    result = conn.execute(select(*cols).order_by(table.c.id), execution_options={"yield_per": 5000})
    for row in result:
        yield dict(row._mapping)


def export_jsonl(conn: Connection, kind: str) -> Iterator[str]:
    for record in iter_records(conn, kind):
        body = canonical(record)
        yield '{"kind":' + json.dumps(kind) + "," + body[1:] + "\n"


def _cell(value: Any, ftype: FieldType) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if ftype is FieldType.OBJECT:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def export_csv(conn: Connection, kind: str) -> Iterator[str]:
    spec = KIND_BY_NAME[kind]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(spec.field_names)
    for record in iter_records(conn, kind):
        writer.writerow([_cell(record[f.name], f.type) for f in spec.fields])
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def rebuild(conn: Connection) -> dict[str, int]:
    """Re-derive every record table from the raw event log, inside the caller's transaction.

    Events are replayed in the order they were stored, so the newest input of each id wins,
    exactly as at import. Returns the number of rows per kind.
    """
    for kind in KINDS:
        conn.execute(delete(RECORD_TABLES[kind.name]))
    query = select(
        raw_events.c.seq,
        raw_events.c.import_id,
        raw_events.c.kind,
        raw_events.c.format,
        raw_events.c.lenient,
        raw_events.c.payload,
    ).order_by(raw_events.c.seq)
    batch: dict[str, dict[str, dict[str, Any]]] = {}
    size = 0
    for seq, import_id, kind, fmt, lenient, payload in conn.execute(
        query, execution_options={"yield_per": 5000}
    ):
        where = f"raw event {seq}"
        if fmt == "csv":
            row = json.loads(payload)
            got_kind, record = validate_csv_row(KIND_BY_NAME[kind], row, "raw log", where, lenient)
        else:
            got_kind, record = validate_json_line(payload, "raw log", where, lenient)
        if got_kind != kind:
            raise RecordError("raw log", where, "kind", f"event says {kind}, payload {got_kind}")
        record[DIGEST] = digest(record)
        record[IMPORT] = import_id
        batch.setdefault(kind, {})[record["id"]] = record
        size += 1
        if size >= 5000:
            _flush(conn, batch)
            size = 0
    _flush(conn, batch)
    counts = {}
    for kind in KINDS:
        table = RECORD_TABLES[kind.name]
        counts[kind.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return counts


def _flush(conn: Connection, batch: dict[str, dict[str, dict[str, Any]]]) -> None:
    for kind, rows in batch.items():
        upsert_rows(conn, kind, list(rows.values()))
    batch.clear()
