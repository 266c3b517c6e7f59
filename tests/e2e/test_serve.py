"""`opsledger serve` as a real process: several workers share the port and the database."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.e2e.procs import OPSLEDGER, Processes, free_port, opsledger_cli, wait_ready


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
