"""Database engine and migrations. Nothing here runs at import time."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from opsledger.errors import UsageError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _sqlite_adapters() -> None:
    """Bind None and bool without the sqlite3 module's adaptation protocol, which it otherwise
    runs for every value that is not exactly int, float, str or bytes: two failed attribute
    look-ups a value (a quarter of the binding time of an alert row, which has six NULLs). The
    values stored are the same (NULL, 0/1); the registry is the sqlite3 module's, for the whole
    process, which is why only these identity conversions are registered."""
    sqlite3.register_adapter(type(None), _NONE)
    sqlite3.register_adapter(bool, int)


# None for None, and a C function: the adapter runs for every NULL bound (a Python function
# here cost a call into the interpreter for each)
_EMPTY: dict[None, None] = {}
_NONE = _EMPTY.get


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # 16 KiB pages (SQLite's default is 4 KiB): bulk imports write about a third faster
    # (docs/benchmarks.md). It takes effect only on a new, empty file; before WAL is set.
    cur.execute("PRAGMA page_size=16384")
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA cache_size=-65536")  # 64 MiB: large imports stay in memory
    cur.close()


def _explicit_transactions(engine: Engine, begin: str) -> None:
    """SQLite transactions that SQLAlchemy begins and ends, DDL included: pysqlite's own
    handling starts a transaction only before INSERT/UPDATE/DELETE, so a CREATE or ALTER
    (a migration) would be committed at once and a failing migration left half applied.
    (SQLAlchemy's recipe for pysqlite: the driver in autocommit mode, BEGIN emitted here.)"""

    @event.listens_for(engine, "connect")
    def _manual(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


def make_engine(url: str, sqlite_begin: str = "BEGIN") -> Engine:
    """An engine for `url` (sqlite:///path or postgresql+psycopg://...). On SQLite every
    transaction starts with `sqlite_begin` (`BEGIN IMMEDIATE` takes the write lock at once)."""
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several types here
        raise UsageError(f"database URL {url!r} is not valid: {exc}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        _sqlite_adapters()
        engine = create_engine(parsed)
        event.listen(engine, "connect", _sqlite_pragmas)
        _explicit_transactions(engine, sqlite_begin)
        return engine
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        # psycopg prepares a statement on its 5th execution, and PostgreSQL may then plan it
        # once for any parameters: a year's scorecard after a month's on the same connection
        # ran with plans made for a month (the alert count 0.82 s instead of 0.27 s). Without
        # server-side prepared statements every query is planned for its parameters; this
        # also works behind PgBouncer in transaction mode, where a startup `options` setting
        # or prepared statements would not.
        return create_engine(parsed, pool_pre_ping=True, connect_args={"prepare_threshold": None})
    raise UsageError(f"database URL {url!r}: only sqlite:/// and postgresql:// are supported")


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (cheap when it already is)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(conn).get_current_revision()
    if current == head:
        return
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_database(url: str) -> Engine:
    engine = make_engine(url)
    migrate(engine)
    return engine
