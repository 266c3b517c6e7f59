"""Engine settings that the rest of opsledger relies on."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, inspect, text


def test_a_failed_transaction_leaves_no_table(engine: Engine) -> None:
    """DDL is part of the transaction on both databases (pysqlite alone would have committed
    the CREATE at once)."""
    with pytest.raises(RuntimeError), engine.begin() as conn:
        conn.execute(text("CREATE TABLE scratch_ddl (a INTEGER)"))
        conn.execute(text("INSERT INTO scratch_ddl VALUES (1)"))
        raise RuntimeError("boom")
    assert "scratch_ddl" not in inspect(engine).get_table_names()


def test_postgresql_plans_statements_for_their_parameters(engine: Engine) -> None:
    """No server-side prepared statements: nothing is planned once for all parameters."""
    if engine.dialect.name != "postgresql":
        pytest.skip("a PostgreSQL setting")
    stmt = text("SELECT count(*) FROM teams WHERE id > :x")
    with engine.connect() as conn:
        for n in range(8):  # psycopg would prepare it on the 5th execution by default
            conn.execute(stmt, {"x": str(n)})
        prepared = conn.execute(text("SELECT count(*) FROM pg_prepared_statements")).scalar_one()
    assert prepared == 0


def test_sqlite_files_start_with_16_kib_pages(engine: Engine) -> None:
    if engine.dialect.name != "sqlite":
        pytest.skip("a SQLite setting")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA page_size")).scalar_one() == 16384
