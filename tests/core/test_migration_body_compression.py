"""Migration 0008 (PostgreSQL): payload bodies compressed with lz4, raw-log chunk bodies
(Zstandard already) not compressed again; bodies stored before and after read back the same,
and the downgrade gives the defaults back. On SQLite it changes nothing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from opsledger.core.db import make_engine
from tests.core.test_migration_raw_chunks import _to, blank_url

__all__ = ["blank_url"]  # the fixture, on SQLite and PostgreSQL

COLUMNS = (("inbound_payloads", "body"), ("rejected_payloads", "body"), ("raw_chunks", "body"))


def _settings(conn: Any) -> dict[str, tuple[str, str]]:
    """(attcompression, attstorage) of each body column ('' = the server's default)."""
    out = {}
    for table, column in COLUMNS:
        row = conn.execute(text(
            "SELECT attcompression, attstorage FROM pg_attribute "
            "WHERE attrelid = CAST(:t AS regclass) AND attname = :c"), {"t": table, "c": column}
        ).one()
        out[table] = (str(row[0]), str(row[1]))
    return out


def _body(n: int) -> str:
    # a webhook body: JSON that compresses well, over PostgreSQL's 2 kB toast threshold
    alerts = ", ".join(f'{{"n": {i}, "labels": {{"k": "v"}}}}' for i in range(n))
    return '{"alerts": [' + alerts + "]}"


def test_body_compression(blank_url: str) -> None:
    engine = make_engine(blank_url)
    insert = text(
        "INSERT INTO inbound_payloads (connector, received_at, import_id, body) "
        "VALUES ('t', :at, NULL, :body)"
    )
    at = 0 if engine.dialect.name == "sqlite" else "2026-11-29T00:00:00Z"
    try:
        _to(engine, "0007")
        with engine.begin() as conn:
            conn.execute(insert, {"at": at, "body": _body(400)})
            if conn.dialect.name == "postgresql":
                before = _settings(conn)
                assert before == {t: ("", "x") for t, _ in COLUMNS}  # defaults: pglz, extended
                lz4 = bool(conn.execute(text(
                    "SELECT 'lz4' = ANY(enumvals) FROM pg_settings "
                    "WHERE name = 'default_toast_compression'")).scalar())
        _to(engine, "head")
        with engine.begin() as conn:
            conn.execute(insert, {"at": at, "body": _body(500)})
            bodies = conn.execute(text("SELECT body FROM inbound_payloads ORDER BY id")).scalars()
            assert list(bodies) == [_body(400), _body(500)]
            if conn.dialect.name != "postgresql":
                return
            after = _settings(conn)
            codec = "l" if lz4 else ""
            assert after == {
                "inbound_payloads": (codec, "x"),
                "rejected_payloads": (codec, "x"),
                "raw_chunks": ("", "e"),  # out of line, not compressed
            }
            methods = conn.execute(text(
                "SELECT pg_column_compression(body) FROM inbound_payloads ORDER BY id"
            )).scalars().all()
            assert methods == ["pglz", "lz4" if lz4 else "pglz"]  # each kept as it was stored
        _to(engine, "0007", down=True)
        with engine.begin() as conn:
            assert _settings(conn) == before
    finally:
        engine.dispose()
