"""Export of records (round-trips with import) and rebuild of the tables from the raw log."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, delete, func, select

from opsledger.errors import RecordError
from opsledger.ingest.importer import BATCH, _Applier
from opsledger.ingest.rawlog import iter_lines
from opsledger.ingest.reader import KIND_KEY, Entry
from opsledger.records.fast import values_of
from opsledger.records.spec import KIND_BY_NAME, KINDS, FieldType
from opsledger.records.tables import RECORD_TABLES, record_versions
from opsledger.records.validation import (
    Record,
    canonical,
    validate_csv_row,
    validate_json_partial,
)


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
    """Re-derive every record table (and the replaced versions) from the raw log, inside the
    caller's transaction.

    Lines are replayed in the order they were stored, through the same applier as an import,
    so the newest input of each id wins exactly as it did then. Returns the rows per kind.
    """
    for kind in KINDS:
        conn.execute(delete(RECORD_TABLES[kind.name]))
    conn.execute(delete(record_versions))
    applier: _Applier | None = None
    batch: list[Entry] = []
    pointers: list[tuple[int, int]] = []
    for raw in iter_lines(conn):
        if applier is None or applier.import_id != raw.import_id or len(batch) >= BATCH:
            if applier is not None and batch:
                applier.apply(batch, pointers)
                batch, pointers = [], []
            if applier is None or applier.import_id != raw.import_id:
                applier = _Applier(conn, raw.import_id, raw.lenient, raw.inbound_id,
                                   bulk=applier is None)  # the tables are empty then
        where = f"raw chunk {raw.seq}, line {raw.line + 1}"
        if raw.format == "csv":
            row = json.loads(raw.payload)
            kind_name = row.pop(KIND_KEY, None)
            spec = KIND_BY_NAME.get(kind_name) if isinstance(kind_name, str) else None
            if spec is None:
                raise RecordError("raw log", where, "kind", "a CSV line of the log names no kind")
            got, record = validate_csv_row(spec, row, "raw log", where, raw.lenient)
        else:
            got, record = validate_json_partial(raw.payload, "raw log", where, raw.lenient)
        batch.append((got, values_of(got, record), raw.format, raw.payload))
        pointers.append((raw.seq, raw.line))
    if applier is not None and batch:
        applier.apply(batch, pointers)
    counts = {}
    for kind in KINDS:
        table = RECORD_TABLES[kind.name]
        counts[kind.name] = conn.execute(select(func.count()).select_from(table)).scalar_one()
    return counts
