"""The webhook writer (api/writer.py, api/batch.py): many payloads in one transaction.

The writer's thread is held (a threading.Event) after it took the first payload until every
payload of a test is queued, so the batches these tests make are known, not left to timing:
one transaction holds them all.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from opsledger.access import TokenCache, create_token, revoke_token, token_hash
from opsledger.api import batch as batch_module
from opsledger.api import writer as writer_module
from opsledger.api.writer import Logged, Writer
from opsledger.connectors.base import get_connector
from opsledger.core.db import open_database
from opsledger.core.sql import driver, placeholder
from opsledger.ingest.importer import ImportResult
from opsledger.ingest.inbound import ingest_records
from opsledger.ingest.rawlog import versions
from opsledger.records.tables import (
    RECORD_TABLES,
    imports,
    inbound_payloads,
    raw_chunks,
    rejected_payloads,
)
from opsledger.records.validation import canonical

ALERTMANAGER = get_connector("alertmanager")
assert ALERTMANAGER is not None


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    engine = open_database(db_url)
    yield engine
    engine.dispose()


def notification(*alerts: dict[str, Any]) -> bytes:
    return json.dumps({"version": "4", "status": "firing", "alerts": list(alerts)}).encode()


def alert(fp: str, status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": f"Disk{fp}", "service": "db", "severity": "critical"},
        "annotations": {"summary": f"disk {fp}"},
        "startsAt": "2026-10-04T13:22:05Z",
        "endsAt": "2026-10-04T14:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "fingerprint": fp,
        **extra,
    }


def stored_alerts(engine: Engine) -> dict[str, dict[str, Any]]:
    table = RECORD_TABLES["alert"]
    cols = [c for c in table.c if not c.name.startswith("_")]
    with engine.connect() as conn:
        rows = conn.execute(select(*cols)).all()
    return {r.id: json.loads(canonical(dict(r._mapping))) for r in rows}


def count(engine: Engine, table: Any, floor: int = 0) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).where(table.c.id > floor)).scalar_one())


def max_id(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one())


def held_writer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> tuple[Writer, threading.Event, list[int]]:
    """A writer that, having taken its first payload, waits for `release` before it looks
    for more; `sizes` gets the number of payloads of each transaction."""
    writer = Writer(engine, None, TokenCache())
    release = threading.Event()
    sizes: list[int] = []
    drain, transaction = Writer._drain, Writer._transaction

    def held_drain(self: Writer, first: Any) -> Any:
        assert release.wait(30), "the test never released the writer"
        return drain(self, first)

    def counted(
        self: Writer, conn: Any, jobs: list[writer_module.Job], fast: bool = True
    ) -> None:
        sizes.append(len(jobs))
        transaction(self, conn, jobs, fast)

    monkeypatch.setattr(Writer, "_drain", held_drain)
    monkeypatch.setattr(Writer, "_transaction", counted)
    return writer, release, sizes


def webhook(conn: Any, body: bytes) -> ImportResult:
    """A payload the general way (ingest.inbound), in the caller's transaction."""
    assert ALERTMANAGER is not None
    return ingest_records(conn, ALERTMANAGER, ALERTMANAGER.parse(body, {}), body, "webhook")


def batched_writer(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> tuple[Writer, threading.Event, list[int]]:
    """A held writer (held_writer) whose payloads must all take the batch path."""

    def general(*args: Any) -> None:
        raise AssertionError("the batch took the general path")

    monkeypatch.setattr(writer_module, "ingest_records", general)
    return held_writer(engine, monkeypatch)


def alert_history(engine: Engine, run: str) -> dict[str, list[tuple[dict[str, Any], bool]]]:
    """Every version of each alert of `run` (the raw line it points at, read back), with
    the run's tag replaced, so that two runs compare."""
    with engine.connect() as conn:
        ids = conn.execute(select(RECORD_TABLES["alert"].c.id)).scalars().all()
        return {
            rid.replace(run, "RUN"): [
                (json.loads(v.raw.payload.replace(run, "RUN")), v.current)
                for v in versions(conn, "alert", rid)
            ]
            for rid in ids if run in rid
        }


async def send_all(
    writer: Writer, bodies: list[bytes], release: threading.Event, token: str | None = None
) -> list[ImportResult | BaseException]:
    """Queue every body (the writer held on the first), release it, gather the answers."""
    assert ALERTMANAGER is not None
    digest = token_hash(token) if token else None
    tasks = [
        asyncio.ensure_future(
            writer.ingest(ALERTMANAGER, ALERTMANAGER.parse(b, {}), b, digest, "127.0.0.1")
        )
        for b in bodies
    ]
    await asyncio.sleep(0)  # every task submits its payload
    release.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


def send_batched(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, bodies: list[bytes]
) -> tuple[list[ImportResult | BaseException], list[int]]:
    """`bodies` through a writer whose payloads must all take the batch path, queued before
    it looks (one transaction for all, unless a limit splits them): the answers, and the
    number of payloads of each transaction."""
    writer, release, sizes = batched_writer(engine, monkeypatch)
    try:
        return asyncio.run(send_all(writer, bodies, release)), sizes
    finally:
        writer.close()


def test_concurrent_payloads_are_stored_once_in_two_transactions(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, release, sizes = held_writer(engine, monkeypatch)
    run = uuid.uuid4().hex[:8]
    bodies = [
        notification(*(alert(f"{run}{i:03d}{j}") for j in range(3))) for i in range(40)
    ]
    inbound_floor = max_id(engine, inbound_payloads)
    try:
        results = asyncio.run(send_all(writer, bodies, release))
    finally:
        writer.close()
    assert sizes == [40]  # group commit: one transaction for all that waited
    assert all(isinstance(r, ImportResult) for r in results), results
    assert [r.totals().inserted for r in results if isinstance(r, ImportResult)] == [3] * 40
    stored = stored_alerts(engine)
    mine = {k: v for k, v in stored.items() if run in k}
    assert len(mine) == 120  # every acknowledged alert, once
    assert count(engine, inbound_payloads, inbound_floor) == 40  # every body kept


def test_a_bad_payload_is_refused_alone_and_logged(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer, release, sizes = held_writer(engine, monkeypatch)
    run = uuid.uuid4().hex[:8]
    # resolved before it fired: parses, but the merged record breaks the time order
    bad = notification(
        alert(f"{run}bad", "resolved", endsAt="2026-10-04T13:00:00Z"), alert(f"{run}ok0")
    )
    bodies = [notification(alert(f"{run}first")), notification(alert(f"{run}ok1")), bad,
              notification(alert(f"{run}ok2"))]
    rejected_floor = max_id(engine, rejected_payloads)
    inbound_floor = max_id(engine, inbound_payloads)
    try:
        results = asyncio.run(send_all(writer, bodies, release))
    finally:
        writer.close()
    assert sizes == [4]
    refused = results[2]
    assert isinstance(refused, Logged) and refused.status == 422, refused
    assert "resolved_at" in refused.detail
    assert all(isinstance(r, ImportResult) for i, r in enumerate(results) if i != 2), results
    stored = {k for k in stored_alerts(engine) if run in k}
    assert {k.split("-")[1] for k in stored} == {f"{run}first", f"{run}ok1", f"{run}ok2"}
    assert count(engine, inbound_payloads, inbound_floor) == 3
    with engine.connect() as conn:
        logged = conn.execute(
            select(rejected_payloads).where(rejected_payloads.c.id > rejected_floor)
        ).all()
    assert [(r.connector, r.status, r.body) for r in logged] == [
        ("alertmanager", 422, bad.decode())
    ]
    assert logged[0].remote == "127.0.0.1"


def test_a_token_revoked_after_the_request_side_check_stores_nothing(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"w-{uuid.uuid4().hex[:8]}"
    with engine.begin() as conn:
        token = create_token(conn, name, "ingest")
        revoke_token(conn, name)  # revoked after the cache of the request side said yes
    writer, release, _ = held_writer(engine, monkeypatch)
    run = uuid.uuid4().hex[:8]
    try:
        results = asyncio.run(
            send_all(writer, [notification(alert(f"{run}{i}")) for i in range(2)], release, token)
        )
    finally:
        writer.close()
    assert all(isinstance(r, Logged) and r.status == 401 for r in results), results
    assert not [k for k in stored_alerts(engine) if run in k]


def sequence(run: str) -> list[bytes]:
    """Notifications of a few episodes over their life: firing, repeated, resolved, a late
    firing retry (which must not clear the resolution), and a batch with one alert twice."""
    a, b, c = f"{run}a", f"{run}b", f"{run}c"
    return [
        notification(alert(a), alert(b)),
        notification(alert(a)),  # unchanged
        notification(alert(a, "resolved"), alert(c)),
        notification(alert(a)),  # late retry of the firing one
        notification(alert(b, annotations={"summary": "disk b, again"})),
        notification(alert(c), alert(c, "resolved")),  # one alert twice in one payload
        notification(alert(b, "resolved")),
    ]


def counts(result: ImportResult | BaseException) -> tuple[int, int, int]:
    assert isinstance(result, ImportResult), result
    t = result.totals()
    return (t.inserted, t.replaced, t.unchanged)


def test_batched_payloads_end_as_payloads_applied_one_by_one(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ALERTMANAGER is not None
    one_by_one_run, batched_run = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    one_by_one = []
    for body in sequence(one_by_one_run):
        with engine.begin() as conn:
            one_by_one.append(webhook(conn, body))
    batched, sizes = send_batched(engine, monkeypatch, sequence(batched_run))
    assert sizes == [7]
    assert [counts(r) for r in batched] == [counts(r) for r in one_by_one]
    stored = stored_alerts(engine)

    def records(run: str) -> dict[str, dict[str, Any]]:
        return {
            k.replace(run, "RUN"): {f: (str(v).replace(run, "RUN")) for f, v in rec.items()}
            for k, rec in stored.items()
            if run in k
        }

    assert records(batched_run) == records(one_by_one_run)
    assert len(records(batched_run)) == 3
    assert all("resolved_at" in r for r in records(batched_run).values())

    # the same versions: the lines that replaced versions point at
    assert alert_history(engine, batched_run) == alert_history(engine, one_by_one_run)
    assert sum(len(v) for v in alert_history(engine, batched_run).values()) > 3


def test_when_the_batch_path_fails_the_transaction_is_done_again_the_general_way(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(conn: Any, payloads: Any) -> None:
        raise RuntimeError("batch path broken")

    monkeypatch.setattr(writer_module, "apply_batch", broken)
    writer, release, sizes = held_writer(engine, monkeypatch)
    run = uuid.uuid4().hex[:8]
    try:
        results = asyncio.run(
            send_all(writer, [notification(alert(f"{run}{i}")) for i in range(5)], release)
        )
    finally:
        writer.close()
    # the batch path's transaction is rolled back and done again, each payload the general
    # way (the batch path takes no SAVEPOINT of its own)
    assert sizes == [5, 5]
    assert [counts(r) for r in results] == [(1, 0, 0)] * 5
    assert len([k for k in stored_alerts(engine) if run in k]) == 5


def test_when_the_batch_path_fails_part_way_nothing_of_it_is_left(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch path fails after it has written: the alerts upserted, the imports row and
    the raw chunk written (apply_entries), then the inbound rows fail. The transaction is
    rolled back and done again the general way: each payload stored once, as the general
    path stores it, and no row of the failed attempt left."""
    failed: list[int] = []

    def broken(conn: Any, now: Any, rows: Any) -> None:
        # the batch path has written its import by now (it is not a failure before writing);
        # asked on the driver, as the writer may be in pipeline mode here (core.sql.pipeline)
        with_imports = driver(conn).execute(
            f'SELECT count(*) FROM "imports" WHERE "id" > {placeholder(conn)}', (imports_floor,)
        ).fetchall()[0][0]
        failed.append(int(with_imports))
        raise RuntimeError("inbound rows broken")

    monkeypatch.setattr(batch_module, "_insert_inbound", broken)
    writer, release, sizes = held_writer(engine, monkeypatch)
    run = uuid.uuid4().hex[:8]
    bodies = [notification(alert(f"{run}{i}")) for i in range(5)]
    imports_floor = max_id(engine, imports)
    inbound_floor = max_id(engine, inbound_payloads)
    with engine.connect() as conn:
        chunk_floor = int(conn.execute(
            select(func.coalesce(func.max(raw_chunks.c.seq), 0))
        ).scalar_one())
    try:
        results = asyncio.run(send_all(writer, bodies, release))
    finally:
        writer.close()
    assert failed == [1]  # the batch path ran once, wrote its import, and failed
    assert [counts(r) for r in results] == [(1, 0, 0)] * 5
    mine = sorted(k for k in stored_alerts(engine) if run in k)
    assert len(mine) == 5
    assert all(len(v) == 1 for v in alert_history(engine, run).values())
    with engine.connect() as conn:
        inbound = conn.execute(
            select(inbound_payloads.c.id, inbound_payloads.c.import_id, inbound_payloads.c.body)
            .where(inbound_payloads.c.id > inbound_floor)
            .order_by(inbound_payloads.c.id)
        ).all()
        made = conn.execute(
            select(imports.c.id, imports.c.inserted).where(imports.c.id > imports_floor)
        ).all()
        chunks = conn.execute(
            select(raw_chunks.c.import_id, raw_chunks.c.inbound_id, raw_chunks.c.lines)
            .where(raw_chunks.c.seq > chunk_floor)
        ).all()
    assert [r.body for r in inbound] == [b.decode() for b in bodies]  # one row each
    # the general way: one import a payload, one raw chunk an import (none of the batch's)
    assert len(made) == 5 and all(r.inserted == 1 for r in made)
    # each payload's import, its raw chunk (pointing at its inbound row) and nothing else
    result_imports = [r.import_id for r in results if isinstance(r, ImportResult)]
    assert sorted(result_imports) == sorted(r.id for r in made)
    assert sorted((r.import_id, r.inbound_id, r.lines) for r in chunks) == sorted(
        (imp, row.id, 1) for imp, row in zip(result_imports, inbound, strict=True)
    )
    assert sorted(alert_history(engine, run)) == sorted(k.replace(run, "RUN") for k in mine)
    assert sizes == [5, 5]  # rolled back and done again in a second transaction


def test_over_http_a_record_refused_by_the_writer_is_problem_json_and_logged(
    db_url: str,
) -> None:
    import warnings

    from opsledger.api.app import create_app
    from opsledger.settings import Settings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
        from fastapi.testclient import TestClient

    app = create_app(Settings(database_url=db_url))
    engine: Engine = app.state.engine
    with engine.begin() as conn:
        token = create_token(conn, f"w-{uuid.uuid4().hex[:8]}", "ingest")
    run = uuid.uuid4().hex[:8]
    bad = notification(alert(f"{run}bad", "resolved", endsAt="2026-10-04T13:00:00Z"))
    rejected_floor = max_id(engine, rejected_payloads)
    auth = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app) as client:
            r = client.post("/api/v1/hooks/alertmanager", content=bad, headers=auth)
            assert r.status_code == 422, r.text
            assert r.headers["content-type"] == "application/problem+json"
            assert "resolved_at" in r.json()["detail"]
            good = notification(alert(f"{run}good"))
            r = client.post("/api/v1/hooks/alertmanager", content=good, headers=auth)
            assert r.status_code == 202 and r.json()["inserted"] == 1, r.text
        with engine.connect() as conn:
            logged = conn.execute(
                select(rejected_payloads.c.status, rejected_payloads.c.body).where(
                    rejected_payloads.c.id > rejected_floor
                )
            ).all()
        assert [tuple(row) for row in logged] == [(422, bad.decode())]
        assert [k for k in stored_alerts(engine) if run in k] == [f"am-{run}good-1791120125"]
    finally:
        engine.dispose()


def test_inbound_payloads_of_a_batch_are_kept_as_the_general_path_keeps_them(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One INSERT for the inbound payloads of a batch: each body verbatim (non-ASCII text as
    is), its connector, the time received, and the import that applied it (none for a
    payload that changed nothing)."""
    assert ALERTMANAGER is not None
    run = uuid.uuid4().hex[:8]
    odd = alert(f"{run}x", annotations={"summary": "d\u00e9j\u00e0 vu \u2603"})
    bodies = [notification(alert(f"{run}{i}")) for i in range(3)] + [
        notification(odd),
        notification(alert(f"{run}0")),  # the first one again: unchanged
    ]
    floor = max_id(engine, inbound_payloads)
    before = datetime.now(UTC)
    writer, release, sizes = held_writer(engine, monkeypatch)
    try:
        results = asyncio.run(send_all(writer, bodies, release))
    finally:
        writer.close()
    after = datetime.now(UTC)
    assert sizes == [5]
    assert [counts(r) for r in results] == [(1, 0, 0)] * 4 + [(0, 0, 1)]
    c = inbound_payloads.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(c.connector, c.received_at, c.import_id, c.body)
            .where(c.id > floor)
            .order_by(c.id)
        ).all()
    assert [r.body for r in rows] == [b.decode() for b in bodies]
    assert {r.connector for r in rows} == {"alertmanager"}
    assert all(before <= r.received_at <= after for r in rows)
    imported = {r.import_id for r in rows[:4]}
    assert len(imported) == 1 and None not in imported  # one import for the run
    assert rows[4].import_id is None  # changed nothing


def test_a_batch_that_changes_nothing_makes_no_import(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Repeated notifications (Alertmanager's repeat_interval): the batch path sees from the
    stored digests that nothing changes and writes no imports row and no raw chunk at all;
    the inbound payloads are kept, with no import."""
    run = uuid.uuid4().hex[:8]
    bodies = [notification(alert(f"{run}{i}")) for i in range(3)]
    first, sizes = send_batched(engine, monkeypatch, bodies)
    assert [counts(r) for r in first] == [(1, 0, 0)] * 3
    imports_floor, chunk_floor = max_id(engine, imports), 0
    with engine.connect() as conn:
        chunk_floor = int(conn.execute(select(func.max(raw_chunks.c.seq))).scalar_one())
    inbound_floor = max_id(engine, inbound_payloads)

    def counting(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("apply_entries ran for a run that changes nothing")

    monkeypatch.setattr(batch_module, "apply_entries", counting)
    again, sizes = send_batched(engine, monkeypatch, bodies)
    assert sizes == [3]
    assert [counts(r) for r in again] == [(0, 0, 1)] * 3
    assert all(isinstance(r, ImportResult) and r.import_id == 0 for r in again)
    with engine.connect() as conn:
        assert max_id(engine, imports) == imports_floor
        assert conn.execute(select(func.max(raw_chunks.c.seq))).scalar_one() == chunk_floor
        rows = conn.execute(
            select(inbound_payloads.c.import_id, inbound_payloads.c.body)
            .where(inbound_payloads.c.id > inbound_floor)
            .order_by(inbound_payloads.c.id)
        ).all()
    assert [(r.import_id, r.body) for r in rows] == [(None, b.decode()) for b in bodies]


def test_a_batch_of_several_runs_makes_an_import_a_run_in_order(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch whose third payload changes an alert the first made is two runs, so two
    imports (each version of the alert is kept). `imports_needed` counts them before the
    lookup; on PostgreSQL their ids and first chunks are reserved with the lookup, taken in
    order, and the raw log replays to the same ledger."""
    from opsledger.ingest.replay import rebuild
    from tests.ingest.test_import import snapshot

    assert ALERTMANAGER is not None
    run = uuid.uuid4().hex[:8]
    bodies = [
        notification(alert(f"{run}a"), alert(f"{run}b")),
        notification(alert(f"{run}c")),
        notification(alert(f"{run}a", annotations={"summary": "changed"})),
    ]
    parts = [(ALERTMANAGER, ALERTMANAGER.parse(b, {})) for b in bodies]
    assert batch_module.imports_needed(parts) == 2
    assert batch_module.imports_needed(parts[:2]) == 1
    grafana = get_connector("grafana")
    assert grafana is not None
    assert batch_module.imports_needed([parts[0], (grafana, parts[1][1])]) == 2
    floor = max_id(engine, imports)
    results, sizes = send_batched(engine, monkeypatch, bodies)
    assert sizes == [3]
    assert [counts(r) for r in results] == [(2, 0, 0), (1, 0, 0), (0, 1, 0)]
    ids = [r.import_id for r in results if isinstance(r, ImportResult)]
    assert ids[0] == ids[1] < ids[2]
    with engine.connect() as conn:
        made = conn.execute(
            select(imports.c.id, imports.c.inserted, imports.c.replaced)
            .where(imports.c.id > floor).order_by(imports.c.id)
        ).all()
        chunks = conn.execute(
            select(raw_chunks.c.import_id, raw_chunks.c.lines)
            .where(raw_chunks.c.import_id > floor).order_by(raw_chunks.c.seq)
        ).all()
    assert [tuple(r) for r in made] == [(ids[0], 3, 0), (ids[2], 0, 1)]
    assert [tuple(c) for c in chunks] == [(ids[0], 3), (ids[2], 1)]
    assert stored_alerts(engine)[f"am-{run}a-1791120125"]["annotations"] == {"summary": "changed"}
    before = snapshot(engine)
    with engine.begin() as conn:
        rebuild(conn)
    assert snapshot(engine) == before


def test_a_payload_of_the_general_path_between_batch_payloads_keeps_the_order(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An Events API payload (a connector with a `prepare` step: the general path) between two
    Alertmanager payloads, in one transaction: the transaction runs alone (the writer key
    exclusive) and, on PostgreSQL, reserves the batch path's import ids after that lock; the
    imports are made in the payloads' order, and the raw log replays to the same ledger."""
    from opsledger.ingest import importer
    from opsledger.ingest.replay import rebuild
    from tests.ingest.test_import import snapshot

    events = get_connector("events")
    assert ALERTMANAGER is not None and events is not None
    run = uuid.uuid4().hex[:8]
    event = json.dumps({
        "routing_key": "k", "event_action": "trigger", "dedup_key": f"{run}ev",
        "payload": {"summary": "disk full", "source": "db1", "severity": "critical",
                    "timestamp": "2026-10-04T13:30:00Z"},
    }).encode()
    jobs = [
        (ALERTMANAGER, notification(alert(f"{run}x"))),
        (events, event),
        (ALERTMANAGER, notification(alert(f"{run}y"))),
    ]
    reserved: list[int] = []
    ahead = importer.Reservation.ahead.__func__  # type: ignore[attr-defined]

    def counted(cls: Any, conn: Any, n: int) -> Any:
        reserved.append(n)
        return ahead(cls, conn, n)

    monkeypatch.setattr(importer.Reservation, "ahead", classmethod(counted))
    writer, release, sizes = held_writer(engine, monkeypatch)

    async def send() -> list[ImportResult | BaseException]:
        tasks = [
            asyncio.ensure_future(writer.ingest(c, c.parse(b, {}), b, None, None))
            for c, b in jobs
        ]
        await asyncio.sleep(0)
        release.set()
        return list(await asyncio.gather(*tasks, return_exceptions=True))

    try:
        results = asyncio.run(send())
    finally:
        writer.close()
    assert sizes == [3]
    ids = [r.import_id for r in results if isinstance(r, ImportResult)]
    assert len(ids) == 3 and ids[0] < ids[1] < ids[2], results
    # the Alertmanager payloads are one run: one import reserved ahead (PostgreSQL)
    assert reserved == ([1] if engine.dialect.name == "postgresql" else [])
    before = snapshot(engine)
    with engine.begin() as conn:
        rebuild(conn)
    assert snapshot(engine) == before


async def one_alert(writer: Writer, fingerprint: str) -> ImportResult:
    """A notification of one new alert, through `writer`; returns after its commit."""
    body = notification(alert(fingerprint))
    assert ALERTMANAGER is not None
    return await writer.ingest(ALERTMANAGER, ALERTMANAGER.parse(body, {}), body, None, None)


def test_writers_of_several_processes_take_turns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`serve --workers N` on SQLite: each process's writer takes an exclusive flock on
    `<database>-writer` for its transaction, so one waits for the other's commit instead of
    sleeping in SQLite's busy handler. (flock locks belong to an open file, so a second
    WriteTurn in this process stands for the writer of another process.)"""
    db = tmp_path / "turns.db"
    engine = open_database(f"sqlite:///{db}")
    other = writer_module.WriteTurn.of(engine)
    assert isinstance(other, writer_module.WriteTurn)
    assert other.path == f"{db}-writer"
    writer = Writer(engine, None, TokenCache())
    try:
        with other:  # the other process's writer is in a transaction
            loop = asyncio.new_event_loop()
            task = loop.create_task(one_alert(writer, "turns"))
            loop.run_until_complete(asyncio.sleep(0.3))
            assert not task.done() and writer.batches == 0  # waits for its turn
        result = loop.run_until_complete(task)  # its turn came: stored
        loop.close()
    finally:
        writer.close()
        other.close()
    assert counts(result) == (1, 0, 0)
    assert writer.batches == 1
    assert writer_module.WriteTurn.of(open_database("sqlite:///:memory:")).__class__ is not (
        writer_module.WriteTurn
    )
    engine.dispose()


def test_writers_of_several_processes_take_turns_on_postgresql(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On PostgreSQL each writer transaction takes an advisory lock first, so the writers of
    `serve --workers N` take turns: one never merges a patch against a record the other has
    changed but not committed (which would lose that change's fields). Another connection
    holding the lock stands for the other process's writer."""
    if engine.dialect.name != "postgresql":
        pytest.skip("the SQLite writers take turns through a flock (test above)")
    writer = Writer(engine, None, TokenCache())
    other = engine.connect()
    try:
        other.exec_driver_sql("SELECT pg_advisory_lock(%s)", (writer_module.WRITER_LOCK,))
        other.commit()
        loop = asyncio.new_event_loop()
        task = loop.create_task(one_alert(writer, f"pgturn{uuid.uuid4().hex[:8]}"))
        loop.run_until_complete(asyncio.sleep(0.5))
        assert not task.done() and writer.batches == 0  # waits for its turn
        assert _waiting_advisory_locks(other) == 1
        other.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (writer_module.WRITER_LOCK,))
        other.commit()
        result = loop.run_until_complete(task)  # its turn came: stored
        loop.close()
    finally:
        other.close()
        writer.close()
    assert counts(result) == (1, 0, 0)
    assert writer.batches == 1


def test_a_batch_over_stored_records_keeps_their_versions(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch path reads the stored records once (api/batch._load) and hands their states
    to the importer: a batch that resolves alerts stored by an earlier transaction keeps the
    same versions (the lines the replaced versions point at) as payloads applied one by one."""
    assert ALERTMANAGER is not None
    reference, batched = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]

    def firing(run: str) -> bytes:
        return notification(*(alert(f"{run}{i}") for i in range(3)))

    def resolving(run: str) -> list[bytes]:
        return [notification(alert(f"{run}{i}", status="resolved")) for i in range(3)]

    for body in [firing(reference), *resolving(reference), firing(batched)]:
        with engine.begin() as conn:
            webhook(conn, body)
    results, sizes = send_batched(engine, monkeypatch, resolving(batched))
    assert sizes == [3]
    assert [counts(r) for r in results] == [(0, 1, 0)] * 3

    assert alert_history(engine, batched) == alert_history(engine, reference)
    assert [len(v) for v in alert_history(engine, batched).values()] == [2, 2, 2]


def _waiting_advisory_locks(conn: Any) -> int:
    return int(conn.exec_driver_sql(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
    ).scalar_one())


def _until(loop: asyncio.AbstractEventLoop, check: Any, seconds: float = 10.0) -> None:
    """Run `loop` until check() holds (or fail after `seconds`)."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        loop.run_until_complete(asyncio.sleep(0.05))
    raise AssertionError("timed out")


def test_writer_threads_go_at_once_on_different_records_and_take_turns_on_one(
    engine: Engine,
) -> None:
    """On PostgreSQL a server process runs two writer threads. A batch-path transaction locks
    the records it names (api.writer.record_lock), not the whole ledger: while one waits for
    a record that another transaction holds, the other thread stores a payload of another
    record; the first is stored once the record is let go, as one change (no fields lost)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("one writer thread on SQLite, whose write lock admits one writer")
    assert writer_module.writer_threads(engine) == 2
    assert ALERTMANAGER is not None
    run = uuid.uuid4().hex[:8]
    held_body = notification(alert(f"{run}held"))
    (held,) = ALERTMANAGER.parse(held_body, {})
    writer = Writer(engine, None, TokenCache(), threads=2)
    other = engine.connect()
    loop = asyncio.new_event_loop()
    try:
        key = writer_module.record_lock(held["kind"], held["id"])
        other.exec_driver_sql("SELECT pg_advisory_lock(%s)", (key,))
        other.commit()
        first = loop.create_task(
            writer.ingest(ALERTMANAGER, ALERTMANAGER.parse(held_body, {}), held_body, None, None)
        )
        _until(loop, lambda: _waiting_advisory_locks(other) == 1)  # waits for the record
        second = loop.create_task(one_alert(writer, f"{run}free"))
        _until(loop, second.done)  # the other thread stored it meanwhile
        assert counts(second.result()) == (1, 0, 0)
        assert not first.done() and writer.batches == 1
        other.exec_driver_sql("SELECT pg_advisory_unlock(%s)", (key,))
        other.commit()
        assert counts(loop.run_until_complete(asyncio.wait_for(first, 10))) == (1, 0, 0)
    finally:
        loop.close()
        other.close()
        writer.close()
    assert writer.batches == 2
    assert {k for k in stored_alerts(engine) if run in k} == {
        held["id"], *(r["id"] for r in ALERTMANAGER.parse(notification(alert(f"{run}free")), {}))
    }


def test_payloads_on_one_record_from_two_writer_threads_lose_nothing(engine: Engine) -> None:
    """Many payloads patching the same alerts, sent at once through two writer threads (each
    record lock taken in ascending order, so no two transactions wait for each other in a
    cycle): every payload is stored, and every annotation that a payload added is there."""
    if engine.dialect.name != "postgresql":
        pytest.skip("one writer thread on SQLite")
    assert ALERTMANAGER is not None
    run = uuid.uuid4().hex[:8]
    fingerprints = [f"{run}{n}" for n in range(4)]
    bodies = [
        notification(*(alert(fp, **{"annotations": {f"note{i}": "x"}}) for fp in (
            fingerprints if i % 2 else reversed(fingerprints)
        )))
        for i in range(40)
    ]
    writer = Writer(engine, None, TokenCache(), threads=2)

    async def send() -> list[ImportResult]:
        assert ALERTMANAGER is not None
        return list(await asyncio.gather(*(
            writer.ingest(ALERTMANAGER, ALERTMANAGER.parse(b, {}), b, None, None) for b in bodies
        )))

    try:
        results = asyncio.run(asyncio.wait_for(send(), 60))
    finally:
        writer.close()
    assert len(results) == 40 and all(isinstance(r, ImportResult) for r in results)
    mine = {k: v for k, v in stored_alerts(engine).items() if run in k}
    assert len(mine) == 4
    merged_one_by_one: dict[str, Any] = {}
    for body in bodies:
        for rec in ALERTMANAGER.parse(body, {}):
            base = merged_one_by_one.get(rec["id"], {})
            update = {k: v for k, v in rec.items() if v is not None}
            merged_one_by_one[rec["id"]] = (
                ALERTMANAGER.merge(base, update) if ALERTMANAGER.merge else {**base, **update}
            )
    for rid, stored in mine.items():
        # the order of payloads sent at once is not defined; what each payload brought is kept
        assert stored["annotations"] == merged_one_by_one[rid]["annotations"]
    # the raw log keeps the order in which the transactions changed each record (the ids of
    # imports and chunks are taken after the record locks): it replays to the same ledger
    from opsledger.ingest.replay import rebuild
    from tests.ingest.test_import import snapshot

    before = snapshot(engine)
    with engine.begin() as conn:
        rebuild(conn)
    assert snapshot(engine) == before


def test_closing_stops_every_writer_thread_and_a_later_payload_starts_them_again(
    engine: Engine,
) -> None:
    writer = Writer(engine, None, TokenCache(), threads=2)

    def alive() -> int:
        return sum(1 for t in threading.enumerate()
                   if t.name == "opsledger-webhook-writer" and t.is_alive())

    before = alive()
    run = uuid.uuid4().hex[:8]
    try:
        assert counts(asyncio.run(one_alert(writer, f"{run}a"))) == (1, 0, 0)
        assert alive() == before + 2
        writer.close()
        assert alive() == before
        assert counts(asyncio.run(one_alert(writer, f"{run}b"))) == (1, 0, 0)
        assert alive() == before + 2
    finally:
        writer.close()
    assert alive() == before


def wal_pages(db: Path) -> int:
    """The pages the WAL file of `db` holds (its frames: a 24-byte header and a page each)."""
    with open_database(f"sqlite:///{db}").connect() as conn:
        page = int(conn.exec_driver_sql("PRAGMA page_size").scalar_one())
    wal = Path(f"{db}-wal")
    return (wal.stat().st_size - 32) // (page + 24) if wal.exists() else 0


def test_on_sqlite_the_writer_leaves_checkpoints_to_a_thread_of_their_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's connection keeps statement journals in memory and checkpoints only past
    the backstop; the Checkpointer copies the WAL into the database every CHECKPOINT_EVERY
    commits, in its own thread, and once more when the writer closes."""
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 3)
    db = tmp_path / "ckpt.db"
    engine = open_database(f"sqlite:///{db}")
    writer = Writer(engine, None, TokenCache())
    seen: list[str] = []
    checkpoint = writer_module.Checkpointer._checkpoint

    def watched(self: writer_module.Checkpointer, conn: Any) -> None:
        seen.append(threading.current_thread().name)
        checkpoint(self, conn)

    monkeypatch.setattr(writer_module.Checkpointer, "_checkpoint", watched)
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(7):  # seven transactions, one after the other
            assert counts(asyncio.run(one_alert(writer, f"{run}{i}"))) == (1, 0, 0)
        with writer._engine.connect() as conn:  # type: ignore[union-attr]
            assert conn.exec_driver_sql("PRAGMA temp_store").scalar_one() == 2
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == (
                writer_module.BACKSTOP_PAGES
            )
        checkpointer = writer.checkpointer
        assert checkpointer is not None and checkpointer.path == str(db)
    finally:
        writer.close()
    assert writer.batches == 7
    # signalled after the 3rd and the 6th commit (the thread may take both signals as
    # one), and the last one at close
    assert 2 <= checkpointer.runs <= 3 and checkpointer.frames > 0
    assert set(seen) == {"opsledger-checkpointer"}
    assert not any(t.name == "opsledger-checkpointer" for t in threading.enumerate())
    assert wal_pages(db) > 0 and len(stored_alerts(engine)) == 7
    engine.dispose()


def test_on_sqlite_the_writer_checkpoints_itself_past_the_backstop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under steady load the writer adds pages while the Checkpointer copies them, and the
    WAL starts again from its beginning only when all of it was copied: the writer's own
    checkpoint at BACKSTOP_PAGES keeps it bounded then. Here with no Checkpointer signal at
    all: past the backstop the WAL stops growing; with no backstop it grows with each commit.
    (The migration leaves the WAL at about a hundred pages.)"""
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 10**9)

    def wal_after(backstop: int, name: str) -> list[int]:
        monkeypatch.setattr(writer_module, "BACKSTOP_PAGES", backstop)
        db = tmp_path / name
        engine = open_database(f"sqlite:///{db}")
        writer = Writer(engine, None, TokenCache())
        run = uuid.uuid4().hex[:8]
        pages = [wal_pages(db)]
        try:
            for i in range(40):
                asyncio.run(one_alert(writer, f"{run}{i}"))
                pages.append(wal_pages(db))
        finally:
            writer.close()
        assert len(stored_alerts(engine)) == 40
        assert writer.checkpointer is not None and writer.checkpointer.runs == 0
        engine.dispose()
        return pages

    bounded = wal_after(40, "bounded.db")
    assert max(bounded) == bounded[1]  # from the first commit on, its pages are reused
    unbounded = wal_after(10**9, "unbounded.db")
    assert unbounded[-1] > unbounded[0] + 3 * 40 and unbounded == sorted(unbounded)


def test_on_sqlite_a_checkpointer_that_cannot_open_the_database_stores_nothing_less(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the checkpointer's own connection fail, nothing is raised in its thread, the
    next signal tries again, and the writer stores as before (its own checkpoints at the
    backstop remain)."""
    monkeypatch.setattr(writer_module, "CHECKPOINT_EVERY", 2)
    tries: list[str] = []

    def refuse(path: str, **kwargs: Any) -> Any:
        tries.append(path)
        raise writer_module.sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(writer_module.sqlite3, "connect", refuse)
    db = tmp_path / "refused.db"
    engine = open_database(f"sqlite:///{db}")
    checkpointer = writer_module.Checkpointer.of(engine)
    assert checkpointer is not None
    for attempt in (1, 2):
        for _ in range(2):
            checkpointer.committed()
        deadline = time.monotonic() + 10
        while (len(tries) < attempt or checkpointer._thread is not None) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.01)
        assert tries == [str(db)] * attempt and checkpointer._thread is None
    assert checkpointer.runs == 0
    writer = Writer(engine, None, TokenCache())
    run = uuid.uuid4().hex[:8]
    try:
        for i in range(6):
            assert counts(asyncio.run(one_alert(writer, f"{run}{i}"))) == (1, 0, 0)
    finally:
        writer.close()
    assert len(stored_alerts(engine)) == 6 and len(tries) >= 3
    engine.dispose()
