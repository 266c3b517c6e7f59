"""Import speed of native JSON Lines into SQLite, against a bare ``sqlite3`` executemany.

Target (issue): at least 50,000 records/s in one process; report the ratio to a bare
``sqlite3`` ``executemany`` of the same rows, measured in the same run.

What it does:

1. Writes N (default 200,000) realistic records to ``bench/out/import-N.jsonl`` (reused when
   already there): ~87 % alerts shaped like Alertmanager/CloudWatch alerts (labels, runbook
   URLs, acknowledgements, some linked to incidents), the rest a mix of teams, services,
   backup jobs, incidents, changes, backup runs, task runs and vulnerabilities. Deterministic
   for a given N and seed.
2. opsledger: a fresh SQLite file, ``open_database`` (schema migration, timed apart), then
   ``open_source`` + ``import_source`` inside one ``engine.begin()`` — the real import path,
   commit included.
3. bare sqlite3: the very rows opsledger stored (read back from its file) are inserted with
   ``executemany`` into plain tables with the same columns (no indexes, no raw log) in a
   fresh file with the same pragmas (WAL, synchronous=NORMAL), one transaction. The rows are
   built before the clock starts: this is the floor of the storage work.
4. For reference, more bare figures, to tell the cost of Python from the cost of the schema:
   (a) the baseline plus parsing the JSONL file with ``json.loads`` inside the timing;
   (b) ``executemany`` into opsledger's own schema (its indexes), record rows only;
   (c) the same plus the raw log rows (compressed chunks); (d) (c) with a 64 MiB page cache
   instead of SQLite's default 2 MiB.

``--profile`` runs the opsledger import under cProfile (``bench/out/import.prof``) and prints
the functions with the most own time and the most cumulative time.

    .venv/bin/python bench/import_speed.py              # N = 200,000
    .venv/bin/python bench/import_speed.py -n 50000 --repeat 3
    .venv/bin/python bench/import_speed.py --profile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sqlite3
import statistics
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TARGET_RPS = 50_000
RAW_LOG = ("raw_chunks", "record_versions")  # opsledger's raw log, not record rows

# --------------------------------------------------------------------------- data

_RULES = (
    # name, severity, source, job, port, runbook
    ("HighCPUUsage", "warning", "alertmanager", "node", ":9100", True),
    ("HostOutOfMemory", "warning", "alertmanager", "node", ":9100", True),
    ("DiskWillFillIn4Hours", "critical", "alertmanager", "node", ":9100", True),
    ("HostOutOfDiskSpace", "warning", "alertmanager", "node", ":9100", True),
    ("HostSystemdServiceCrashed", "warning", "alertmanager", "node", ":9100", True),
    ("NodeClockSkewDetected", "warning", "alertmanager", "node", ":9100", False),
    ("HostCpuStealNoisyNeighbor", "info", "alertmanager", "node", ":9100", False),
    ("KubePodCrashLooping", "warning", "alertmanager", "kube-state-metrics", ":8080", True),
    ("KubePodNotReady", "warning", "alertmanager", "kube-state-metrics", ":8080", True),
    ("KubeContainerOOMKilled", "warning", "alertmanager", "cadvisor", ":8080", True),
    ("CPUThrottlingHigh", "info", "alertmanager", "cadvisor", ":8080", False),
    ("PostgresqlReplicationLag", "warning", "alertmanager", "postgres", ":9187", True),
    ("PostgresqlDown", "critical", "alertmanager", "postgres", ":9187", True),
    ("RedisRejectedConnections", "warning", "alertmanager", "redis", ":9121", True),
    ("RDSFreeStorageSpaceLow", "critical", "cloudwatch", "cloudwatch", "", True),
    ("ELB5XXErrorRateHigh", "critical", "cloudwatch", "cloudwatch", "", True),
    ("ProbeHttpFailure", "critical", "alertmanager", "blackbox", "", True),
)
_DOMAINS = ("payments", "checkout", "billing", "identity", "auth", "catalog", "orders",
            "shipping", "search", "notifications", "reporting", "warehouse", "fraud", "cart")
_COMPONENTS = ("api", "web", "worker", "db", "redis", "kafka", "gateway", "etl")
_PEOPLE = ("alex.smith", "maria.garcia", "jan.kowalski", "li.nguyen", "noah.mueller",
           "emma.rossi", "omar.khan", "priya.patel", "lukas.novak", "sofia.silva")
_TASKS = ("rotate-certificates", "restart-stuck-consumer", "grant-db-access",
          "clean-disk-space", "renew-dns", "scale-node-pool")
# events after the reference kinds, by weight
_MIX = (("alert", 87), ("backup_run", 5), ("change", 3), ("task_run", 2.5),
        ("vulnerability", 2), ("incident", 0.5))
T0 = datetime(2025, 11, 1, tzinfo=UTC)
YEAR_S = 365 * 86_400


def _iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Org:
    teams: list[str]
    services: list[str]
    team_of: dict[str, str]
    jobs: list[str]
    incidents: list[str] = field(default_factory=list)


def _alert(rnd: random.Random, org: _Org, k: int, at: datetime, svc: str) -> dict[str, Any]:
    name, sev, source, job, port, runbook = rnd.choice(_RULES)
    rec: dict[str, Any] = {"kind": "alert", "id": f"al-{k:08d}", "name": name,
                           "source": source, "service": svc, "severity": sev,
                           "fired_at": _iso(at)}
    if rnd.random() < 0.97:
        rec["resolved_at"] = _iso(at + timedelta(seconds=rnd.randrange(60, 7200)))
    if rnd.random() < 0.6:
        rec["acknowledged_at"] = _iso(at + timedelta(seconds=rnd.randrange(20, 900)))
        rec["acknowledged_by"] = rnd.choice(_PEOPLE)
    if rnd.random() < 0.06:
        rec["actionable"] = rnd.random() < 0.8
    if org.incidents and rnd.random() < 0.02:
        rec["incident"] = rnd.choice(org.incidents[-20:])
    if runbook:
        rec["runbook_url"] = f"https://runbooks.example.com/{name.lower()}"
    host = f"{svc}-{rnd.randrange(1, 9):02d}"
    rec["labels"] = {"alertname": name, "severity": sev, "service": svc,
                     "team": org.team_of[svc], "env": "prod", "job": job,
                     "instance": host + port}
    return rec


def _incident(rnd: random.Random, org: _Org, k: int, at: datetime, svc: str) -> dict[str, Any]:
    iid = f"inc-{k:05d}"
    org.incidents.append(iid)
    return {"kind": "incident", "id": iid, "title": f"{svc} degraded",
            "severity": rnd.choice((1, 2, 2, 3, 3, 3)), "service": svc,
            "started_at": _iso(at), "detected_at": _iso(at + timedelta(minutes=3)),
            "acknowledged_at": _iso(at + timedelta(minutes=8)),
            "mitigated_at": _iso(at + timedelta(minutes=rnd.randrange(20, 240))),
            "resolved_at": _iso(at + timedelta(hours=rnd.randrange(4, 30))),
            "root_cause": "bad config push", "root_cause_key": f"rc-{k % 40}"}


def _change(rnd: random.Random, org: _Org, k: int, at: datetime, svc: str) -> dict[str, Any]:
    return {"kind": "change", "id": f"chg-{k:06d}", "title": f"Deploy {svc}",
            "service": svc, "type": rnd.choice(("standard", "normal", "emergency")),
            "risk": rnd.choice(("low", "medium", "high")),
            "requested_at": _iso(at - timedelta(days=2)),
            "approved_at": _iso(at - timedelta(days=1)), "started_at": _iso(at),
            "deployed_at": _iso(at + timedelta(minutes=30)),
            "outcome": rnd.choice(("success",) * 18 + ("failed", "rolled_back")),
            "ticket": f"CHG{1_040_000 + k}"}


def _backup_run(rnd: random.Random, org: _Org, k: int, at: datetime, svc: str) -> dict[str, Any]:
    ok = rnd.random() < 0.98
    rec: dict[str, Any] = {
        "kind": "backup_run", "id": f"br-{k:07d}", "job": rnd.choice(org.jobs),
        "scheduled_at": _iso(at), "started_at": _iso(at + timedelta(minutes=2)),
        "finished_at": _iso(at + timedelta(minutes=40)),
        "status": "success" if ok else "failed"}
    if ok:
        rec["bytes"] = rnd.randrange(10**8, 10**11)
    return rec


def _task_run(rnd: random.Random, org: _Org, k: int, at: datetime, svc: str) -> dict[str, Any]:
    auto = rnd.random() < 0.5
    return {"kind": "task_run", "id": f"task-{k:07d}", "task": rnd.choice(_TASKS),
            "team": rnd.choice(org.teams), "performed_at": _iso(at), "automated": auto,
            "minutes": 2.5 if auto else float(rnd.randrange(5, 90))}


def _vulnerability(rnd: random.Random, org: _Org, k: int, at: datetime,
                   svc: str) -> dict[str, Any]:
    rec = {"kind": "vulnerability", "id": f"vuln-{k:07d}", "asset": f"{svc}-01",
           "cve": f"CVE-2026-{10000 + k % 50000}", "package": "openssl",
           "severity": rnd.choice(("critical", "high", "medium", "low")),
           "first_seen": _iso(at)}
    if rnd.random() < 0.7:
        rec["fixed_at"] = _iso(at + timedelta(days=rnd.randrange(1, 60)))
    return rec


_MAKERS = {"alert": _alert, "incident": _incident, "change": _change,
           "backup_run": _backup_run, "task_run": _task_run, "vulnerability": _vulnerability}


def generate(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """`n` records: reference kinds first, then events in time order."""
    rnd = random.Random(seed)
    n_services = max(10, min(1000, n // 200))
    teams = [f"team-{i:02d}" for i in range(max(2, n_services // 40))]
    services = [f"{_DOMAINS[i % len(_DOMAINS)]}-{_COMPONENTS[i % len(_COMPONENTS)]}-{i:04d}"
                for i in range(n_services)]
    org = _Org(teams, services, {s: teams[i % len(teams)] for i, s in enumerate(services)},
               [f"bk-{s}" for s in services[: max(1, n_services // 4)]])
    for t in teams:
        yield {"kind": "team", "id": t, "name": t.replace("-", " ").title()}
    for s in services:
        yield {"kind": "service", "id": s, "name": s.replace("-", " ").title(),
               "team": org.team_of[s], "tier": rnd.choice(("critical", "high", "standard"))}
    for j in org.jobs:
        yield {"kind": "backup_job", "id": j, "service": j[3:], "schedule": "0 2 * * *",
               "since": _iso(T0), "critical": rnd.random() < 0.3, "rpo_hours": 24.0}
    kinds = [k for k, _ in _MIX]
    weights = [w for _, w in _MIX]
    events = n - len(teams) - len(services) - len(org.jobs)
    seq: dict[str, int] = {}
    for i in range(events):
        kind = rnd.choices(kinds, weights)[0]
        k = seq[kind] = seq.get(kind, 0) + 1
        at = T0 + timedelta(seconds=int(YEAR_S * i / events) + rnd.randrange(0, 60))
        yield _MAKERS[kind](rnd, org, k, at, rnd.choice(services))


def write_jsonl(n: int, seed: int) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"import-{n}-{seed}.jsonl"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for rec in generate(n, seed):
                fh.write(json.dumps(rec, separators=(",", ":")) + "\n")
        tmp.replace(path)
    return path


# --------------------------------------------------------------------------- runs


def _fresh(path: Path) -> Path:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return path


def run_opsledger(jsonl: Path, db: Path, profile: Path | None = None) -> dict[str, Any]:
    from opsledger.core.db import open_database
    from opsledger.ingest.importer import import_source
    from opsledger.ingest.reader import open_source

    _fresh(db)
    t0 = time.perf_counter()
    engine = open_database(f"sqlite:///{db}")
    migrate_s = time.perf_counter() - t0
    prof = None
    if profile is not None:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    t0 = time.perf_counter()
    with engine.begin() as conn:
        result = import_source(conn, open_source(str(jsonl)))
    seconds = time.perf_counter() - t0
    if prof is not None:
        prof.disable()
        prof.dump_stats(str(profile))
    engine.dispose()
    t = result.totals()
    return {"seconds": seconds, "records": t.total, "inserted": t.inserted,
            "migrate_s": migrate_s}


def stored_rows(db: Path) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
    """Every non-empty table of opsledger's file: column names and rows, as stored."""
    con = sqlite3.connect(db)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' "
            "AND name NOT IN ('alembic_version', 'imports')")]
        out = {}
        for name in tables:
            cur = con.execute(f'SELECT * FROM "{name}"')
            rows = cur.fetchall()
            if rows:
                out[name] = ([d[0] for d in cur.description], rows)
        return out
    finally:
        con.close()


def _connect(db: Path) -> sqlite3.Connection:
    con = sqlite3.connect(_fresh(db), isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    return con


def _insert_all(con: sqlite3.Connection,
                data: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> None:
    con.execute("BEGIN")
    for name, (cols, rows) in data.items():
        sql = (f'INSERT INTO "{name}" ({", ".join(cols)}) '
               f'VALUES ({", ".join("?" * len(cols))})')
        con.executemany(sql, rows)
    con.execute("COMMIT")


def run_bare(db: Path, data: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    """executemany of the stored record rows into plain tables (same columns, no indexes)."""
    records = {k: v for k, v in data.items() if k not in RAW_LOG}
    con = _connect(db)
    for name, (cols, _) in records.items():
        con.execute(f'CREATE TABLE "{name}" ({", ".join(cols)})')
    t0 = time.perf_counter()
    _insert_all(con, records)
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def run_bare_parse(db: Path, jsonl: Path,
                   data: dict[str, tuple[list[str], list[tuple[Any, ...]]]]) -> float:
    """As run_bare, but parse the JSONL file with json.loads inside the timing (timestamps
    to epoch microseconds, objects back to JSON text): a lean pure-Python import floor."""
    from opsledger.records.spec import KIND_BY_NAME, FieldType

    records = {k: v for k, v in data.items() if k not in RAW_LOG}
    con = _connect(db)
    for name, (cols, _) in records.items():
        con.execute(f'CREATE TABLE "{name}" ({", ".join(cols)})')
    plans = {}
    for kind in KIND_BY_NAME.values():
        if kind.table in records:
            types = [kind.by_name[c].type if c in kind.by_name else None
                     for c in records[kind.table][0]]
            plans[kind.name] = (kind.table, records[kind.table][0], types)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    fromiso = datetime.fromisoformat
    t0 = time.perf_counter()
    buckets: dict[str, list[tuple[Any, ...]]] = {p[0]: [] for p in plans.values()}
    with jsonl.open("rb") as fh:
        for line in fh:
            obj = json.loads(line)
            table, cols, types = plans[obj["kind"]]
            row = []
            for c, t in zip(cols, types, strict=True):
                v = obj.get(c)
                if v is not None:
                    if t is FieldType.DATETIME:
                        d = fromiso(v) - epoch
                        v = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
                    elif t is FieldType.OBJECT:
                        v = json.dumps(v)
                elif c == "_import":
                    v = 1
                elif c == "_digest":
                    v = "0" * 32
                row.append(v)
            buckets[table].append(tuple(row))
    con.execute("BEGIN")
    for table, rows in buckets.items():
        cols = records[table][0]
        con.executemany(f'INSERT INTO "{table}" ({", ".join(cols)}) '
                        f'VALUES ({", ".join("?" * len(cols))})', rows)
    con.execute("COMMIT")
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def run_bare_schema(db: Path, data: dict[str, tuple[list[str], list[tuple[Any, ...]]]],
                    raw_log: bool = True, cache_kib: int | None = None) -> float:
    """executemany of the stored rows into opsledger's own schema (its indexes): the record
    rows, and the raw log rows (chunks) unless `raw_log` is false; `cache_kib` sets the page
    cache (SQLite's default is 2 MiB)."""
    from opsledger.core.db import open_database

    _fresh(db)
    open_database(f"sqlite:///{db}").dispose()
    con = sqlite3.connect(db, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")
    if cache_kib is not None:
        con.execute(f"PRAGMA cache_size=-{cache_kib}")
    rows = data if raw_log else {k: v for k, v in data.items() if k not in RAW_LOG}
    t0 = time.perf_counter()
    _insert_all(con, rows)
    seconds = time.perf_counter() - t0
    con.close()
    return seconds


def run_stages(jsonl: Path) -> dict[str, float]:
    """Time the front half of the import alone: reading + validation (the fast path, pydantic
    where it declines), then also digests."""
    from opsledger.ingest.reader import open_source, read_entries
    from opsledger.ingest.rows import values_digest

    t0 = time.perf_counter()
    n = sum(len(block) for block in read_entries(open_source(str(jsonl)), False))
    read_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for block in read_entries(open_source(str(jsonl)), False):
        for entry in block:
            values_digest(entry[1])
    read_digest_s = time.perf_counter() - t0
    return {"records": n, "read_validate_s": read_s, "read_validate_digest_s": read_digest_s}


def _git_commit() -> str:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent,
                              text=True, capture_output=True, timeout=10,
                              check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def print_profile(path: Path, top: int) -> None:
    import pstats

    for key in ("tottime", "cumulative"):
        print(f"\n--- cProfile, top {top} by {key} ---")
        pstats.Stats(str(path)).sort_stats(key).print_stats(top)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=200_000, help="records (default 200,000)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each; the best counts")
    ap.add_argument("--profile", action="store_true", help="cProfile the opsledger import")
    ap.add_argument("--top", type=int, default=30, help="profile lines to print")
    ap.add_argument("--stages", action="store_true",
                    help="also time reading+validation and digests alone (where the time goes)")
    ap.add_argument("--json", type=Path, default=OUT / "import_speed.json")
    args = ap.parse_args()

    load_start = os.getloadavg()
    jsonl = write_jsonl(args.n, args.seed)
    size_mb = jsonl.stat().st_size / 1e6
    print(f"data: {jsonl} ({size_mb:.1f} MB)", flush=True)
    ops_db, bare_db = OUT / "import-opsledger.db", OUT / "import-bare.db"

    if args.profile:
        prof = OUT / "import.prof"
        res = run_opsledger(jsonl, ops_db, prof)
        print(f"opsledger under cProfile: {res['records'] / res['seconds']:,.0f} records/s "
              "(profiling slows it down)")
        print_profile(prof, args.top)
        return

    ops: list[dict[str, Any]] = []
    labels = {
        "bare": "bare sqlite3 executemany, plain tables (baseline)",
        "bare_parse": "  same, plus json.loads of the file in the timing",
        "schema_records": "  executemany into opsledger schema, records only",
        "schema_full": "  executemany into opsledger schema, + raw log chunks",
        "schema_full_cache64": "  same, PRAGMA cache_size 64 MiB",
    }
    times: dict[str, list[float]] = {k: [] for k in labels}
    for i in range(args.repeat):
        ops.append(run_opsledger(jsonl, ops_db))
        print(f"run {i + 1}: opsledger {ops[-1]['seconds']:.2f} s", flush=True)
        data = stored_rows(ops_db)
        times["bare"].append(run_bare(bare_db, data))
        times["bare_parse"].append(run_bare_parse(bare_db, jsonl, data))
        times["schema_records"].append(run_bare_schema(bare_db, data, raw_log=False))
        times["schema_full"].append(run_bare_schema(bare_db, data))
        times["schema_full_cache64"].append(run_bare_schema(bare_db, data, cache_kib=65536))
        del data
    stages = run_stages(jsonl) if args.stages else None
    n = ops[0]["records"]
    counts = {name: len(rows) for name, (_, rows) in stored_rows(ops_db).items()}
    best_ops = min(o["seconds"] for o in ops)
    rps = {"opsledger": n / best_ops, **{k: n / min(v) for k, v in times.items()}}
    ratio = rps["opsledger"] / rps["bare"]
    result = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git": _git_commit(),
        "machine": {"nproc": os.cpu_count(), "python": platform.python_version(),
                    "sqlite": sqlite3.sqlite_version, "loadavg_start": load_start,
                    "loadavg_end": os.getloadavg()},
        "n": n, "file_mb": round(size_mb, 1), "rows_by_table": counts,
        "opsledger_s": [o["seconds"] for o in ops], "baselines_s": times,
        "migrate_s": statistics.median(o["migrate_s"] for o in ops),
        "records_per_s": rps, "ratio_opsledger_to_bare": ratio, "stages": stages,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")

    print(f"\ncommit {result['git']}; {n:,} records ({counts.get('alerts', 0):,} alerts), "
          f"{size_mb:.1f} MB JSONL; best of {args.repeat}; {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}; "
          f"load average {load_start} -> {os.getloadavg()}")
    print(f"  {'path':52} {'seconds':>8} {'records/s':>11}")
    rows = [("opsledger import_source (validate, digest, upsert, raw log)", best_ops)]
    rows += [(labels[k], min(v)) for k, v in times.items()]
    for label, s in rows:
        print(f"  {label:52} {s:8.3f} {n / s:11,.0f}")
    if stages is not None:
        rd, rdd = stages["read_validate_s"], stages["read_validate_digest_s"]
        apply_s = best_ops - rdd
        print(f"\nwhere the opsledger import's {best_ops:.2f} s go (stages timed alone):")
        print(f"  read + validation (read_entries: msgspec, pydantic) {rd:8.3f} s "
              f"{100 * rd / best_ops:5.1f} %")
        print(f"  digests (rows.values_digest)                        {rdd - rd:8.3f} s "
              f"{100 * (rdd - rd) / best_ops:5.1f} %")
        print(f"  apply: state lookups, rows, raw log, SQL, commit    {apply_s:8.3f} s "
              f"{100 * apply_s / best_ops:5.1f} %")
        floor = min(times["schema_full_cache64"])
        print(f"    of which SQLite's own work (bare, same schema+cache){floor:8.3f} s "
              f"{100 * floor / best_ops:5.1f} %")
    verdict = "ok" if rps["opsledger"] >= TARGET_RPS else "MISSED"
    print(f"\nopsledger / bare executemany = {ratio:.3f} (bare is {1 / ratio:.1f}x faster); "
          f"target >= {TARGET_RPS:,} records/s: {verdict}")
    print(f"(schema migration of the fresh file, not timed above: {result['migrate_s']:.2f} s)")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
