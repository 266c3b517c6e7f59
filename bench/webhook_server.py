"""The server side of bench/webhook_ingest.py: a fresh database, `opsledger serve` as a
subprocess on a free loopback port, its CPU time from /proc, and a summary of py-spy
profiles of it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
OPSLEDGER = str(Path(sys.executable).with_name("opsledger"))
PG_ADMIN = os.environ.get(
    "OPSLEDGER_BENCH_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
PG_DB = "opsledger_bench_webhook"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def fresh_database(backend: str, name: str = "webhook-ingest") -> str:
    """An empty database for a benchmark, its URL: SQLite `bench/out/<name>.db`; PostgreSQL
    the database `opsledger_bench_<name>` (dashes as underscores), made afresh."""
    if backend == "sqlite":
        OUT.mkdir(exist_ok=True)
        db = OUT / f"{name}.db"
        for suffix in ("", "-wal", "-shm", "-writer"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{db}"
    from sqlalchemy import create_engine, text

    database = _pg_name(name)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    return PG_ADMIN.rsplit("/", 1)[0] + "/" + database


def drop_database(backend: str, name: str = "webhook-ingest") -> None:
    """Drop what `fresh_database` made on PostgreSQL (SQLite's file stays, for a look)."""
    if backend != "postgresql":
        return
    from sqlalchemy import create_engine, text

    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{_pg_name(name)}" WITH (FORCE)'))
    admin.dispose()


def _pg_name(name: str) -> str:
    return PG_DB if name == "webhook-ingest" else "opsledger_bench_" + name.replace("-", "_")


def alert_rows(url: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.connect() as conn:
        n = int(conn.execute(text("SELECT count(*) FROM alerts")).scalar_one())
    engine.dispose()
    return n


def serve(url: str, port: int, workers: int, log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [OPSLEDGER, "--db", url, "serve", "--port", str(port), "--workers", str(workers)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"opsledger serve exited: {log.read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("opsledger serve did not answer /healthz within 60 s")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(pgid: int) -> float:
    """User + system CPU time of the server's processes (its process group), from /proc."""
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def database_cpu_seconds(backend: str) -> float:
    """User + system CPU time of this machine's PostgreSQL server processes (its backends,
    WAL writer, ...), from /proc: the database's share of a webhook's cost. SQLite runs
    inside the server process: 0."""
    if backend != "postgresql":
        return 0.0
    ticks = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        name, fields = stat.split("(", 1)[1].rsplit(")", 1)
        if name == "postgres":
            parts = fields.split()
            ticks += int(parts[11]) + int(parts[12])
    return ticks / os.sysconf("SC_CLK_TCK")


_IDLE = ("Condition.wait", "EpollSelector.select", "Queue.get", "Event.wait")
_DB = ("do_execute", "do_executemany", "do_commit", "psycopg", "Connection.wait")


def profile_summary(path: Path, top: int = 14) -> dict[str, Any]:
    """Where the server's samples go (idle waits left out): the request side (uvicorn,
    Starlette, FastAPI, asyncio; the token check and the parsing of the payload) or the
    webhook writer's thread (api/writer.py), split by its innermost opsledger function and by
    whether the sample is in the database driver's Python side or in other Python
    (SQLAlchemy's statement building included)."""
    parts: dict[str, int] = {}
    busy = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [f for f in stack.split(";") if not f.startswith("process ")]
        if not frames or frames[-1].split(" (")[0] in _IDLE:
            continue
        n = int(count)
        busy += n
        if not any(f.startswith("Writer._run (") for f in frames):
            key = "request side: HTTP layer, token check, parsing (event loop, threads)"
        else:
            ours = [f.split(" (")[0] for f in frames if "opsledger/" in f]
            where = "database driver" if any(d in f for f in frames for d in _DB) else "Python"
            key = f"{ours[-1]}: {where}"
        parts[key] = parts.get(key, 0) + n
    shares = sorted(parts.items(), key=lambda kv: -kv[1])[:top]
    return {"busy_samples": busy, "shares": {k: round(100 * v / busy, 1) for k, v in shares}}
