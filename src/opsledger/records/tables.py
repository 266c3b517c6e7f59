"""SQLAlchemy tables: one per record kind (columns from `records.spec`), the raw log and
the import log. Alembic migrations are written against this metadata."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from opsledger.core.types import UTCDateTime
from opsledger.records.spec import KINDS, FieldType, Kind

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)

_TYPES: dict[FieldType, Any] = {
    FieldType.STR: Text,
    FieldType.INT: BigInteger,
    FieldType.FLOAT: Double,
    FieldType.BOOL: Boolean,
    FieldType.DATETIME: UTCDateTime,
    FieldType.DATE: Date,
    FieldType.MONTH: String(7),
    FieldType.OBJECT: JSON,
    FieldType.CRON: Text,
}

# Bookkeeping columns of every record table (never record fields).
DIGEST = "_digest"  # hash of the canonical record, to tell unchanged from replaced
IMPORT = "_import"  # the import that produced the row
RAW = "_raw"  # the raw chunk (raw_chunks.seq) that holds the input of this version
LINE = "_line"  # the line of that chunk (0-based)


def _record_table(kind: Kind) -> Table:
    cols: list[Column[Any]] = []
    for f in kind.fields:
        if f.name == "id":
            cols.append(Column("id", Text, primary_key=True))
        else:
            cols.append(Column(f.name, _TYPES[f.type], nullable=not f.required, index=f.index))
    cols.append(Column(DIGEST, String(32), nullable=False))
    cols.append(Column(IMPORT, Integer, nullable=False))
    cols.append(Column(RAW, BigInteger, nullable=False))
    cols.append(Column(LINE, Integer, nullable=False))
    return Table(kind.table, metadata, *cols)


RECORD_TABLES: dict[str, Table] = {k.name: _record_table(k) for k in KINDS}
# the alerts of an incident (its timeline, review, auto-resolve): a partial index, as most alerts
# belong to none; `incident = :id` implies the index's condition on SQLite and PostgreSQL
_alert_incident = RECORD_TABLES["alert"].c.incident
Index("ix_alerts_incident", _alert_incident, sqlite_where=_alert_incident.is_not(None),
      postgresql_where=_alert_incident.is_not(None))
# backup_success_rate reads each job's runs by time: a covering index (job, started_at, status)
Index("ix_backup_runs_job_started_at", RECORD_TABLES["backup_run"].c.job,
      RECORD_TABLES["backup_run"].c.started_at, RECORD_TABLES["backup_run"].c.status)

# The raw input log, append-only: the accepted input lines of an import, a chunk of lines per row
# (Zstandard-compressed UTF-8, lines joined by "\n"; a JSON Lines line verbatim, a CSV row as a JSON
# object of its cells). Every record row points at the line of its current version (_raw,
# _line); `record_versions` points at the lines of the versions it replaced.
raw_chunks = Table(
    "raw_chunks",
    metadata,
    Column(
        "seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("import_id", Integer, nullable=False, index=True),
    Column("format", String(10), nullable=False),  # json | csv
    Column("lenient", Boolean, nullable=False),
    Column("lines", Integer, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("inbound_id", BigInteger, nullable=True),  # the vendor payload the lines came from
)

# Versions of records that a later import replaced (the current version is the record row).
record_versions = Table(
    "record_versions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(40), nullable=False),
    Column("record_id", Text, nullable=False),
    Column("import_id", Integer, nullable=False),  # the import that produced this version
    Column("digest", String(32), nullable=False),
    Column("raw", BigInteger, nullable=False),  # raw_chunks.seq
    Column("line", Integer, nullable=False),
    Column("replaced_by", Integer, nullable=False),  # the import that replaced it
)
Index("ix_record_versions_kind_record", record_versions.c.kind, record_versions.c.record_id)

imports = Table(
    "imports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("imported_at", UTCDateTime, nullable=False),
    Column("inserted", Integer, nullable=False),
    Column("replaced", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
)

# --- the server: access tokens, inbound vendor payloads and rejected payloads ---------------

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", Text, nullable=False, unique=True),
    Column("scope", String(10), nullable=False),  # ingest | read | admin
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 of the token
    Column("prefix", String(16), nullable=False),  # first characters, to tell tokens apart
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime, nullable=True),
)

inbound_payloads = Table(
    "inbound_payloads",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("connector", String(40), nullable=False, index=True),
    Column("received_at", UTCDateTime, nullable=False),
    Column("import_id", Integer, nullable=True),
    Column("body", Text, nullable=False),  # the vendor payload, verbatim
)

rejected_payloads = Table(
    "rejected_payloads",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("connector", String(60), nullable=False),
    Column("received_at", UTCDateTime, nullable=False, index=True),
    Column("status", Integer, nullable=False),
    Column("reason", Text, nullable=False),
    Column("remote", String(64), nullable=True),
    Column("body", Text, nullable=False),  # up to the size limit, undecodable bytes replaced
)
