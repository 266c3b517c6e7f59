"""Sustained Alertmanager webhook ingest through a running `opsledger serve`, on loopback.

Target (issue 3): at least 10,000 alerts/s sent in payloads of 10 alerts and at least 1,000
alerts/s sent one per payload, p99 latency under 100 ms, on SQLite and on PostgreSQL; report
the ratio to the same server's /healthz request rate measured in the same run.

What it does, for each backend:

1. A fresh database (SQLite: ``bench/out/webhook-ingest.db``; PostgreSQL: a database of its
   own, ``opsledger_bench_webhook``, dropped at the end), an ingest token made with
   ``opsledger tokens create --scope ingest``, and ``opsledger --db URL serve --port P`` started
   as a subprocess on a free loopback port (one uvicorn worker, as `serve` runs by default;
   ``--workers N`` passes ``serve --workers N``).
2. Load, with ``--client python`` (the default): a Python client on asyncio streams (HTTP/1.1
   keep-alive, ``--concurrency`` connections, each sending its next request when the
   previous answer is in; a closed loop); with ``--client wrk``: wrk, a C load generator, the
   same closed loop with ``-c --concurrency -t --wrk-threads`` and bodies made by
   ``bench/webhook_wrk.lua`` (bench/webhook_wrk.py); it costs the shared cores far less.
   Every request goes the real path: bearer token, parsing, the raw payload kept, dedup
   against stored episodes, upsert, commit (by the server's webhook writer, api/writer.py,
   which commits the payloads that wait together). Every alert is a new firing episode (its
   own fingerprint), so every alert is an insert: the heavy case. Runs of ``--duration``
   seconds each (and at most ``--max-requests`` with the Python client):
   - ``healthz``: GET /healthz (no token, no database): the server's ceiling;
   - ``batch10``: POST /api/v1/hooks/alertmanager with 10 alerts a payload;
   - ``single``: the same with 1 alert a payload;
   - ``healthz`` again, so a drift of the machine shows.
3. Afterwards the alert rows in the database are counted: they must equal the alerts the
   server acknowledged with 202 (with wrk, up to ``--concurrency`` payloads more: those in
   flight when wrk stops are stored but their answers are not counted).

``--profile`` attaches py-spy to the server during ``batch10`` and ``single``. ``--profile
gil`` (the default) samples only the thread that holds the GIL: a server process runs Python
on one core at a time, and this is where that core goes (SQLite's own C code runs without
the GIL and is not in it). ``--profile wall`` samples every thread that is not idle, so waits
for SQLite's write lock and PostgreSQL round trips show. It prints a breakdown, and keeps
the raw folded stacks in ``bench/out/webhook-<backend>-<run>.pyspy.txt``
(``bench/pyspy_summary.py`` condenses them further).

    .venv/bin/python bench/webhook_ingest.py                      # both backends
    .venv/bin/python bench/webhook_ingest.py --backend sqlite --duration 5
    .venv/bin/python bench/webhook_ingest.py --profile          # or --profile wall
    .venv/bin/python bench/webhook_ingest.py --client wrk       # wrk as the load generator

The client shares the machine's cores with the server; its own CPU time is reported. So is
the CPU a request costs: the server process's (``srv ms/req``: CPU seconds over the run's
requests) and, on PostgreSQL, the database server's (``db ms/req``: every ``postgres``
process of this machine, so run nothing else on it). These are steadier than the rates
when the machine's speed drifts, and say what a change saves even where the rate at 8
connections is bound by the latency of each request rather than by CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from webhook_server import (
    alert_rows,
    cpu_seconds,
    database_cpu_seconds,
    drop_database,
    free_port,
    fresh_database,
    profile_summary,
    serve,
    stop,
)
from webhook_wrk import wrk_run

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
OPSLEDGER = str(Path(sys.executable).with_name("opsledger"))
HOOK = "/api/v1/hooks/alertmanager"
TARGETS = {"batch10": 10_000, "single": 1_000}  # alerts/s
P99_TARGET_MS = 100.0

# --------------------------------------------------------------------------- payloads

_RULES = (
    ("HighCPUUsage", "warning", "node"),
    ("DiskWillFillIn4Hours", "critical", "node"),
    ("KubePodCrashLooping", "warning", "kube-state-metrics"),
    ("PostgresqlReplicationLag", "warning", "postgres"),
    ("ProbeHttpFailure", "critical", "blackbox"),
)
_SERVICES = ("payments-api", "checkout-web", "billing-worker", "identity-api", "search-api")


class Payloads:
    """Alertmanager v4 notifications; every alert a new episode (own fingerprint)."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.n = 0
        self.t0 = datetime(2026, 10, 1, tzinfo=UTC)

    def alert(self) -> dict[str, Any]:
        k = self.n
        self.n += 1
        name, severity, job = _RULES[k % len(_RULES)]
        service = _SERVICES[k % len(_SERVICES)]
        starts = (self.t0 + timedelta(seconds=k)).isoformat().replace("+00:00", "Z")
        return {
            "status": "firing",
            "labels": {
                "alertname": name,
                "severity": severity,
                "service": service,
                "team": "platform",
                "job": job,
                "instance": f"10.0.{k % 250}.{k % 200}:9100",
            },
            "annotations": {
                "summary": f"{name} on {service}",
                "description": f"{name} has been firing for {service} (bench alert {k})",
                "runbook_url": f"https://runbooks.example.org/{name.lower()}",
            },
            "startsAt": starts,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus.example.org:9090/graph?g0.expr={name}&g0.tab=1",
            "fingerprint": f"{self.run}{k:012x}",
        }

    def body(self, alerts: int) -> bytes:
        batch = [self.alert() for _ in range(alerts)]
        first = batch[0]["labels"]
        return json.dumps(
            {
                "version": "4",
                "groupKey": f'{{}}:{{alertname="{first["alertname"]}"}}',
                "truncatedAlerts": 0,
                "status": "firing",
                "receiver": "opsledger",
                "groupLabels": {"alertname": first["alertname"]},
                "commonLabels": {"team": "platform"},
                "commonAnnotations": {},
                "externalURL": "http://alertmanager.example.org:9093",
                "alerts": batch,
            },
            separators=(",", ":"),
        ).encode()


# --------------------------------------------------------------------------- the client


@dataclass
class Run:
    name: str
    alerts_per_request: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    client_cpu: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get(202 if self.alerts_per_request else 200, 0)

    def summary(self) -> dict[str, Any]:
        lat = sorted(self.latencies)

        def pct(p: float) -> float:
            return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000 if lat else 0.0

        rps = len(lat) / self.seconds if self.seconds else 0.0
        return {
            "run": self.name,
            "alerts_per_request": self.alerts_per_request,
            "requests": len(lat),
            "seconds": round(self.seconds, 3),
            "requests_per_s": round(rps, 1),
            "alerts_per_s": round(rps * self.alerts_per_request, 1),
            "p50_ms": round(pct(50), 2),
            "p90_ms": round(pct(90), 2),
            "p99_ms": round(pct(99), 2),
            "max_ms": round(lat[-1] * 1000, 2) if lat else 0.0,
            "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "client_cpu_s": round(self.client_cpu, 2),
        }


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, head: bytes, body: bytes
) -> int:
    writer.write(head + body)
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def _load(
    port: int,
    run: Run,
    token: str,
    payloads: Payloads,
    concurrency: int,
    duration: float,
    max_requests: int,
) -> None:
    auth = f"Authorization: Bearer {token}\r\n".encode()
    sent = 0
    stop_at = 0.0

    async def worker() -> None:
        nonlocal sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.perf_counter() < stop_at and sent < max_requests:
                sent += 1
                if run.alerts_per_request:
                    body = payloads.body(run.alerts_per_request)
                    head = (
                        (
                            f"POST {HOOK} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                        ).encode()
                        + auth
                        + b"\r\n"
                    )
                else:
                    body, head = b"", b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                t = time.perf_counter()
                status = await _request(reader, writer, head, body)
                run.latencies.append(time.perf_counter() - t)
                run.statuses[status] = run.statuses.get(status, 0) + 1
        finally:
            writer.close()

    cpu = time.process_time()
    start = time.perf_counter()
    stop_at = start + duration
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.seconds = time.perf_counter() - start
    run.client_cpu = time.process_time() - cpu


def bench_backend(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    url = fresh_database(backend)
    name = f"bench-{uuid.uuid4().hex[:6]}"
    token = subprocess.run(
        [OPSLEDGER, "--db", url, "tokens", "create", "--name", name, "--scope", "ingest"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    port = free_port()
    proc = serve(url, port, args.workers, OUT / f"webhook-{backend}.serve.log")
    payloads = Payloads(uuid.uuid4().hex[:4])
    runs: list[dict[str, Any]] = []
    try:
        # warm-up: connections, the first queries, the code paths
        warm = Run("warm-up", 10)
        asyncio.run(_load(port, warm, token, payloads, 2, 1.0, 50))
        warmed = warm.statuses.get(202, 0) * 10
        for run_name, per in (("healthz", 0), ("batch10", 10), ("single", 1), ("healthz", 0)):
            run = Run(run_name, per)
            spy = None
            if args.profile and per:
                spy = subprocess.Popen(
                    [
                        shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy")),
                        "record",
                        "--pid",
                        str(proc.pid),
                        "--format",
                        "raw",
                        "--subprocesses",
                        *(["--gil"] if args.profile == "gil" else []),
                        "--rate",
                        "200",
                        "--duration",
                        str(int(args.duration)),
                        "-o",
                        str(OUT / f"webhook-{backend}-{run_name}.pyspy.txt"),
                    ],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(1.0)
            server_cpu = cpu_seconds(proc.pid)
            database_cpu = database_cpu_seconds(backend)
            if args.client == "wrk":
                result = wrk_run(
                    port, run_name, per, token, args.concurrency, args.duration, args.wrk_threads
                )
            else:
                asyncio.run(
                    _load(
                        port,
                        run,
                        token,
                        payloads,
                        args.concurrency,
                        args.duration,
                        args.max_requests,
                    )
                )
                result = run.summary()
            result["server_cpu_s"] = round(cpu_seconds(proc.pid) - server_cpu, 2)
            # a database process that ended meanwhile takes its CPU time with it: never below 0
            database_cpu = database_cpu_seconds(backend) - database_cpu
            result["database_cpu_s"] = max(0.0, round(database_cpu, 2))
            result["loadavg_1min_after"] = round(os.getloadavg()[0], 2)
            runs.append(result)
            if spy is not None:
                spy.wait()
                result["profile"] = profile_summary(OUT / f"webhook-{backend}-{run_name}.pyspy.txt")
            print(
                f"[{backend}] {run_name:8} {result['requests_per_s']:8.1f} req/s "
                f"{result['alerts_per_s']:9.1f} alerts/s  p50 {result['p50_ms']:6.1f} ms  "
                f"p99 {result['p99_ms']:6.1f} ms  statuses {result['statuses']}",
                flush=True,
            )
    finally:
        stop(proc)
    stored = alert_rows(url)
    sent_ok = warmed + sum(r["statuses"].get("202", 0) * r["alerts_per_request"] for r in runs)
    drop_database(backend)
    healthz = [r["requests_per_s"] for r in runs if r["run"] == "healthz"]
    return {
        "runs": runs,
        "alerts_stored": stored,
        "alerts_acknowledged": sent_ok,
        "healthz_rps": round(statistics.fmean(healthz), 1),
    }


def _machine() -> dict[str, Any]:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "loadavg_start": os.getloadavg(),
    }


def _per_request(run: dict[str, Any], key: str) -> str:
    """CPU milliseconds a request (server or database processes); '-' where none was
    measured (/healthz runs no database; SQLite's work is in the server's figure)."""
    requests = run["requests_per_s"] * run["seconds"]
    if not requests or not run.get(key):
        return "-"
    return f"{1000 * run[key] / requests:.3f}"


def report(results: dict[str, Any]) -> None:
    print()
    print(
        f"{results['client']} client, "
        f"concurrency {results['concurrency']}, {results['workers']} server worker(s), "
        f"{results['duration']} s a run; "
        f"load average at start {results['machine']['loadavg_start']}, "
        f"at end {results['loadavg_end']}"
    )
    print(
        f"{'backend':10} {'run':8} {'req/s':>8} {'alerts/s':>9} {'target':>7} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'vs healthz':>10} {'srv cpu/s':>9} {'cli cpu/s':>9} "
        f"{'srv ms/req':>10} {'db ms/req':>9}"
    )
    for backend, res in results["backends"].items():
        for r in res["runs"]:
            target = TARGETS.get(r["run"])
            ratio = r["requests_per_s"] / res["healthz_rps"] if res["healthz_rps"] else 0.0
            print(
                f"{backend:10} {r['run']:8} {r['requests_per_s']:8.1f} {r['alerts_per_s']:9.1f} "
                f"{target or '':>7} {r['p50_ms']:7.1f} {r['p99_ms']:7.1f} {ratio:10.2f} "
                f"{r['server_cpu_s'] / r['seconds']:9.2f} {r['client_cpu_s'] / r['seconds']:9.2f} "
                f"{_per_request(r, 'server_cpu_s'):>10} {_per_request(r, 'database_cpu_s'):>9}"
            )
        print(
            f"{backend:10} alerts acknowledged {res['alerts_acknowledged']}, "
            f"stored {res['alerts_stored']}"
            + (
                " (wrk stops with up to --concurrency payloads in flight: stored, not counted)"
                if results["client"] == "wrk"
                else ""
            )
        )
        for r in res["runs"]:
            if "profile" in r:
                print(f"  py-spy, {backend} {r['run']} ({r['profile']['busy_samples']} samples):")
                for part, share in r["profile"]["shares"].items():
                    print(f"    {share:5.1f} %  {part}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds a run (default 10)")
    ap.add_argument("--concurrency", type=int, default=8, help="connections (default 8)")
    ap.add_argument("--workers", type=int, default=1, help="`serve --workers` (default 1)")
    ap.add_argument(
        "--client",
        choices=("python", "wrk"),
        default="python",
        help="load generator: the Python client (default) or wrk (bench/webhook_wrk.py)",
    )
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk -t (default 1)")
    ap.add_argument("--max-requests", type=int, default=200_000, help="a run's request cap")
    ap.add_argument(
        "--profile",
        nargs="?",
        const="gil",
        choices=("gil", "wall"),
        help="py-spy the server's ingest runs: gil (default: the thread holding the GIL, "
        "where the CPU goes) or wall (every busy thread, waits for locks and round trips "
        "included)",
    )
    args = ap.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": _machine(),
        "concurrency": args.concurrency,
        "workers": args.workers,
        "client": args.client,
        "duration": args.duration,
        "backends": {},
    }
    for backend in backends:
        results["backends"][backend] = bench_backend(backend, args)
    results["loadavg_end"] = os.getloadavg()
    (OUT / "webhook_ingest.json").write_text(json.dumps(results, indent=2) + "\n")
    report(results)


if __name__ == "__main__":
    main()
