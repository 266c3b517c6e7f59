"""Imports of many batches, with multi-row statements: the result is the one of a replay
(rebuild), and a failure in a later batch, in validation or in storing, leaves nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from opsledger.ingest import importer, rows
from opsledger.records.tables import RECORD_TABLES, imports
from tests.ingest.test_import import snapshot


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of 40 items and statements of 7 rows, so that a few hundred records take
    every path: several batches in flight, full multi-row statements and a remainder."""
    monkeypatch.setattr(importer, "BATCH", 40)
    monkeypatch.setattr(rows, "MAX_ROWS", 7)
    monkeypatch.setattr(rows, "_PREPARED", {})


def records(n: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [{"kind": "team", "id": f"t{i}", "name": f"T{i}"} for i in range(5)]
    for i in range(n):
        out.append({
            "kind": "alert", "id": f"a{i}", "name": f"Rule{i % 9}", "service": f"s{i % 4}",
            "severity": "warning", "fired_at": f"2026-10-01T{i % 24:02d}:{i % 60:02d}:00Z",
            "resolved_at": f"2026-10-02T03:{i % 60:02d}:00+02:00", "labels": {"n": i},
        })
        if i % 50 == 0:  # an id again, later in the file: the last one wins
            out.append({"kind": "team", "id": f"t{i % 5}", "name": f"again {i}"})
    return out


def write(path: Path, recs: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    return path


def test_multi_row_import_equals_the_replay(
    cli: Any, engine: Engine, tmp_path: Path, small_batches: None
) -> None:
    recs = records(333)
    code, _, err = cli("import", str(write(tmp_path / "a.jsonl", recs)))
    assert code == 0, err
    piped = snapshot(engine)
    with engine.connect() as conn:
        alerts = {r.id: r for r in conn.execute(select(RECORD_TABLES["alert"]))}
        teams = {r.id: r.name for r in conn.execute(select(RECORD_TABLES["team"]))}
    assert len(alerts) == 333
    assert alerts["a7"].labels == {"n": 7}
    assert alerts["a7"].resolved_at.isoformat() == "2026-10-02T01:07:00+00:00"  # in UTC
    last = {r["id"]: r["name"] for r in recs if r["kind"] == "team"}  # the last one wins
    assert teams == last
    assert teams["t0"] == "again 300"
    # a rebuild applies the raw log's lines one by one through the applier
    assert cli("rebuild")[0] == 0
    assert snapshot(engine) == piped
    # and importing it again changes nothing
    assert cli("import", str(write(tmp_path / "a.jsonl", recs)))[0] == 0
    assert snapshot(engine) == piped


def test_bad_line_after_stored_batches_leaves_nothing(
    cli: Any, engine: Engine, tmp_path: Path, small_batches: None
) -> None:
    recs = records(300)
    bad = write(tmp_path / "bad.jsonl", recs)
    with bad.open("a", encoding="utf-8") as fh:
        fh.write('{"kind":"alert","id":"x","name":"X","fired_at":"2026-10-01T00:00:00"}\n')
    code, _, err = cli("import", str(bad))
    assert code == 2
    assert f"line {len(recs) + 1}" in err and "fired_at" in err
    with engine.connect() as conn:
        for table in (RECORD_TABLES["alert"], RECORD_TABLES["team"], imports):
            assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 0


def test_store_failure_fails_the_import(
    engine: Engine, tmp_path: Path, small_batches: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from opsledger.ingest.importer import import_source
    from opsledger.ingest.reader import open_source

    calls = {"n": 0}
    store = importer._Applier._store

    def failing(self: Any, *args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        store(self, *args)

    monkeypatch.setattr(importer._Applier, "_store", failing)
    path = write(tmp_path / "w.jsonl", records(300))
    with pytest.raises(RuntimeError, match="disk full"), engine.begin() as conn:
        import_source(conn, open_source(str(path)))
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(imports)).scalar_one() == 0


def _counts(out: str) -> dict[str, Any]:
    return {c["source"].rsplit("/", 1)[-1] + ":" + k: v
            for c in json.loads(out)["imported"] for k, v in c["counts"].items()}


@pytest.mark.parametrize("known_ids", [0, 3, 1_000_000])
def test_bulk_import_remembers_what_it_stored(
    cli: Any, engine: Engine, tmp_path: Path, small_batches: None,
    monkeypatch: pytest.MonkeyPatch, known_ids: int,
) -> None:
    """Into tables empty at its start, a file import looks up only the ids it stored itself
    (kept in memory up to KNOWN_IDS a kind, then it asks the database): the counts and the
    tables are those of an import that asks the database for every id (KNOWN_IDS 0), with ids
    repeated across batches, changed and changed back; a second file then finds the stored
    records in the database."""
    monkeypatch.setattr(importer, "KNOWN_IDS", known_ids)
    recs = records(120)
    recs += [{"kind": "team", "id": "t1", "name": "T1"}, {"kind": "team", "id": "t9", "name": "x"}]
    recs += [dict(r) for r in records(40)[5:]]  # the same alerts again, unchanged
    a2 = next(r for r in recs if r["id"] == "a2")
    recs += [{**a2, "severity": "critical"}, a2]  # changed, then back, batches after its first
    code, out, err = cli("import", str(write(tmp_path / "a.jsonl", recs)), "--format", "json")
    assert code == 0, err
    assert _counts(out) == {  # an id again in the same file counts once, as it ends
        "a.jsonl:team": {"inserted": 6, "replaced": 0, "unchanged": 1},
        "a.jsonl:alert": {"inserted": 120, "replaced": 0, "unchanged": 40},
    }
    with engine.connect() as conn:
        table = RECORD_TABLES["alert"]
        assert conn.execute(select(table.c.severity).where(table.c.id == "a2")).scalar_one() \
            == "warning"
    second = [{"kind": "team", "id": "t9", "name": "y"}, a2]
    code, out, err = cli("import", str(write(tmp_path / "b.jsonl", second)), "--format", "json")
    assert code == 0, err  # tables not empty now: the stored records are found
    assert _counts(out) == {"b.jsonl:team": {"inserted": 0, "replaced": 1, "unchanged": 0},
                            "b.jsonl:alert": {"inserted": 0, "replaced": 0, "unchanged": 1}}


@pytest.mark.parametrize("right", [True, False])
def test_expected_counts_are_written_once_and_corrected_when_wrong(
    engine: Engine, right: bool
) -> None:
    """apply_entries(expect=...) writes the imports row with the caller's totals; when the
    import counts otherwise, the row gets the counts it made."""
    from opsledger.ingest.reader import Item, entry
    from opsledger.records.validation import validate_json_line

    recs = [r for r in records(5) if r["kind"] == "alert"]
    entries = [
        entry(Item(*validate_json_line(json.dumps(r), "t", f"line {n}"), "json", ""))
        for n, r in enumerate(recs, 1)
    ]
    expect = importer.KindCounts(5, 0, 0) if right else importer.KindCounts(2, 1, 9)
    with engine.begin() as conn:
        done = importer.apply_entries(conn, importer.batches(entries), "expect test", expect=expect)
        row = conn.execute(
            select(imports.c.inserted, imports.c.replaced, imports.c.unchanged).where(
                imports.c.id == done.import_id
            )
        ).one()
    t = done.totals()
    assert (t.inserted, t.replaced, t.unchanged) == (5, 0, 0)
    assert tuple(row) == (5, 0, 0)


@pytest.mark.parametrize("reserved", [False, True], ids=["started", "reserved"])
@pytest.mark.parametrize("first", ["json", "csv"])
def test_a_chunk_started_with_the_import_is_used_or_not_left(
    engine: Engine, first: str, reserved: bool
) -> None:
    """apply_entries(first_format=...) starts the import's first raw chunk with its imports
    row (one statement on PostgreSQL); with `reserved` (PostgreSQL), their ids were taken
    ahead (importer.Reservation) and the chunk is written whole once its lines are known.
    The entries' lines go into it when they are of that form; when none is, the chunk
    started for nothing is not left behind (an empty chunk would break a rebuild). Either
    way the import ends as one without the hint."""
    from opsledger.ingest.reader import Item, entry
    from opsledger.ingest.replay import rebuild
    from opsledger.records.tables import raw_chunks
    from opsledger.records.validation import validate_json_line

    if reserved and engine.dialect.name != "postgresql":
        pytest.skip("ids are reserved on PostgreSQL")
    recs = [r for r in records(6) if r["kind"] == "alert"]
    entries = [
        entry(Item(*validate_json_line(json.dumps(r), "t", f"line {n}"), "json", json.dumps(r)))
        for n, r in enumerate(recs, 1)
    ]
    with engine.begin() as conn:
        taken = None
        if reserved:
            reservation = importer.Reservation.ahead(conn, 2)
            taken = reservation.take()
            assert taken is not None
            second = reservation.take()
            assert second is not None and reservation.take() is None
            assert second.import_id > taken.import_id and second.seq > taken.seq
        done = importer.apply_entries(
            conn, importer.batches(entries), "hint test", first_format=first, reserved=taken
        )
        chunks = conn.execute(
            select(raw_chunks.c.seq, raw_chunks.c.format, raw_chunks.c.lines).where(
                raw_chunks.c.import_id == done.import_id
            )
        ).all()
        source = conn.execute(select(imports.c.source).where(imports.c.id == done.import_id))
        assert source.scalar_one() == "hint test"
    assert done.totals().inserted == 6
    assert [tuple(c)[1:] for c in chunks] == [("json", 6)]
    if taken is not None:
        assert done.import_id == taken.import_id
        # the reserved chunk holds the lines when they are of its form; else it was never
        # written, and the lines went to a chunk of their own
        assert (chunks[0].seq == taken.seq) == (first == "json")
    before = snapshot(engine)
    with engine.begin() as conn:
        rebuild(conn)
    assert snapshot(engine) == before
