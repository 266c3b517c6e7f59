"""Scorecard speed and peak memory at demo scale 10, on SQLite and on PostgreSQL.

Targets (issue): the full scorecard under 1 s for one month and under 2 s for a year, on both
backends, with peak memory under 500 MB.

What it does:

1. Builds (or reuses) a database holding ``opsledger demo --scale 10 --end 2026-11-01``
   (about a year of a 1,000-service organisation, more than a million alerts):
   SQLite at ``bench/out/scorecard-scale10.db`` and PostgreSQL database ``opsledger_bench`` on
   127.0.0.1:5432 (user postgres, trust auth). A marker file in ``bench/out/`` records how each
   was built; a database whose marker is missing or names other parameters is rebuilt. The
   demo import takes several minutes per backend: run this script in the background. The
   PostgreSQL database gets ``VACUUM (ANALYZE)`` after the build, as autovacuum would give a
   database that has been up for a while.
2. For each backend, in a child process: ``scorecard(conn, period, Scope(), Policy())`` for the
   month 2026-10 and for the year ``--from 2025-11-01 --to 2026-11-01``: one warm-up run, then
   the best (and median) of ``--repeat`` runs; then every KPI alone (``evaluate``), best of
   ``--repeat`` after a warm-up.
3. Peak memory: for each backend and period, a fresh child process that only imports opsledger,
   connects and runs the scorecard once; its ``ru_maxrss`` is the figure (the PostgreSQL
   server's memory is not part of it).

Everything is bounded by timeouts; only loopback is used. Results are printed and written to
``bench/out/scorecard_speed.json``.

    .venv/bin/python bench/scorecard_speed.py                 # both backends
    .venv/bin/python bench/scorecard_speed.py --backend sqlite
    .venv/bin/python bench/scorecard_speed.py --build-only    # just build the databases
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
ROOT = HERE.parent
SCALE = 10
SEED = 42
END = "2026-11-01"
SQLITE_PATH = OUT / "scorecard-scale10.db"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
PG_DB = "opsledger_bench"
PG_URL = f"postgresql+psycopg://postgres@127.0.0.1:5432/{PG_DB}"
URLS = {"sqlite": f"sqlite:///{SQLITE_PATH}", "postgresql": PG_URL}
BUILD_TIMEOUT_S = 3 * 3600  # the demo import at scale 10 takes minutes; never run forever
CHILD_TIMEOUT_S = 1800
MONTH_TARGET_S = 1.0
YEAR_TARGET_S = 2.0
MEMORY_TARGET_MB = 500.0


def _opsledger_bin() -> str:
    exe = Path(sys.executable).with_name("opsledger")
    return str(exe) if exe.exists() else "opsledger"


def _marker(backend: str) -> Path:
    return OUT / f"scorecard-scale10-{backend}.json"


def _schema_head() -> str:
    from alembic.script import ScriptDirectory

    from opsledger.core.db import alembic_config

    return str(ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head())


def _generator_sha() -> str:
    import hashlib

    import opsledger.demo as demo

    sha = hashlib.sha256()
    for path in sorted(Path(demo.__file__).parent.glob("*.py")):  # the generator and its parts
        sha.update(path.read_bytes())
    return sha.hexdigest()[:16]


def _wanted() -> dict[str, Any]:
    """What a cached database must match: the demo parameters and the generator's source.
    A newer schema does not force a rebuild: the cached database is migrated to the head, as
    a user's database would be."""
    return {"scale": SCALE, "seed": SEED, "end": END, "generator_sha": _generator_sha()}


def _migrate(backend: str) -> float:
    from opsledger.core.db import open_database

    t0 = time.perf_counter()
    open_database(URLS[backend]).dispose()
    return time.perf_counter() - t0


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _cached(backend: str) -> dict[str, Any] | None:
    marker = _marker(backend)
    if not marker.exists():
        return None
    info: dict[str, Any] = json.loads(marker.read_text())
    if any(info.get(k) != v for k, v in _wanted().items()):
        return None
    if backend == "sqlite" and not SQLITE_PATH.exists():
        return None
    if backend == "postgresql" and not _pg_exists():
        return None
    return info


def _pg_admin() -> Any:
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")


def _pg_exists() -> bool:
    from sqlalchemy import text

    engine = _pg_admin()
    try:
        with engine.connect() as conn:
            return conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": PG_DB}
            ).first() is not None
    finally:
        engine.dispose()


def _fresh_target(backend: str) -> None:
    if backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(SQLITE_PATH) + suffix).unlink(missing_ok=True)
        return
    from sqlalchemy import text

    engine = _pg_admin()
    try:
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE {PG_DB}"))
    finally:
        engine.dispose()


def _pg_vacuum_analyze() -> float:
    from sqlalchemy import create_engine, text

    engine = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    t0 = time.perf_counter()
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
    finally:
        engine.dispose()
    return time.perf_counter() - t0


def build(backend: str, force: bool = False) -> dict[str, Any]:
    """Build the demo database of `backend` unless an up-to-date one is cached."""
    OUT.mkdir(parents=True, exist_ok=True)
    if not force and (info := _cached(backend)) is not None:
        print(f"[{backend}] reusing the demo database built {info['built_at']}", flush=True)
        seconds = _migrate(backend)
        print(f"[{backend}] schema at head {_schema_head()} ({seconds:.1f} s)", flush=True)
        return info
    _marker(backend).unlink(missing_ok=True)
    _fresh_target(backend)
    log = OUT / f"demo-{backend}.log"
    cmd = [_opsledger_bin(), "--db", URLS[backend], "demo", "--scale", str(SCALE),
           "--seed", str(SEED), "--end", END]
    print(f"[{backend}] building: {' '.join(cmd)} (log: {log})", flush=True)
    t0 = time.perf_counter()
    with log.open("w") as fh:
        proc = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT,
                              timeout=BUILD_TIMEOUT_S, check=False)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"[{backend}] demo failed (exit {proc.returncode}); see {log}")
    info = {**_wanted(), "schema_head": _schema_head(), "backend": backend, "git": git_commit(),
            "build_seconds": round(seconds, 1),
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "load_at_build": os.getloadavg()}
    if backend == "postgresql":
        info["vacuum_analyze_seconds"] = round(_pg_vacuum_analyze(), 1)
    _marker(backend).write_text(json.dumps(info, indent=2) + "\n")
    print(f"[{backend}] built in {seconds:.0f} s", flush=True)
    return info


# --------------------------------------------------------------------------- child processes


def _periods() -> dict[str, Any]:
    from opsledger.core.periods import date_range, month

    return {"month": month(2026, 10),
            "year": date_range(date(2025, 11, 1), date(2026, 11, 1))}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _timed(fn: Any, repeat: int, cpu: list[float] | None = None) -> tuple[float, list[float]]:
    """Warm-up once (returns its time), then `repeat` timed runs; with `cpu`, the process's
    CPU time of each timed run is appended to it (on a shared machine the wall time includes
    waiting for a core; the CPU time of this process does not, nor the PostgreSQL server's)."""
    t0 = time.perf_counter()
    fn()
    warm = time.perf_counter() - t0
    runs = []
    for _ in range(repeat):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
        if cpu is not None:
            cpu.append(time.process_time() - c0)
    return warm, runs


def child_speed(backend: str, repeat: int) -> dict[str, Any]:
    from sqlalchemy import func, select

    from opsledger.core.db import open_database
    from opsledger.kpis.engine import evaluate, scorecard
    from opsledger.kpis.model import Scope
    from opsledger.kpis.policy import Policy
    from opsledger.kpis.registry import KPIS
    from opsledger.records.tables import RECORD_TABLES

    engine = open_database(URLS[backend])
    out: dict[str, Any] = {"backend": backend, "periods": {}}
    scope, policy = Scope(), Policy()
    with engine.connect() as conn:
        out["rows"] = {kind: conn.execute(select(func.count()).select_from(t)).scalar_one()
                       for kind, t in RECORD_TABLES.items()}
        for name, period in _periods().items():
            load_before = os.getloadavg()[0]
            cpu: list[float] = []
            warm, runs = _timed(lambda p=period: scorecard(conn, p, scope, policy), repeat, cpu)
            load_after = os.getloadavg()[0]
            card = scorecard(conn, period, scope, policy)
            per_kpi = {}
            for kpi in KPIS:
                _, kruns = _timed(lambda k=kpi, p=period: evaluate(conn, k, p, scope, policy),
                                  repeat)
                per_kpi[kpi.id] = min(kruns)
            out["periods"][name] = {
                "label": period.label, "warmup_s": warm, "runs_s": runs, "best_s": min(runs),
                "median_s": statistics.median(runs), "cpu_s": cpu,
                "loadavg_1min": [load_before, load_after], "per_kpi_best_s": per_kpi,
                "counts": {r["id"]: r["count"] for r in card["kpis"]},
                "statuses": {r["id"]: r["status"] for r in card["kpis"]},
            }
    engine.dispose()
    out["child_maxrss_mb"] = _maxrss_mb()
    return out


def child_memory(backend: str, period_name: str) -> dict[str, Any]:
    from opsledger.core.db import open_database
    from opsledger.kpis.engine import scorecard
    from opsledger.kpis.model import Scope
    from opsledger.kpis.policy import Policy

    period = _periods()[period_name]
    engine = open_database(URLS[backend])
    with engine.connect() as conn:
        before = _maxrss_mb()
        t0 = time.perf_counter()
        scorecard(conn, period, Scope(), Policy())
        seconds = time.perf_counter() - t0
    engine.dispose()
    return {"backend": backend, "period": period_name, "maxrss_before_mb": before,
            "maxrss_mb": _maxrss_mb(), "cold_s": seconds}


def _run_child(args: list[str]) -> dict[str, Any]:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, check=False, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"child {args} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# --------------------------------------------------------------------------- report


def _machine() -> dict[str, Any]:
    import sqlite3

    info: dict[str, Any] = {"nproc": os.cpu_count(), "python": platform.python_version(),
                            "sqlite": sqlite3.sqlite_version, "loadavg": os.getloadavg()}
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(PG_ADMIN_URL)
        with engine.connect() as conn:
            info["postgresql"] = conn.execute(text("SHOW server_version")).scalar_one()
        engine.dispose()
    except Exception as exc:  # noqa: BLE001 - report, do not fail
        info["postgresql"] = f"unavailable ({type(exc).__name__})"
    return info


def _mark(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def report(results: dict[str, Any]) -> None:
    m = results["machine"]
    print(f"\ncommit {results['git']}; machine: {m['nproc']} cores, "
          f"Python {m['python']}, SQLite {m['sqlite']}, "
          f"PostgreSQL {m['postgresql']}, load average at start {m['loadavg']}")
    for backend, res in results["backends"].items():
        speed = res["speed"]
        print(f"\n== {backend}: {speed['rows']['alert']:,} alerts, "
              f"{sum(speed['rows'].values()):,} records ==")
        for name, per in speed["periods"].items():
            target = MONTH_TARGET_S if name == "month" else YEAR_TARGET_S
            mem = res["memory"][name]
            print(f"{name:5} {per['label']:24} best {per['best_s']:7.3f} s  median "
                  f"{per['median_s']:7.3f} s  warm-up {per['warmup_s']:7.3f} s  "
                  f"client CPU best {min(per['cpu_s']):.3f} s  "
                  f"load {per['loadavg_1min'][0]:.2f} -> {per['loadavg_1min'][1]:.2f}  "
                  f"(target < {target:g} s: {_mark(per['best_s'] < target)})  "
                  f"peak RSS {mem['maxrss_mb']:6.1f} MB (after connect "
                  f"{mem['maxrss_before_mb']:.1f} MB; target < {MEMORY_TARGET_MB:g} MB: "
                  f"{_mark(mem['maxrss_mb'] < MEMORY_TARGET_MB)})")
        print(f"\n  {'KPI':30} {'month s':>9} {'year s':>9} {'year count':>11}")
        month, year = speed["periods"]["month"], speed["periods"]["year"]
        order = sorted(month["per_kpi_best_s"], key=lambda k: -year["per_kpi_best_s"][k])
        for kid in order:
            print(f"  {kid:30} {month['per_kpi_best_s'][kid]:9.4f} "
                  f"{year['per_kpi_best_s'][kid]:9.4f} {year['counts'][kid]:11,}")
    print(f"\nload average at end {os.getloadavg()}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--repeat", type=int, default=3, help="timed runs after the warm-up")
    ap.add_argument("--build-only", action="store_true", help="build the databases and stop")
    ap.add_argument("--rebuild", action="store_true", help="rebuild even if cached")
    ap.add_argument("--child-speed", metavar="BACKEND", help=argparse.SUPPRESS)
    ap.add_argument("--child-memory", nargs=2, metavar=("BACKEND", "PERIOD"),
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_speed:
        print(json.dumps(child_speed(args.child_speed, args.repeat)))
        return
    if args.child_memory:
        print(json.dumps(child_memory(*args.child_memory)))
        return
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"),
                               "git": git_commit(), "machine": _machine(), "backends": {}}
    for backend in backends:
        results["backends"][backend] = {"build": build(backend, force=args.rebuild)}
    if args.build_only:
        return
    for backend in backends:
        res = results["backends"][backend]
        print(f"[{backend}] timing (best of {args.repeat} after a warm-up) ...", flush=True)
        res["speed"] = _run_child(["--child-speed", backend, "--repeat", str(args.repeat)])
        res["memory"] = {p: _run_child(["--child-memory", backend, p]) for p in ("month", "year")}
    results["loadavg_end"] = os.getloadavg()
    (OUT / "scorecard_speed.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results)


if __name__ == "__main__":
    main()
