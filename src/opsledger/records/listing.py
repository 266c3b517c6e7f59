"""Listing stored records of a kind, newest first, as their canonical JSON objects."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import RECORD_TABLES
from opsledger.records.validation import canonical


def list_records(
    conn: Connection,
    kind: str,
    time_field: str,
    *,
    name: str | None = None,
    service: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    """Records of `kind`, newest `time_field` first, with since <= time_field < until.
    Each is the record's canonical JSON form (absent fields left out)."""
    spec = KIND_BY_NAME[kind]
    table = RECORD_TABLES[kind]
    q = select(*[table.c[f.name] for f in spec.fields])
    if name is not None:
        q = q.where(table.c.name == name)
    if service is not None:
        q = q.where(table.c.service == service)
    if since is not None:
        q = q.where(table.c[time_field] >= since)
    if until is not None:
        q = q.where(table.c[time_field] < until)
    q = q.order_by(table.c[time_field].desc(), table.c.id).limit(limit).offset(offset)
    return [json.loads(canonical(dict(r._mapping))) for r in conn.execute(q)]
