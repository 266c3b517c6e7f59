"""End to end with the real tools: Prometheus evaluates a rule that fires and resolves on its
own, Alertmanager sends its notifications to a running `opsledger serve` with a bearer token,
and the alert records opsledger keeps are checked against what Alertmanager and Prometheus
themselves report (their APIs, polled all along). Then opsledger is stopped while the alert
changes (with SIGTERM while a new episode starts, then with SIGKILL while it resolves),
Alertmanager retries, opsledger is started again on the same port, and every episode
Alertmanager reported is there exactly once, every notification it delivered was kept, and
nothing is doubled.

Everything runs on 127.0.0.1 with free ports and temporary directories; the processes run
in their own process groups and are always stopped. About a minute per database.

`DemoFlapping` fires while `time() % 24 < 12`, so its episodes start and end on wall-clock
boundaries the test can predict; `DemoUp` (on the `up` series of Prometheus' scrape of
itself) fires all along, in the same Alertmanager group, so every notification about
DemoFlapping repeats it.
"""

from __future__ import annotations

import json
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import pytest
from sqlalchemy import func, select

from opsledger.access import create_token
from opsledger.core.db import make_engine
from opsledger.records.tables import RECORD_TABLES, inbound_payloads, rejected_payloads
from tests.e2e.procs import (
    OPSLEDGER,
    Proc,
    Processes,
    find_tool,
    free_port,
    opsledger_cli,
    require_tools,
    start_opsledger,
    wait_ready,
)

pytestmark = pytest.mark.e2e

PROMETHEUS = find_tool("prometheus")
ALERTMANAGER = find_tool("prometheus-alertmanager", "alertmanager")

PERIOD = 24.0  # DemoFlapping fires in [k*PERIOD, k*PERIOD + HALF), is resolved after ...
HALF = 12.0
RUNBOOK = "https://runbooks.example.org/demo/flapping"
# ... once Prometheus has found Alertmanager (seen through its scrape of itself): an episode
# that began and ended before would have been dropped by Prometheus, not by opsledger
FLAPPING_EXPR = (
    f"(vector(time()) % {PERIOD:g}) < {HALF:g}"
    ' and on() (prometheus_notifications_alertmanagers_discovered{job="prometheus"} > 0)'
)
UP_EXPR = 'up{job="prometheus"} == 1'

RULES = f"""
groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: DemoFlapping
        expr: '{FLAPPING_EXPR}'
        for: 0s
        labels:
          severity: critical
          service: demo
        annotations:
          summary: the demo alert fires {HALF:g} s in every {PERIOD:g} s
          runbook_url: {RUNBOOK}
      - alert: DemoUp
        expr: '{UP_EXPR}'
        for: 0s
        labels:
          severity: warning
          service: demo
        annotations:
          summary: Prometheus scrapes itself
"""


def _prometheus_config(prom_port: int, am_port: int) -> str:
    return f"""
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{am_port}']
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:{prom_port}']
"""


def _alertmanager_config(opsledger_port: int, token: str) -> str:
    return f"""
global:
  resolve_timeout: 10s
route:
  receiver: opsledger
  group_by: [service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: opsledger
    webhook_configs:
      - url: http://127.0.0.1:{opsledger_port}/api/v1/hooks/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials: {token}
"""


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _epoch(text: str) -> float:
    return _time(text).timestamp()


def _millis(text: str) -> int:
    """A timestamp in whole milliseconds (cut, not rounded, as Alertmanager cuts them)."""
    t = _time(text)
    return int(t.replace(microsecond=0).timestamp()) * 1000 + t.microsecond // 1000


@dataclass(frozen=True)
class Seen:
    """An alert episode as Alertmanager reported it (GET /api/v2/alerts)."""

    fingerprint: str
    starts_at: str
    labels: dict[str, str]
    annotations: dict[str, str]
    generator_url: str

    @property
    def id(self) -> str:
        return f"am-{self.fingerprint}-{int(_epoch(self.starts_at))}"

    @property
    def name(self) -> str:
        return self.labels["alertname"]


class Watcher(threading.Thread):
    """Ground truth: polls Alertmanager's and Prometheus' APIs all along and keeps every
    alert episode they report."""

    def __init__(self, am: str, prom: str) -> None:
        super().__init__(daemon=True)
        self.am, self.prom = am, prom
        self.seen: dict[str, Seen] = {}  # id -> episode, from Alertmanager
        self.prom_active: set[tuple[str, int]] = set()  # (alertname, activeAt ms), Prometheus
        self.errors: list[str] = []
        self.trace: deque[str] = deque(maxlen=40)
        self._halt = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        with httpx.Client(timeout=2.0) as client:
            while not self._halt.wait(0.25):
                try:
                    self.poll(client)
                except Exception as exc:  # noqa: BLE001 - reported by the test
                    self.errors.append(repr(exc))

    def poll(self, client: httpx.Client) -> list[Seen]:
        current = [
            Seen(
                a["fingerprint"],
                a["startsAt"],
                a["labels"],
                a.get("annotations") or {},
                a.get("generatorURL", ""),
            )
            for a in client.get(f"{self.am}/api/v2/alerts").raise_for_status().json()
        ]
        with self._lock:
            for s in current:
                self.seen.setdefault(s.id, s)
        rules = client.get(f"{self.prom}/api/v1/alerts").raise_for_status().json()
        alerts = rules["data"]["alerts"]
        with self._lock:
            for a in alerts:
                if a["state"] == "firing":
                    self.prom_active.add((a["labels"]["alertname"], _millis(a["activeAt"])))
        prom = [(a["labels"]["alertname"], a["state"], a["activeAt"]) for a in alerts]
        self.trace.append(
            f"{time.time():.2f} alertmanager={[s.id for s in current]} prometheus={prom}"
        )
        return current

    def current(self) -> list[Seen]:
        with httpx.Client(timeout=2.0) as client:
            return self.poll(client)

    def stop(self) -> None:
        self._halt.set()
        self.join(5)

    def snapshot(self) -> dict[str, Seen]:
        with self._lock:
            return dict(self.seen)


@dataclass
class Stack:
    db_url: str
    processes: Processes
    opsledger: Proc
    opsledger_port: int
    prom_port: int
    am_port: int
    read_token: str
    watcher: Watcher
    floors: dict[str, int]  # the highest inbound/rejected ids before the test (PG is shared)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.opsledger_port}"

    def alerts(self) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.base}/api/v1/alerts",
            params={"limit": 1000},
            headers={"Authorization": f"Bearer {self.read_token}"},
            timeout=10.0,
        )
        assert r.status_code == 200, r.text
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def am_requests(self) -> tuple[int, int]:
        """Alertmanager's own count of webhook requests: (all, failed)."""
        text = httpx.get(f"http://127.0.0.1:{self.am_port}/metrics", timeout=5.0).text
        total = failed = 0
        for line in text.splitlines():
            if 'integration="webhook"' not in line:
                continue
            if line.startswith("alertmanager_notification_requests_total"):
                total += int(float(line.rsplit(" ", 1)[1]))
            elif line.startswith("alertmanager_notification_requests_failed_total"):
                failed += int(float(line.rsplit(" ", 1)[1]))
        return total, failed

    def flapping_query(self) -> str:
        """The rule's expression as Prometheus prints it (the generatorURL carries that)."""
        rules = httpx.get(f"http://127.0.0.1:{self.prom_port}/api/v1/rules", timeout=5.0).json()
        for group in rules["data"]["groups"]:
            for rule in group["rules"]:
                if rule["name"] == "DemoFlapping":
                    query: str = rule["query"]
                    return query
        raise AssertionError(f"no DemoFlapping rule in {rules}")

    def alert_rows(self) -> int:
        return _scalar(self.db_url, select(func.count()).select_from(RECORD_TABLES["alert"]))

    def rejected_since_start(self) -> int:
        r = rejected_payloads.c
        q = select(func.count()).where(r.id > self.floors["rejected"])
        return _scalar(self.db_url, q)

    def inbound_bodies(self) -> list[dict[str, Any]]:
        """The Alertmanager notifications opsledger kept during this test, in order."""
        i = inbound_payloads.c
        engine = make_engine(self.db_url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    select(i.body)
                    .where(i.connector == "alertmanager", i.id > self.floors["inbound"])
                    .order_by(i.id)
                )
                return [json.loads(r.body) for r in rows]
        finally:
            engine.dispose()

    def diagnostics(self) -> str:
        return (
            f"Alertmanager reported: {sorted(self.watcher.snapshot())}\n"
            f"polling errors: {self.watcher.errors[-5:]}\n"
            f"{self.processes.logs()}\n--- what the watcher polled last ---\n"
            + "\n".join(self.watcher.trace)
        )

    def wait_for(
        self, what: str, ok: Callable[[list[dict[str, Any]]], bool], timeout: float
    ) -> list[dict[str, Any]]:
        """Poll opsledger's GET /api/v1/alerts until `ok(items)`, at most `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            items = self.alerts()
            if ok(items):
                return items
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"not seen within {timeout:.0f} s: {what}\nopsledger has: "
                    f"{json.dumps(items, indent=1)}\n{self.diagnostics()}"
                )
            time.sleep(0.5)

    def restart(self) -> None:
        self.opsledger = start_opsledger(self.processes, self.db_url, self.opsledger_port)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(tmp_path)
    yield procs
    procs.stop_all()


@pytest.fixture
def stack(db_url: str, tmp_path: Path, processes: Processes) -> Iterator[Stack]:
    require_tools(prometheus=PROMETHEUS, alertmanager=ALERTMANAGER)
    assert PROMETHEUS is not None and ALERTMANAGER is not None
    suffix = uuid.uuid4().hex[:8]
    name = f"alertmanager-{suffix}"
    ingest = opsledger_cli(db_url, "tokens", "create", "--name", name, "--scope", "ingest")
    engine = make_engine(db_url)
    with engine.begin() as conn:  # the test's own reading token
        read = create_token(conn, f"e2e-{suffix}", "read")
    engine.dispose()
    floors = {
        "inbound": _scalar(db_url, select(func.coalesce(func.max(inbound_payloads.c.id), 0))),
        "rejected": _scalar(db_url, select(func.coalesce(func.max(rejected_payloads.c.id), 0))),
    }
    port, am_port, prom_port = free_port(), free_port(), free_port()
    while len({port, am_port, prom_port}) < 3:
        am_port, prom_port = free_port(), free_port()

    opsledger = processes.start(
        "opsledger", [OPSLEDGER, "--db", db_url, "serve", "--port", str(port)]
    )

    am_dir = tmp_path / "alertmanager"
    am_dir.mkdir()
    (am_dir / "alertmanager.yml").write_text(_alertmanager_config(port, ingest.strip()))
    am = processes.start(
        "alertmanager",
        [
            ALERTMANAGER,
            f"--config.file={am_dir / 'alertmanager.yml'}",
            f"--storage.path={am_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",  # no HA gossip port
        ],
    )
    wait_ready(opsledger, f"http://127.0.0.1:{port}/healthz", timeout=60.0)
    wait_ready(am, f"http://127.0.0.1:{am_port}/-/ready")
    # the ground truth is watched from before Prometheus' first evaluation
    watcher = Watcher(f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}")
    watcher.start()
    try:
        prom_dir = tmp_path / "prometheus"
        prom_dir.mkdir()
        (prom_dir / "prometheus.yml").write_text(_prometheus_config(prom_port, am_port))
        (prom_dir / "rules.yml").write_text(RULES)
        prom = processes.start(
            "prometheus",
            [
                PROMETHEUS,
                f"--config.file={prom_dir / 'prometheus.yml'}",
                f"--storage.tsdb.path={prom_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{prom_port}",
                f"--web.external-url=http://127.0.0.1:{prom_port}/",
                # an alert of the first evaluation, before Prometheus has found Alertmanager, is
                # dropped; it is sent again after this delay (default 1 min)
                "--rules.alert.resend-delay=1s",
            ],
        )
        wait_ready(prom, f"http://127.0.0.1:{prom_port}/-/ready")
        yield Stack(db_url, processes, opsledger, port, prom_port, am_port, read, watcher, floors)
    finally:
        watcher.stop()


def _scalar(db_url: str, query: Any) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def _by_id(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    ids = [a["id"] for a in items]
    doubled = sorted({i for i in ids if ids.count(i) > 1})
    assert not doubled, f"alert records listed twice: {doubled}"
    return {a["id"]: a for a in items}


def _resolved(items: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [a for a in items if a["name"] == name and a.get("resolved_at")]


def _started_in(a: dict[str, Any], boundary: float) -> bool:
    """A DemoFlapping record of the episode that started at `boundary`."""
    return a["name"] == "DemoFlapping" and boundary <= _epoch(a["fired_at"]) < boundary + HALF


def _wait_until(t: float) -> None:
    delay = t - time.time()
    if delay > 0:
        time.sleep(delay)


def _next_boundary(offset: float, lead: float) -> float:
    """The next wall-clock time k*PERIOD + offset at least `lead` seconds from now."""
    t = (time.time() // PERIOD) * PERIOD + offset
    while t - time.time() < lead:
        t += PERIOD
    return t


def _outage(stack: Stack, boundary: float, sig: int) -> None:
    """Stop opsledger (signal `sig`) just before `boundary`, when the alert changes; start it
    again as soon as Alertmanager has failed to deliver that change.

    Alertmanager keeps retrying a failed notification (within a flush of 10 s, then at the
    next flush) until the alert group changes again, HALF seconds later; a change it has
    not delivered by then is never sent, because its notification log compares label sets,
    not episodes. So opsledger must be back well within HALF seconds, and is.
    """
    _wait_until(boundary - 1.5)
    _, failed_before = stack.am_requests()
    stack.processes.stop(stack.opsledger, sig)
    assert time.time() < boundary, "opsledger took too long to stop; the outage missed the change"
    deadline = boundary + HALF / 2
    while stack.am_requests()[1] == failed_before:
        assert time.time() < deadline, (
            f"Alertmanager did not try to deliver while opsledger was down\n{stack.diagnostics()}"
        )
        time.sleep(0.1)
    stack.restart()
    assert time.time() < boundary + HALF - 2, "opsledger took too long to start again"


def _check_episode(a: dict[str, Any], seen: Seen, expected_generator: str | None) -> None:
    """One alert record against Alertmanager's own report of the episode."""
    where = f"record {a['id']}"
    assert a["id"] == seen.id, where
    assert a["name"] == seen.name, where
    assert a["source"] == "alertmanager", where
    assert a["fingerprint"] == seen.fingerprint, where
    assert a["labels"] == seen.labels, where
    assert a["annotations"] == seen.annotations, where
    assert _time(a["fired_at"]) == _time(seen.starts_at), where
    assert a["service"] == "demo", where
    assert a["generator_url"] == seen.generator_url, where
    if expected_generator is not None:
        assert a["generator_url"] == expected_generator, where


Final = tuple[
    set[str], dict[str, Seen], list[dict[str, Any]], list[dict[str, Any]], tuple[int, int]
]


def _settle(stack: Stack, timeout: float = 20.0) -> Final:
    """Alertmanager's current alerts, every episode it reported, opsledger's alerts and kept
    notifications, and Alertmanager's (all, failed) webhook requests: taken again until
    they agree (a notification may be on its way), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        total, failed = stack.am_requests()
        current = {s.id for s in stack.watcher.current()}
        seen = stack.watcher.snapshot()
        items = stack.alerts()
        bodies = stack.inbound_bodies()
        agree = (
            {a["id"] for a in items} == set(seen)
            and all(bool(a.get("resolved_at")) != (a["id"] in current) for a in items)
            and len(bodies) == total - failed
            and stack.am_requests() == (total, failed)
        )
        if agree or time.monotonic() > deadline:
            return current, seen, items, bodies, (total, failed)
        time.sleep(0.5)


def test_alertmanager_episodes_survive_restarts(stack: Stack) -> None:
    # 1. the first episodes, fired and resolved, arrive with every field
    items = stack.wait_for(
        "a DemoFlapping episode and its resolution, and DemoUp",
        lambda items: (
            bool(_resolved(items, "DemoFlapping")) and any(a["name"] == "DemoUp" for a in items)
        ),
        timeout=75.0,
    )
    query = stack.flapping_query()
    generator = f"http://127.0.0.1:{stack.prom_port}/graph?g0.expr={quote_plus(query)}&g0.tab=1"
    seen = stack.watcher.snapshot()
    for a in items:
        assert a["id"] in seen, f"{a['id']} never reported by Alertmanager\n{stack.diagnostics()}"
        _check_episode(a, seen[a["id"]], generator if a["name"] == "DemoFlapping" else None)
    first = _resolved(items, "DemoFlapping")[0]
    assert first["severity"] == "critical"
    assert first["runbook_url"] == RUNBOOK
    fired, resolved = _epoch(first["fired_at"]), _epoch(first["resolved_at"])
    window = (fired // PERIOD) * PERIOD
    assert fired - window < HALF, f"fired at {first['fired_at']}, outside a firing window"
    assert window + HALF <= resolved < window + PERIOD, f"resolved at {first['resolved_at']}"
    up = next(a for a in items if a["name"] == "DemoUp")
    assert up["severity"] == "warning"
    assert up["labels"]["instance"] == f"127.0.0.1:{stack.prom_port}"
    assert up["labels"]["job"] == "prometheus"
    assert "runbook_url" not in up and "resolved_at" not in up
    acknowledged = {a["id"]: a for a in items}

    # 2. opsledger stopped (SIGTERM) while a new DemoFlapping episode starts
    fire = _next_boundary(0.0, lead=2.0)
    _outage(stack, fire, signal.SIGTERM)
    items = stack.wait_for(
        "the episode that started during the first outage",
        lambda items: any(_started_in(a, fire) for a in items),
        timeout=30.0,
    )
    by_id = _by_id(items)
    for rid, before in acknowledged.items():
        assert rid in by_id, f"{rid} was acknowledged before the first outage and is gone"
        after = by_id[rid]
        assert {**after, "resolved_at": None} == {**before, "resolved_at": None}, rid
    acknowledged = by_id
    ongoing = next(a for a in items if _started_in(a, fire))
    assert "resolved_at" not in ongoing, ongoing

    # 3. opsledger killed (SIGKILL) while that episode resolves
    resolve = _next_boundary(HALF, lead=2.0)
    _outage(stack, resolve, signal.SIGKILL)
    items = stack.wait_for(
        f"the resolution of {ongoing['id']} that happened during the second outage",
        lambda items: any(a["id"] == ongoing["id"] and a.get("resolved_at") for a in items),
        timeout=30.0,
    )

    # ground truth: every episode Alertmanager reported is in opsledger exactly once, in
    # the state Alertmanager has now (taken again while a last notification is in flight)
    final = _settle(stack)
    stack.watcher.stop()
    current, seen, items, bodies, (total, failed) = final
    by_id = _by_id(items)
    assert set(by_id) == set(seen), (
        f"missing: {sorted(set(seen) - set(by_id))}, unknown: {sorted(set(by_id) - set(seen))}\n"
        f"{stack.diagnostics()}"
    )
    assert stack.alert_rows() == len(by_id), "the table holds records the API does not list"
    for rid, before in acknowledged.items():
        after = by_id[rid]
        assert {**after, "resolved_at": None} == {**before, "resolved_at": None}, rid
    # Prometheus agrees: the episodes it had firing are the ones Alertmanager reported
    # (activeAt to the millisecond, which is what Alertmanager keeps of startsAt)
    prom_firing = sorted(stack.watcher.prom_active)
    am_firing = sorted((s.name, _millis(s.starts_at)) for s in seen.values())
    assert prom_firing == am_firing, stack.diagnostics()
    for rid, a in by_id.items():
        _check_episode(a, seen[rid], generator if a["name"] == "DemoFlapping" else None)
        if a["name"] == "DemoUp":
            continue
        fired = _epoch(a["fired_at"])
        window = (fired // PERIOD) * PERIOD
        assert fired - window < HALF, f"{rid} fired at {a['fired_at']}, outside a firing window"
        if rid in current:
            assert "resolved_at" not in a, f"{rid} is still firing but has {a['resolved_at']}"
        else:
            assert a.get("resolved_at"), (
                f"{rid} resolved in Alertmanager, not in opsledger\n{stack.diagnostics()}"
            )
            resolved = _epoch(a["resolved_at"])
            assert window + HALF <= resolved < window + PERIOD, f"{rid}: {a['resolved_at']}"
    assert sum(a["name"] == "DemoFlapping" for a in items) >= 2
    assert sum(a["name"] == "DemoUp" for a in items) == 1

    # Alertmanager repeated DemoUp in many notifications; every delivered one was kept
    repeats = sum(any(x["labels"]["alertname"] == "DemoUp" for x in b["alerts"]) for b in bodies)
    assert repeats >= 3, f"DemoUp was sent only {repeats} times: the dedup was not exercised"
    assert failed >= 2, "Alertmanager never failed to deliver: the outages were not exercised"
    assert len(bodies) == total - failed, (
        f"Alertmanager delivered {total - failed} notifications, opsledger kept {len(bodies)}"
    )
    assert stack.rejected_since_start() == 0
