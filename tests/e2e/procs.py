"""Real processes for the end-to-end tests: started on loopback in their own process group,
waited for until they answer, and always stopped (the whole group, SIGTERM then SIGKILL)."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

# the console script of the venv the tests run in
OPSLEDGER = str(Path(sys.executable).with_name("opsledger"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def find_tool(*names: str) -> str | None:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    return None


def require_tools(**tools: str | None) -> None:
    """Skip when a real tool is not installed; under CI (CI=true) that is a failure."""
    missing = [name for name, path in tools.items() if path is None]
    if not missing:
        return
    message = (
        f"{', '.join(missing)} not installed (Debian packages prometheus and "
        "prometheus-alertmanager; .ci/run installs them)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"CI needs the real tools: {message}")
    pytest.skip(message)


@dataclass
class Proc:
    name: str
    argv: list[str]
    log: Path
    popen: subprocess.Popen[bytes]

    def alive(self) -> bool:
        return self.popen.poll() is None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class Processes:
    """Every process a test starts; `stop_all` (a fixture finalizer, and atexit as a last
    resort) ends them all."""

    workdir: Path
    procs: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        atexit.register(self.stop_all)

    def start(self, name: str, argv: list[str], env: Mapping[str, str] | None = None) -> Proc:
        log = self.workdir / f"{name}.{len(self.procs)}.log"
        with log.open("ab") as out:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=dict(env) if env is not None else None,
                start_new_session=True,  # its own process group: killpg reaches its children
            )
        proc = Proc(name, argv, log, popen)
        self.procs.append(proc)
        return proc

    def stop(self, proc: Proc, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Signal the process group and wait; SIGKILL when it does not end in `timeout`."""
        if proc.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.popen.pid, sig)
            try:
                proc.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.popen.pid, signal.SIGKILL)
                proc.popen.wait(10)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.popen.pid, signal.SIGKILL)  # children left in the group, if any
        return proc.popen.returncode

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            self.stop(proc, timeout=10.0)

    def logs(self) -> str:
        return "\n\n".join(f"--- {p.name} ({p.log.name}) ---\n{p.tail()}" for p in self.procs)


def wait_ready(
    proc: Proc, url: str, timeout: float = 30.0, headers: Mapping[str, str] | None = None
) -> None:
    """Poll `url` until it answers 200; fail at once if the process died."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise AssertionError(
                f"{proc.name} exited with {proc.popen.returncode} before it answered {url}:\n"
                f"{proc.tail()}"
            )
        try:
            if httpx.get(url, timeout=2.0, headers=headers).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{proc.name} did not answer {url} in {timeout:.0f} s:\n{proc.tail()}"
            )
        time.sleep(0.1)


def opsledger_cli(db_url: str, *args: str) -> str:
    """Run the installed `opsledger --db URL ARGS...`; its stdout (fails on a non-zero exit)."""
    done = subprocess.run(
        [OPSLEDGER, "--db", db_url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"opsledger {' '.join(args)} -> {done.returncode}: {done.stderr}"
    return done.stdout


def start_opsledger(
    processes: Processes, db_url: str, port: int, env: Mapping[str, str] | None = None
) -> Proc:
    """`opsledger --db URL serve --port PORT`, waited for until /healthz answers."""
    proc = processes.start(
        "opsledger", [OPSLEDGER, "--db", db_url, "serve", "--port", str(port)], env=env
    )
    wait_ready(proc, f"http://127.0.0.1:{port}/healthz", timeout=60.0)
    return proc
