"""Properties of the ledger (hypothesis), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete

from opsledger.core.periods import parse_period
from opsledger.errors import RecordError
from opsledger.ingest.importer import import_source
from opsledger.ingest.reader import open_source
from opsledger.ingest.replay import export_csv, export_jsonl, iter_records, rebuild
from opsledger.kpis.engine import scorecard
from opsledger.kpis.model import Scope
from opsledger.kpis.policy import Policy
from opsledger.records.spec import KINDS
from opsledger.records.tables import RECORD_TABLES, imports, raw_chunks, record_versions
from tests.ingest.test_import import snapshot

BASE = datetime(2026, 9, 20, tzinfo=UTC)
SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def ts(minutes: int, offset_h: int = 0) -> str:
    t = (BASE + timedelta(minutes=minutes)).astimezone(
        __import__("datetime").timezone(timedelta(hours=offset_h))
    )
    return t.isoformat()


ids = st.sampled_from([f"x{i}" for i in range(6)])
minutes = st.integers(0, 60 * 24 * 40)
offsets = st.sampled_from([0, 2, -5])

alerts = st.builds(
    lambda i, m, d, ack, act, off, svc: {
        "kind": "alert",
        "id": i,
        "name": "Disk" if m % 2 else "CPU",
        "fired_at": ts(m, off),
        **({"resolved_at": ts(m + d)} if d else {}),
        **({"acknowledged_at": ts(m + 1)} if ack else {}),
        **({"actionable": act} if act is not None else {}),
        **({"service": svc} if svc else {}),
        "labels": {"n": m % 3},
    },
    ids,
    minutes,
    st.integers(0, 300),
    st.booleans(),
    st.none() | st.booleans(),
    offsets,
    st.sampled_from([None, "api", "db"]),
)
incidents = st.builds(
    lambda i, m, sev, d, key, svc: {
        "kind": "incident",
        "id": i,
        "severity": sev,
        "started_at": ts(m),
        "mitigated_at": ts(m + d),
        "resolved_at": ts(m + 2 * d),
        "acknowledged_at": ts(m + 3),
        **({"root_cause_key": key} if key else {}),
        **({"service": svc} if svc else {}),
    },
    ids,
    minutes,
    st.integers(1, 3),
    st.integers(0, 500),
    st.sampled_from([None, "k1", "k2"]),
    st.sampled_from([None, "api", "db"]),
)
changes = st.builds(
    lambda i, m, d, outcome: {
        "kind": "change",
        "id": i,
        "approved_at": ts(m),
        "deployed_at": ts(m + d),
        "outcome": outcome,
        "service": "api",
    },
    ids,
    minutes,
    st.integers(-100, 20000),
    st.sampled_from(["success", "failed", "rolled_back"]),
)
task_runs = st.builds(
    lambda i, m, auto, mins: {
        "kind": "task_run",
        "id": i,
        "task": "rotate",
        "team": "core",
        "performed_at": ts(m),
        "automated": auto,
        "minutes": mins,
    },
    ids,
    minutes,
    st.booleans(),
    st.floats(0, 600, allow_nan=False),
)
REFS = [
    {"kind": "team", "id": "core"},
    {"kind": "service", "id": "api", "team": "core", "tier": "critical"},
    {"kind": "service", "id": "db", "team": "core"},
]
records = st.lists(st.one_of(alerts, incidents, changes, task_runs), min_size=1, max_size=25)


def clear(engine: Engine) -> None:
    with engine.begin() as conn:
        for kind in KINDS:
            conn.execute(delete(RECORD_TABLES[kind.name]))
        conn.execute(delete(raw_chunks))
        conn.execute(delete(record_versions))
        conn.execute(delete(imports))


def write(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def do_import(engine: Engine, path: Path) -> None:
    with engine.begin() as conn:
        import_source(conn, open_source(str(path)))


def card(engine: Engine) -> Any:
    with engine.connect() as conn:
        return [
            scorecard(conn, parse_period(p), Scope(**s), Policy())
            for p in ("2026-10", "2026-W40")
            for s in ({}, {"team": "core"})
        ]


@SETTINGS
@given(recs=records)
def test_importing_twice_changes_nothing(
    engine: Engine, tmp_path: Path, recs: list[dict[str, Any]]
) -> None:
    clear(engine)
    f = write(tmp_path / "r.jsonl", REFS + recs)
    do_import(engine, f)
    first = snapshot(engine)
    do_import(engine, f)
    assert snapshot(engine) == first


@SETTINGS
@given(
    recs=records,
    bad_at=st.integers(0, 25),
    bad=st.sampled_from(
        [
            '{"kind":"alert","id":"z","name":"n","fired_at":"2026-10-01T00:00:00"}',
            '{"kind":"incident","id":"z","severity":5,"started_at":"2026-10-01T00:00:00Z"}',
            '{"kind":"nope","id":"z"}',
            "not json",
        ]
    ),
)
def test_one_bad_record_changes_nothing(
    engine: Engine, tmp_path: Path, recs: list[dict[str, Any]], bad_at: int, bad: str
) -> None:
    clear(engine)
    do_import(engine, write(tmp_path / "refs.jsonl", REFS))
    before = snapshot(engine)
    lines = [json.dumps(r) for r in recs]
    lines.insert(min(bad_at, len(lines)), bad)
    f = tmp_path / "bad.jsonl"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        do_import(engine, f)
    except RecordError as exc:
        assert f"line {min(bad_at, len(recs)) + 1}" in str(exc)
    else:
        raise AssertionError("a bad record was accepted")
    assert snapshot(engine) == before


@SETTINGS
@given(recs=records)
def test_export_then_import_is_identity(
    engine: Engine, tmp_path: Path, recs: list[dict[str, Any]]
) -> None:
    clear(engine)
    do_import(engine, write(tmp_path / "r.jsonl", REFS + recs))
    with engine.connect() as conn:
        stored = {k.name: list(iter_records(conn, k.name)) for k in KINDS}
        files = []
        for k in KINDS:
            if stored[k.name]:
                j = tmp_path / f"{k.table}.jsonl"
                j.write_text("".join(export_jsonl(conn, k.name)), encoding="utf-8")
                c = tmp_path / f"{k.table}.csv"
                c.write_text("".join(export_csv(conn, k.name)), encoding="utf-8")
                files += [j, c]
    before = snapshot(engine)
    for f in files:  # both forms re-import as "unchanged"
        do_import(engine, f)
    assert snapshot(engine) == before
    clear(engine)
    for f in files[1::2]:  # CSV alone rebuilds the same records
        do_import(engine, f)
    with engine.connect() as conn:
        assert {k.name: list(iter_records(conn, k.name)) for k in KINDS} == stored


@SETTINGS
@given(first=records, second=records)
def test_scorecard_after_rebuild_is_unchanged(
    engine: Engine, tmp_path: Path, first: list[dict[str, Any]], second: list[dict[str, Any]]
) -> None:
    clear(engine)
    do_import(engine, write(tmp_path / "a.jsonl", REFS + first))
    do_import(engine, write(tmp_path / "b.jsonl", second))  # replaces some ids
    before_card, before = card(engine), snapshot(engine)
    with engine.begin() as conn:
        rebuild(conn)
    assert card(engine) == before_card
    assert snapshot(engine) == before
