"""`opsledger serve` as a real process: several workers share the port and the database."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.e2e.procs import (
    OPSLEDGER,
    Processes,
    free_port,
    opsledger_cli,
    start_opsledger,
    wait_ready,
)


def _group(pgid: int) -> list[int]:
    """The processes of a process group (Linux /proc)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry.name))
    return pids


def test_serve_with_two_workers(db_url: str, tmp_path: Path) -> None:
    token = opsledger_cli(
        db_url, "tokens", "create", "--name", f"w-{uuid.uuid4().hex[:8]}", "--scope", "admin"
    ).strip()
    processes = Processes(tmp_path)
    try:
        port = free_port()
        proc = processes.start(
            "opsledger",
            [OPSLEDGER, "--db", db_url, "serve", "--port", str(port), "--workers", "2"],
            env={k: v for k, v in os.environ.items() if not k.startswith("OPSLEDGER_")},
        )
        base = f"http://127.0.0.1:{port}"
        wait_ready(proc, f"{base}/healthz", timeout=90.0)
        headers = {"Authorization": f"Bearer {token}"}
        alerts = [
            {
                "status": "firing",
                "labels": {"alertname": f"Worker{i}", "service": "demo"},
                "startsAt": f"2026-10-04T13:22:{i:02d}Z",
                "fingerprint": f"{i:016x}",
            }
            for i in range(20)
        ]
        with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
            for alert in alerts:  # spread over the workers by the kernel
                r = client.post(
                    "/api/v1/hooks/alertmanager",
                    content=json.dumps({"version": "4", "alerts": [alert]}),
                    headers={"Connection": "close"},
                )
                assert r.status_code == 202, r.text
            listed = client.get("/api/v1/alerts", params={"limit": 100}).json()["items"]
        assert sorted(a["name"] for a in listed) == sorted(f"Worker{i}" for i in range(20))
        # the supervisor and its two workers (uvicorn may add a helper process)
        assert len(_group(proc.popen.pid)) >= 3, processes.logs()
    finally:
        processes.stop_all()
    deadline = time.monotonic() + 10.0  # killed ones take a moment to be reaped
    while _group(proc.popen.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _group(proc.popen.pid), "worker processes outlived the server"


def test_serve_refuses_zero_workers(tmp_path: Path) -> None:
    done = subprocess.run(
        [OPSLEDGER, "--db", f"sqlite:///{tmp_path / 'l.db'}", "serve", "--workers", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "--workers 0: give 1 or more" in done.stderr


def _body(run: str, n: int, alerts: int) -> bytes:
    return json.dumps(
        {
            "version": "4",
            "status": "firing",
            "alerts": [
                {
                    "status": "firing",
                    "labels": {"alertname": f"Kill{n}", "service": "demo"},
                    "startsAt": "2026-10-04T13:22:05Z",
                    "fingerprint": f"{run}{n:05d}{j}",
                }
                for j in range(alerts)
            ],
        }
    ).encode()


def test_killed_under_concurrent_load_nothing_acknowledged_is_lost_nor_doubled(
    db_url: str, tmp_path: Path
) -> None:
    """Eight senders post payloads (1 or 10 alerts) at once, so the writer commits them in
    groups; the server is killed with SIGKILL while they send. Every alert of a 202 must be
    stored; after a restart the senders resend what was not acknowledged (as Alertmanager
    retries), and then every alert is stored once: the retries of payloads that had been
    committed without their answer getting through change nothing."""
    import signal
    import threading

    from sqlalchemy import func, select

    from opsledger.core.db import make_engine
    from opsledger.records.tables import RECORD_TABLES

    token = opsledger_cli(
        db_url, "tokens", "create", "--name", f"k-{uuid.uuid4().hex[:8]}", "--scope", "ingest"
    ).strip()
    run = uuid.uuid4().hex[:6]
    bodies = {n: _body(run, n, 10 if n % 2 else 1) for n in range(400)}
    acknowledged: set[int] = set()
    lock = threading.Lock()
    processes = Processes(tmp_path)
    try:
        port = free_port()
        proc = start_opsledger(processes, db_url, port)
        base = f"http://127.0.0.1:{port}"
        headers = {"Authorization": f"Bearer {token}"}
        enough = threading.Event()

        def sender(numbers: list[int]) -> None:
            with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
                for n in numbers:
                    try:
                        r = client.post("/api/v1/hooks/alertmanager", content=bodies[n])
                    except httpx.TransportError:
                        return  # the server was killed
                    assert r.status_code == 202, r.text
                    with lock:
                        acknowledged.add(n)
                        if len(acknowledged) >= 120:
                            enough.set()

        threads = [
            threading.Thread(target=sender, args=(list(range(k, 400, 8)),)) for k in range(8)
        ]
        for t in threads:
            t.start()
        assert enough.wait(120), processes.logs()
        processes.stop(proc, signal.SIGKILL)
        for t in threads:
            t.join(60)
        with lock:
            acked = set(acknowledged)
        assert len(acked) < 400, "the kill came after the last payload: nothing was tested"

        table = RECORD_TABLES["alert"]
        engine = make_engine(db_url)
        try:
            mine = table.c.id.like(f"am-{run}%")
            with engine.connect() as conn:
                stored = {r[0] for r in conn.execute(select(table.c.id).where(mine))}
            for n in acked:  # nothing acknowledged is lost
                alerts = 10 if n % 2 else 1
                expected = {f"am-{run}{n:05d}{j}-1791120125" for j in range(alerts)}
                assert expected <= stored, f"payload {n} was acknowledged and is not stored"

            proc = start_opsledger(processes, db_url, port)
            with httpx.Client(base_url=base, headers=headers, timeout=30.0) as client:
                for n in sorted(set(bodies) - acked):  # the senders retry
                    r = client.post("/api/v1/hooks/alertmanager", content=bodies[n])
                    assert r.status_code == 202, r.text
                    summary = r.json()
                    assert summary["replaced"] == 0
                    assert summary["inserted"] + summary["unchanged"] == summary["records"]
            with engine.connect() as conn:
                total = conn.execute(select(func.count()).where(mine)).scalar_one()
            assert total == sum(10 if n % 2 else 1 for n in bodies)  # each alert once
        finally:
            engine.dispose()
    finally:
        processes.stop_all()
