"""Migration 0007: the index of alerts by incident holds only alerts linked to one, the
queries by incident still use it, and the downgrade gives the full index back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, text

from opsledger.core.db import make_engine
from opsledger.ingest.importer import apply_items
from opsledger.ingest.reader import Item
from opsledger.records.tables import RECORD_TABLES
from opsledger.records.validation import validate_json_line
from tests.core.test_migration_raw_chunks import _to, blank_url

__all__ = ["blank_url"]  # the fixture, on SQLite and PostgreSQL


def _alerts(n: int) -> list[Item]:
    items = []
    for i in range(n):
        line = (f'{{"kind":"alert","id":"a{i}","name":"X","fired_at":"2026-10-01T10:00:00Z"'
                + (f',"incident":"i{i % 3}"' if i % 10 == 0 else "") + "}")
        kind, record = validate_json_line(line, "t", str(i))
        items.append(Item(kind, record, "json", line))
    return items


def _index_sql(conn: Any) -> str:
    if conn.dialect.name == "sqlite":
        return str(conn.execute(text(
            "SELECT sql FROM sqlite_master WHERE name = 'ix_alerts_incident'")).scalar_one())
    return str(conn.execute(text(
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_alerts_incident'")).scalar_one())


def _entries(conn: Any) -> int:
    """How many entries the index holds (SQLite: counted from the index itself)."""
    if conn.dialect.name == "sqlite":
        plan = conn.execute(text(
            "EXPLAIN QUERY PLAN SELECT count(*) FROM alerts INDEXED BY ix_alerts_incident "
            "WHERE incident IS NOT NULL")).all()
        assert any("ix_alerts_incident" in str(row) for row in plan)
        return int(conn.execute(text(
            "SELECT count(*) FROM alerts INDEXED BY ix_alerts_incident "
            "WHERE incident IS NOT NULL")).scalar_one())
    conn.execute(text("ANALYZE alerts"))
    return int(conn.execute(text(
        "SELECT reltuples FROM pg_class WHERE relname = 'ix_alerts_incident'")).scalar_one())


def test_partial_incident_index(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        _to(engine, "0006")
        with engine.begin() as conn:
            apply_items(conn, _alerts(200), "t")
            assert "WHERE" not in _index_sql(conn).upper()
        _to(engine, "head")
        alerts = RECORD_TABLES["alert"]
        with engine.begin() as conn:
            assert "incident IS NOT NULL" in _index_sql(conn).replace("(", "").replace(")", "")
            assert _entries(conn) == 20  # only the linked alerts
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = conn.execute(text(
                ("EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN ")
                + "SELECT id FROM alerts WHERE incident = 'i1'")).all()
            assert "ix_alerts_incident" in " ".join(str(r) for r in plan)
            linked = conn.execute(select(func.count()).select_from(alerts)
                                  .where(alerts.c.incident == "i1")).scalar_one()
            assert linked == 7  # i % 10 == 0 and (i // 10) % 3 == 1: 10, 40, ..., 190
        _to(engine, "0006", down=True)
        with engine.begin() as conn:
            assert "WHERE" not in _index_sql(conn).upper()
    finally:
        engine.dispose()
