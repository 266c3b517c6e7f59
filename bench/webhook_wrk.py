"""wrk as the load generator of bench/webhook_ingest.py (``--client wrk``).

wrk (https://github.com/wg/wrk, Debian package ``wrk``) is a C load generator: HTTP/1.1
keep-alive, ``-c`` connections over ``-t`` threads, each connection sending its next request
when the answer to the previous one is in (a closed loop, like the Python client), bodies made
by bench/webhook_wrk.lua. It costs far less CPU per request than the Python client, which
matters on a machine whose cores the server shares.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "webhook_wrk.lua"


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    return found


def wrk_run(
    port: int,
    name: str,
    alerts_per_request: int,
    token: str,
    concurrency: int,
    duration: float,
    threads: int = 1,
) -> dict[str, Any]:
    """One run of wrk; the same keys as webhook_ingest.Run.summary()."""
    env = {
        "WRK_TOKEN": token,
        "WRK_ALERTS": str(alerts_per_request),
        "WRK_RUN": uuid.uuid4().hex[:6],
        "PATH": "/usr/bin:/bin",
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [
            wrk_path(),
            "-t",
            str(threads),
            "-c",
            str(concurrency),
            "-d",
            f"{max(1, round(duration))}s",
            "--timeout",
            "10s",
            "-s",
            str(SCRIPT),
            f"http://127.0.0.1:{port}",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=duration + 60,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    line = next(
        (ln for ln in done.stdout.splitlines() if ln.startswith("WRK_RESULT ")), None
    )
    if line is None:
        raise SystemExit(f"wrk printed no result:\n{done.stdout}\n{done.stderr}")
    res = json.loads(line.split(" ", 1)[1])
    seconds = res["duration_us"] / 1e6
    rps = res["requests"] / seconds if seconds else 0.0
    ok_status = "202" if alerts_per_request else "200"
    statuses = {ok_status: res["ok"]}
    if res["bad"]:
        statuses["other"] = res["bad"]
    return {
        "run": name,
        "alerts_per_request": alerts_per_request,
        "requests": res["requests"],
        "seconds": round(seconds, 3),
        "requests_per_s": round(rps, 1),
        "alerts_per_s": round(rps * alerts_per_request, 1),
        "p50_ms": round(res["p50_us"] / 1000, 2),
        "p90_ms": round(res["p90_us"] / 1000, 2),
        "p99_ms": round(res["p99_us"] / 1000, 2),
        "max_ms": round(res["max_us"] / 1000, 2),
        "mean_ms": round(res["mean_us"] / 1000, 2),
        "statuses": statuses,
        "socket_errors": res["socket_errors"],
        "client_cpu_s": round(
            (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 2
        ),
    }
