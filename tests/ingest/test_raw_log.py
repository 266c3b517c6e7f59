"""The raw log: every version of a record can be read back, the last occurrence of an id in
a file wins across batches, and a rebuild re-derives records, pointers and kept versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select

from opsledger.ingest import importer
from opsledger.ingest.rawlog import iter_lines, versions
from opsledger.ingest.replay import rebuild
from opsledger.records.tables import record_versions
from tests.conftest import load
from tests.ingest.test_import import snapshot


def team(tid: str, name: str) -> dict[str, Any]:
    return {"kind": "team", "id": tid, "name": name}


def test_every_version_of_a_replaced_record(engine: Engine) -> None:
    for n, name in enumerate(["A", "B", "C"], 1):
        load(engine, [team("t1", name)], source=f"file{n}.jsonl")
    with engine.connect() as conn:
        got = versions(conn, "team", "t1")
        kept = conn.execute(
            select(record_versions.c.import_id, record_versions.c.replaced_by)
            .order_by(record_versions.c.id)
        ).all()
    assert [json.loads(v.raw.payload)["name"] for v in got] == ["A", "B", "C"]
    assert [v.source for v in got] == ["file1.jsonl", "file2.jsonl", "file3.jsonl"]
    assert [v.current for v in got] == [False, False, True]
    imports = [v.import_id for v in got]
    assert [tuple(r) for r in kept] == [(imports[0], imports[1]), (imports[1], imports[2])]


@pytest.mark.parametrize("batch", [2, 5000])
def test_last_occurrence_back_to_stored_across_batches(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(importer, "BATCH", batch)
    first = load(engine, [team("t1", "A")], source="first")
    before = versions_of(engine, "t1")
    # t1 changes, other records come between (other batches when batch=2), t1 changes back
    fillers = [team(f"x{i}", "X") for i in range(5)]
    result = load(engine, [team("t1", "B"), *fillers, team("t1", "A")], source="second")
    assert result.counts["team"].inserted == 5
    assert result.counts["team"].replaced == 0
    assert result.counts["team"].unchanged == 1
    after = versions_of(engine, "t1")
    assert after == before  # the record points at the first import's line again
    assert after[0][0] == first.import_id
    with engine.connect() as conn:
        assert conn.execute(select(record_versions)).all() == []
    state = snapshot(engine)
    with engine.begin() as conn:
        rebuild(conn)
    assert snapshot(engine) == state


@pytest.mark.parametrize("batch", [2, 5000])
def test_file_with_a_repeated_id_imports_twice_to_the_same_state(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, batch: int
) -> None:
    monkeypatch.setattr(importer, "BATCH", batch)
    records = [team("t1", "old"), team("t2", "x"), team("t3", "y"), team("t1", "new")]
    result = load(engine, records)
    assert result.counts["team"].inserted == 3
    state = snapshot(engine)
    again = load(engine, records)
    # counted per id: t1 first differs from the stored record, then its last occurrence is it
    assert (again.counts["team"].replaced, again.counts["team"].unchanged) == (0, 3)
    assert snapshot(engine) == state  # nothing logged, no import row
    with engine.connect() as conn:
        (t1,) = versions(conn, "team", "t1")
        assert json.loads(t1.raw.payload)["name"] == "new"
    with engine.begin() as conn:
        rebuild(conn)
    assert snapshot(engine) == state


def test_csv_lines_carry_their_kind_and_rebuild(cli: Any, engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "teams.csv"
    f.write_text("id,name\nt1,One\nt2,Two\n", encoding="utf-8")
    assert cli("import", str(f))[0] == 0
    f.write_text("id,name\nt1,Uno\n", encoding="utf-8")
    assert cli("import", str(f))[0] == 0
    with engine.connect() as conn:
        lines = [(r.format, json.loads(r.payload)) for r in iter_lines(conn)]
    assert lines == [
        ("csv", {"kind": "team", "id": "t1", "name": "One"}),
        ("csv", {"kind": "team", "id": "t2", "name": "Two"}),
        ("csv", {"kind": "team", "id": "t1", "name": "Uno"}),
    ]
    state = snapshot(engine)
    assert cli("rebuild")[0] == 0
    assert snapshot(engine) == state


def test_versions_of_an_unknown_record(engine: Engine) -> None:
    from opsledger.errors import NotFoundError

    with engine.connect() as conn, pytest.raises(NotFoundError, match="no team with id"):
        versions(conn, "team", "nope")


def versions_of(engine: Engine, tid: str) -> list[tuple[int, str, bool]]:
    with engine.connect() as conn:
        return [(v.import_id, v.raw.payload, v.current) for v in versions(conn, "team", tid)]


def test_stored_digest_is_the_digest_of_the_record(engine: Engine) -> None:
    """The digest the importer stores (from the fast path's values) equals `digest()` of the
    record as pydantic validates it, with or without explicit nulls (null is the same as
    absent), and it is of the current scheme."""
    from opsledger.ingest.importer import digest
    from opsledger.records.tables import RECORD_TABLES
    from opsledger.records.validation import validate_json_line

    given = [
        {"kind": "alert", "id": "a1", "name": "X", "fired_at": "2026-10-01T10:00:00+02:00",
         "labels": {"b": 1, "a": [1, 2]}},
        {"kind": "alert", "id": "a2", "name": "X", "fired_at": "2026-10-01T08:00:00Z",
         "resolved_at": None, "labels": {"a": [1, 2], "b": 1}},
    ]
    load(engine, given)
    with engine.connect() as conn:
        stored = dict(conn.execute(select(RECORD_TABLES["alert"].c.id,
                                          RECORD_TABLES["alert"].c._digest)).all())
    for rec in given:
        _, full = validate_json_line(json.dumps(rec), "t", "1")
        assert stored[rec["id"]] == digest("alert", full)
        assert stored[rec["id"]].startswith("x") and len(stored[rec["id"]]) == 32
    # the same instant, labels in another key order: the same digest
    assert stored["a1"] != stored["a2"]  # ids differ
    _, one = validate_json_line(json.dumps({**given[0], "id": "z"}), "t", "1")
    _, two = validate_json_line(json.dumps({**given[1], "id": "z"}), "t", "1")
    assert digest("alert", one) == digest("alert", two)


def test_each_thread_compresses_with_its_own_codec() -> None:
    """python-zstandard's compressor and decompressor objects must not be used by two threads
    at once (one shared by the server's writer threads crashed the process): each thread gets
    its own, and chunks made in several threads at once read back whole."""
    import threading

    from opsledger.ingest import rawlog

    mine = (rawlog._compressor(), rawlog._decompressor())
    assert mine == (rawlog._compressor(), rawlog._decompressor())  # kept for the thread
    seen: list[tuple[Any, Any]] = []
    bad: list[int] = []
    start = threading.Barrier(4)

    def work(n: int) -> None:
        start.wait()
        seen.append((rawlog._compressor(), rawlog._decompressor()))
        for i in range(300):
            lines = [json.dumps({"thread": n, "i": i, "pad": "x" * (i % 97)})] * (1 + i % 5)
            if rawlog.decode(rawlog.encode(list(lines))) != lines:
                bad.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad
    codecs = [mine, *seen]
    assert len({id(c) for c, _ in codecs}) == 5 and len({id(d) for _, d in codecs}) == 5
