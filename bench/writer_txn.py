"""The webhook writer's transaction alone: CPU and wall time a payload, without HTTP.

The served rate of `webhook_ingest.py` moves with everything on the machine; this measures
the part every payload waits for (api/writer.py's `Writer._commit`: merging, validating,
the SQL, the commit) in one thread, on the same Alertmanager payloads as that benchmark
(every alert a new episode), `--group` payloads a transaction as the writer takes them
under load. It prints the writer thread's CPU (`time.thread_time`, which on SQLite includes
SQLite's own work), the wall time, and on PostgreSQL the CPU of the connection's backend
process (/proc, so PostgreSQL must run on this machine), each a payload.

To compare two versions of `src/`, run it alternately with each on `PYTHONPATH`, several
times; the machine's speed drifts between runs (docs/benchmarks.md):

    .venv/bin/python bench/writer_txn.py --backend sqlite
    PYTHONPATH=/tmp/other/src .venv/bin/python bench/writer_txn.py --backend sqlite
    .venv/bin/python bench/writer_txn.py --backend postgresql --alerts 1 --group 5

SQLite: a fresh `bench/out/writer-txn.db`; PostgreSQL: the database `opsledger_bench_writer_txn`
(admin URL from `OPSLEDGER_BENCH_PG`, as for webhook_ingest.py), made afresh and dropped at
the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from pathlib import Path

from webhook_ingest import Payloads
from webhook_server import drop_database, fresh_database

from opsledger.access import TokenCache
from opsledger.api.writer import Job, Writer, writer_threads
from opsledger.connectors.base import get_connector
from opsledger.core.db import open_database
from opsledger.core.sql import driver


def backend_cpu(pid: int | None) -> float:
    """CPU seconds of a PostgreSQL backend process so far (0 without one)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    ap.add_argument("--payloads", type=int, default=3000)
    ap.add_argument("--alerts", type=int, default=10, help="alerts a payload")
    ap.add_argument("--group", type=int, default=4, help="payloads a transaction")
    args = ap.parse_args()

    connector = get_connector("alertmanager")
    assert connector is not None
    engine = open_database(fresh_database(args.backend, "writer-txn"))
    try:
        maker = Payloads(uuid.uuid4().hex[:8])
        bodies = [maker.body(args.alerts) for _ in range(args.payloads + args.group)]
        parsed = [connector.parse(b, {}) for b in bodies]
        writer = Writer(engine, None, TokenCache(), writer_threads(engine))
        loop = asyncio.new_event_loop()

        def jobs(start: int) -> list[Job]:
            return [
                Job("alertmanager", bodies[i], "127.0.0.1", loop, loop.create_future(),
                    connector, parsed[i], None)
                for i in range(start, start + args.group)
            ]

        conn, done = writer._commit(None, jobs(0))  # the connection and the first plans
        assert done and conn is not None
        pid = driver(conn).info.backend_pid if args.backend == "postgresql" else None
        cpu, wall, db = time.thread_time(), time.perf_counter(), backend_cpu(pid)
        n = 0
        for start in range(args.group, args.group + args.payloads, args.group):
            conn, done = writer._commit(conn, jobs(start))
            assert done and conn is not None
            n += args.group
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        db = backend_cpu(pid) - db
        writer.close()
        loop.close()
        line = (
            f"{args.backend}: {n} payloads of {args.alerts} alert(s), {args.group} a "
            f"transaction: writer CPU {cpu / n * 1e6:.0f} us, wall {wall / n * 1e6:.0f} us"
        )
        if pid is not None:
            line += f", PostgreSQL backend CPU {db / n * 1e6:.0f} us"
        print(line + " a payload")
    finally:
        engine.dispose()
        drop_database(args.backend, "writer-txn")


if __name__ == "__main__":
    main()
