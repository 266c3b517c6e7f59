"""Migration 0006: a ledger whose raw log is per-record rows (raw_events) keeps every input
line, in order, when the log becomes chunks; records point at their current line, replaced
versions are kept, a rebuild gives the same tables, and the downgrade gives the rows back."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, select, text
from sqlalchemy import inspect as sa_inspect

from opsledger.core.db import alembic_config, make_engine
from opsledger.ingest.rawlog import iter_lines, versions
from opsledger.ingest.replay import rebuild
from opsledger.ingest.rows import legacy_digest as digest  # what databases of 0004 hold
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import RECORD_TABLES, record_versions
from opsledger.records.validation import validate_csv_row, validate_json_line
from tests.conftest import PG_ADMIN

T1_OLD = '{"kind":"team","id":"t1","name":"Old name"}'
T1_NEW = '{"kind": "team", "id": "t1", "name": "New name"}'
T2_CSV = {"id": "t2", "name": "Two"}  # a CSV row as the old log kept it: cells, no kind
SVC = '{"kind":"service","id":"api","team":"t1","tier":"critical"}'


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_url(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[str]:
    """An empty database, not migrated."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"opsledger_mig_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            raise
        pytest.skip("PostgreSQL is not reachable")
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _to(engine: Engine, revision: str, down: bool = False) -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if down:
            command.downgrade(cfg, revision)
        else:
            command.upgrade(cfg, revision)


def _old_ledger(engine: Engine) -> None:
    """What the importer before 0006 stored for three imports: a.jsonl (t1, api), b.jsonl
    (t1 renamed) and teams.csv (t2)."""
    now = datetime(2026, 11, 1, tzinfo=UTC)
    t1_old = validate_json_line(T1_OLD, "a", "1")[1]
    t1_new = validate_json_line(T1_NEW, "b", "1")[1]
    svc = validate_json_line(SVC, "a", "2")[1]
    t2 = validate_csv_row(KIND_BY_NAME["team"], T2_CSV, "c", "1")[1]
    with engine.begin() as conn:
        for n, source in enumerate(["a.jsonl", "b.jsonl", "teams.csv"], 1):
            conn.execute(
                text("INSERT INTO imports (id, source, imported_at, inserted, replaced, "
                     "unchanged) VALUES (:id, :s, :t, 1, 0, 0)"),
                {"id": n, "s": source, "t": now if conn.dialect.name == "postgresql" else
                 int(now.timestamp() * 1_000_000)},
            )
        events = [
            (1, "team", "t1", "json", T1_OLD, digest(t1_old)),
            (1, "service", "api", "json", SVC, digest(svc)),
            (2, "team", "t1", "json", T1_NEW, digest(t1_new)),
            (3, "team", "t2", "csv", json.dumps(T2_CSV), digest(t2)),
        ]
        for imp, kind, rid, fmt, payload, dig in events:
            conn.execute(
                text("INSERT INTO raw_events (import_id, kind, record_id, format, lenient, "
                     "payload, digest) VALUES (:i, :k, :r, :f, false, :p, :d)"),
                {"i": imp, "k": kind, "r": rid, "f": fmt, "p": payload, "d": dig},
            )
        for rid, name, dig, imp in (("t1", "New name", digest(t1_new), 2),
                                    ("t2", "Two", digest(t2), 3)):
            conn.execute(
                text("INSERT INTO teams (id, name, _digest, _import) VALUES (:r, :n, :d, :i)"),
                {"r": rid, "n": name, "d": dig, "i": imp},
            )
        conn.execute(
            text("INSERT INTO services (id, team, tier, _digest, _import) "
                 "VALUES ('api', 't1', 'critical', :d, 1)"),
            {"d": digest(svc)},
        )


def _tables(engine: Engine, digests: bool = True) -> dict[str, list[tuple[Any, ...]]]:
    with engine.connect() as conn:
        return {
            kind: sorted(
                tuple(v for k, v in r._mapping.items() if digests or k != "_digest")
                for r in conn.execute(select(table).order_by(table.c.id))
            )
            for kind, table in RECORD_TABLES.items()
            if kind in ("team", "service")
        }


def test_raw_events_become_chunks_and_back(blank_url: str) -> None:
    engine = make_engine(blank_url)
    try:
        _to(engine, "0004")
        _old_ledger(engine)
        _to(engine, "head")
        with engine.connect() as conn:
            lines = [(r.import_id, r.format, r.payload) for r in iter_lines(conn)]
            assert lines == [
                (1, "json", T1_OLD),
                (1, "json", SVC),
                (2, "json", T1_NEW),
                (3, "csv", json.dumps({"kind": "team", **T2_CSV})),
            ]
            t1 = versions(conn, "team", "t1")
            assert [(v.import_id, v.raw.payload, v.current) for v in t1] == [
                (1, T1_OLD, False), (2, T1_NEW, True)
            ]
            assert [v.source for v in t1] == ["a.jsonl", "b.jsonl"]
            kept = conn.execute(
                select(record_versions.c.record_id, record_versions.c.import_id,
                       record_versions.c.replaced_by)
            ).all()
            assert [tuple(r) for r in kept] == [("t1", 1, 2)]
            t2 = versions(conn, "team", "t2")
            assert [(v.raw.format, v.current) for v in t2] == [("csv", True)]
        migrated = _tables(engine, digests=False)
        legacy = _tables(engine)
        with engine.begin() as conn:
            rebuild(conn)
        # the pointers are what a replay makes them; the replay writes digests of the current
        # scheme where the migrated rows kept their legacy ones
        assert _tables(engine, digests=False) == migrated
        assert _tables(engine) != legacy
        with engine.connect() as conn:
            assert all(d.startswith("x") for d in conn.execute(text("SELECT _digest FROM teams"))
                       .scalars())
        _to(engine, "0004", down=True)
        with engine.connect() as conn:
            back = conn.execute(
                text("SELECT import_id, kind, record_id, format, payload FROM raw_events "
                     "ORDER BY seq")
            ).all()
        assert [tuple(r) for r in back] == [
            (1, "team", "t1", "json", T1_OLD),
            (1, "service", "api", "json", SVC),
            (2, "team", "t1", "json", T1_NEW),
            (3, "team", "t2", "csv", json.dumps(T2_CSV)),
        ]
    finally:
        engine.dispose()


def test_a_failing_migration_changes_nothing(blank_url: str) -> None:
    """Migrations run in one transaction, DDL included (on SQLite too): when 0006 fails half
    way (a CSV raw event that is not JSON), the database is left at 0004 as it was."""
    engine = make_engine(blank_url)
    try:
        _to(engine, "0004")
        _old_ledger(engine)
        with engine.begin() as conn:
            conn.execute(
                text("INSERT INTO raw_events (import_id, kind, record_id, format, lenient, "
                     "payload, digest) VALUES (3, 'team', 't9', 'csv', false, 'not json', 'x')")
            )
        with pytest.raises(json.JSONDecodeError):
            _to(engine, "head")
        with engine.connect() as conn:
            tables = set(sa_inspect(conn).get_table_names())
            team_columns = {c["name"] for c in sa_inspect(conn).get_columns("teams")}
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            events = conn.execute(text("SELECT count(*) FROM raw_events")).scalar_one()
        assert version == "0004"
        assert "raw_chunks" not in tables and "record_versions" not in tables
        assert "_raw" not in team_columns
        assert events == 5
    finally:
        engine.dispose()
