"""Test fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from OPSLEDGER_TEST_PG (default: the local server at 127.0.0.1:5432, trust
auth). Each run creates a fresh database of its own and drops it at the end. Under CI
(CI=true) PostgreSQL is mandatory; elsewhere its tests are skipped when no server answers.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from opsledger.cli.main import main
from opsledger.core.db import make_engine, migrate
from opsledger.ingest.importer import ImportResult, apply_items
from opsledger.ingest.reader import Item
from opsledger.records.tables import metadata
from opsledger.records.validation import validate_json_line

PG_ADMIN = os.environ.get(
    "OPSLEDGER_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str | None]:
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            name = f"opsledger_test_{uuid.uuid4().hex[:10]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("CI", "").lower() in ("true", "1", "yes"):
            raise RuntimeError(
                f"PostgreSQL is mandatory in CI and is not reachable: {exc}"
            ) from exc
        yield None
        return
    url = PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


def _truncate_pg(engine: Engine) -> None:
    # DELETE is much faster than TRUNCATE on the few rows a test leaves behind
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A migrated, empty database: SQLite file or the run's PostgreSQL database."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    if url is None:
        pytest.skip("PostgreSQL is not reachable (set OPSLEDGER_TEST_PG)")
    engine = make_engine(url)
    _truncate_pg(engine)
    engine.dispose()
    return str(url)


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def load(engine: Engine, records: list[dict[str, Any]], source: str = "test") -> ImportResult:
    """Import native records (dicts with a kind) through the real import path."""

    def items() -> Iterator[Item]:
        for n, rec in enumerate(records, 1):
            line = json.dumps(rec)
            kind, record = validate_json_line(line, source, f"line {n}")
            yield Item(kind, record, "json", line)

    with engine.begin() as conn:
        return apply_items(conn, items(), source)


@pytest.fixture
def cli(db_url: str, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `opsledger --db <test db> ARGS...`; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--db", db_url, *args])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
