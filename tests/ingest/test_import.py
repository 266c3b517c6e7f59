"""Import rules of spec/records.md, through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from opsledger.ingest.rawlog import iter_lines
from opsledger.records.tables import RECORD_TABLES, imports, raw_chunks, record_versions

TEAM = {"kind": "team", "id": "core", "name": "Core"}
SERVICE = {"kind": "service", "id": "api", "team": "core", "tier": "critical"}
ALERT = {
    "kind": "alert",
    "id": "a1",
    "name": "HighCPU",
    "service": "api",
    "fired_at": "2026-10-04T13:22:05Z",
    "labels": {"env": "prod"},
}
INCIDENT = {
    "kind": "incident",
    "id": "i1",
    "severity": 1,
    "service": "api",
    "started_at": "2026-10-04T13:00:00+02:00",
    "resolved_at": "2026-10-04T12:30:00Z",
}


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything stored: every record table, the raw log and the import log."""
    out: dict[str, Any] = {}
    with engine.connect() as conn:
        for kind, table in RECORD_TABLES.items():
            out[kind] = sorted(tuple(map(str, r)) for r in conn.execute(select(table)))
        out["raw"] = conn.execute(select(func.count()).select_from(raw_chunks)).scalar_one()
        out["raw_lines"] = [(r.seq, r.line, r.payload) for r in iter_lines(conn)]
        kept = [c for c in record_versions.c if c.name != "id"]  # ids: a rebuild renumbers
        out["versions"] = sorted(tuple(map(str, r)) for r in conn.execute(select(*kept)))
        out["imports"] = conn.execute(select(func.count()).select_from(imports)).scalar_one()
    return out


def test_import_counts_and_idempotence(cli: Any, engine: Engine, tmp_path: Path) -> None:
    f = write_jsonl(tmp_path / "r.jsonl", [TEAM, SERVICE, ALERT, INCIDENT])
    code, out, _ = cli("import", str(f), "--format", "json")
    assert code == 0
    counts = json.loads(out)["imported"][0]["counts"]
    assert counts["alert"] == {"inserted": 1, "replaced": 0, "unchanged": 0}
    before = snapshot(engine)
    code, out, _ = cli("import", str(f), "--format", "json")
    assert code == 0
    assert json.loads(out)["imported"][0]["counts"]["incident"]["unchanged"] == 1
    assert snapshot(engine) == before


def test_replace_is_whole_record(cli: Any, engine: Engine, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "a.jsonl", [ALERT])))
    changed = {k: v for k, v in ALERT.items() if k != "labels"} | {"severity": "critical"}
    _code, out, _ = cli(
        "import", str(write_jsonl(tmp_path / "b.jsonl", [changed])), "--format", "json"
    )
    assert json.loads(out)["imported"][0]["counts"]["alert"]["replaced"] == 1
    with engine.connect() as conn:
        row = conn.execute(select(RECORD_TABLES["alert"])).one()._mapping
    assert row["labels"] is None  # not merged with the old record
    assert row["severity"] == "critical"


def test_utc_offset_is_normalised(cli: Any, engine: Engine, tmp_path: Path) -> None:
    cli("import", str(write_jsonl(tmp_path / "i.jsonl", [INCIDENT])))
    with engine.connect() as conn:
        row = conn.execute(select(RECORD_TABLES["incident"])).one()._mapping
    assert row["started_at"].isoformat() == "2026-10-04T11:00:00+00:00"


BAD_LINES = [
    (
        '{"kind":"alert","id":"a","name":"x","fired_at":"2026-10-04T13:22:05"}',
        "fired_at",
        "no UTC offset",
    ),
    ('{"kind":"alarm","id":"a"}', "kind", "unknown kind 'alarm'"),
    (
        '{"kind":"alert","id":"a","name":"x","fired_at":"2026-10-04T13:22:05Z","x":1}',
        "x",
        "unknown field",
    ),
    ('{"kind":"alert","id":"a","fired_at":"2026-10-04T13:22:05Z"}', "name", "missing"),
    (
        '{"kind":"incident","id":"i","severity":"1","started_at":"2026-10-04T13:22:05Z"}',
        "severity",
        "integer",
    ),
    (
        '{"kind":"incident","id":"i","severity":4,"started_at":"2026-10-04T13:22:05Z"}',
        "severity",
        "one of 1, 2, 3",
    ),
    ('{"kind":"alert","id":"a","name":"x",', None, "invalid JSON"),
    (
        '{"kind":"incident","id":"i","severity":2,"started_at":"2026-10-04T13:22:05Z",'
        '"resolved_at":"2026-10-04T13:00:00Z"}',
        "resolved_at",
        "before started_at",
    ),
    (
        '{"kind":"survey_response","id":"s","submitted_at":"2026-10-04T13:22:05Z","score":0}',
        "score",
        "greater than or equal to 1",
    ),
    ('{"kind":"backup_job","id":"j","schedule":"0 2 * * 8"}', "schedule", "out of range"),
    (
        '{"kind":"task_run","id":"t","task":"x","performed_at":"2026-10-04T13:22:05Z",'
        '"automated":"true","minutes":3}',
        "automated",
        "boolean",
    ),
    (  # a database stores 64-bit integers: a larger one is an error, not a crash
        '{"kind":"backup_run","id":"r","job":"j","started_at":"2026-10-04T13:22:05Z",'
        '"status":"success","bytes":9223372036854775808}',
        "bytes",
        "less than or equal to 9223372036854775807",
    ),
    (
        '{"kind":"asset","id":"h","tags":{"a":[1,{"b":-9223372036854775809}]}}',
        "tags",
        "holds the integer -9223372036854775809, beyond the 64 bits",
    ),
    ('{"kind":"asset","id":"h","tags":{"a":1e400,"b":null}}', "tags", "inf, which is not finite"),
    ('{"kind":"asset","id":"h","tags":{"a":[NaN]}}', "tags", "nan, which is not finite"),
]


@pytest.mark.parametrize(("line", "field", "reason"), BAD_LINES)
def test_bad_record_rejects_whole_file(
    cli: Any, engine: Engine, tmp_path: Path, line: str, field: str | None, reason: str
) -> None:
    cli("import", str(write_jsonl(tmp_path / "good.jsonl", [TEAM, SERVICE])))
    before = snapshot(engine)
    f = tmp_path / "bad.jsonl"
    f.write_text(json.dumps(ALERT) + "\n" + line + "\n", encoding="utf-8")
    code, _, err = cli("import", str(f))
    assert code == 2
    assert "bad.jsonl, line 2" in err
    if field:
        assert f"field '{field}'" in err
    assert reason in err
    assert snapshot(engine) == before


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"\xef\xbb\xbf" + json.dumps(TEAM).encode() + b"\n", "byte order mark"),
        (json.dumps(TEAM).encode() + b'\n{"kind":"team","id":"\xff"}\n', "line 2: not valid UTF-8"),
    ],
)
def test_bad_files(cli: Any, engine: Engine, tmp_path: Path, content: bytes, reason: str) -> None:
    before = snapshot(engine)
    f = tmp_path / "f.jsonl"
    f.write_bytes(content)
    code, _, err = cli("import", str(f))
    assert code == 2
    assert reason in err
    assert snapshot(engine) == before


def test_csv_import_crlf_and_types(cli: Any, engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "alerts.csv"
    f.write_bytes(
        b"id,name,fired_at,actionable,labels\r\n"
        b'a1,Disk,2026-10-01T00:00:00Z,true,"{""team"": ""core""}"\r\n'
        b"a2,CPU,2026-10-01T01:00:00+01:00,,\r\n"
    )
    code, _, err = cli("import", str(f))
    assert code == 0, err
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(RECORD_TABLES["alert"]))}
    assert rows["a1"].actionable is True
    assert rows["a1"].labels == {"team": "core"}
    assert rows["a2"].actionable is None
    assert rows["a2"].fired_at.isoformat() == "2026-10-01T00:00:00+00:00"


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("alerts.csv", b"id,name,fired_at\na1,x,2026-10-01T00:00:00\n", "row 1 (line 2)"),
        ("alerts.csv", b"id,name,fired_at,bogus\n", "field 'bogus'"),
        ("alerts.csv", b"id,name,fired_at\na1,x\n", "2 cells, but the header has 3"),
        ("whatever.csv", b"id\nx\n", "cannot tell the kind"),
        (
            "task_runs.csv",
            b"id,task,performed_at,automated,minutes\nt,x,2026-10-01T00:00:00Z,yes,3\n",
            "field 'automated'",
        ),
        ("alerts.csv", b"id,name,fired_at\n", "no rows"),
    ],
)
def test_bad_csv(
    cli: Any, engine: Engine, tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    before = snapshot(engine)
    f = tmp_path / name
    f.write_bytes(content)
    code, _, err = cli("import", str(f))
    assert code == 2
    assert reason in err
    assert snapshot(engine) == before


def test_csv_kind_option_and_lenient(cli: Any, engine: Engine, tmp_path: Path) -> None:
    f = tmp_path / "export.csv"
    f.write_text("id,name,extra\ncore,Core,x\n", encoding="utf-8")
    assert cli("import", str(f), "--kind", "team")[0] == 2
    assert cli("import", str(f), "--kind", "team", "--lenient")[0] == 0
    with engine.connect() as conn:
        (line,) = list(iter_lines(conn))
    assert json.loads(line.payload)["extra"] == "x"  # the unknown field is kept in the raw log


def test_stdin(cli: Any, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    import io
    import sys

    data = (json.dumps(TEAM) + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, _, err = cli("import", "-")
    assert code == 0, err
    with engine.connect() as conn:
        assert conn.execute(select(RECORD_TABLES["team"].c.id)).scalar_one() == "core"


def test_one_bad_file_keeps_the_good_one(cli: Any, engine: Engine, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [TEAM])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind":"team"}\n', encoding="utf-8")
    code, _, err = cli("import", str(good), str(bad))
    assert code == 2
    assert "bad.jsonl, line 1: field 'id'" in err
    with engine.connect() as conn:
        assert (
            conn.execute(select(func.count()).select_from(RECORD_TABLES["team"])).scalar_one() == 1
        )


def test_reimport_over_legacy_digests_changes_nothing(
    cli: Any, engine: Engine, tmp_path: Path
) -> None:
    """A database written before the XXH3 digests holds blake2b ones (`legacy_digest`): a
    re-import of the same records changes nothing there, a changed record is replaced."""
    from sqlalchemy import update

    from opsledger.ingest.rows import legacy_digest
    from opsledger.records.validation import validate_json_line

    f = write_jsonl(tmp_path / "r.jsonl", [TEAM, SERVICE, ALERT, INCIDENT])
    assert cli("import", str(f))[0] == 0
    with engine.begin() as conn:
        for rec in (TEAM, SERVICE, ALERT, INCIDENT):
            kind, full = validate_json_line(json.dumps(rec), "t", "1")
            table = RECORD_TABLES[kind]
            conn.execute(update(table).where(table.c.id == rec["id"])
                         .values(_digest=legacy_digest(full)))
    before = snapshot(engine)
    code, out, _ = cli("import", str(f), "--format", "json")
    assert code == 0
    counts = json.loads(out)["imported"][0]["counts"]
    assert all(c["unchanged"] == 1 and c["replaced"] == 0 for c in counts.values()), counts
    assert snapshot(engine) == before
    changed = write_jsonl(tmp_path / "c.jsonl", [{**TEAM, "name": "Other"}])
    code, out, _ = cli("import", str(changed), "--format", "json")
    assert json.loads(out)["imported"][0]["counts"]["team"]["replaced"] == 1


def test_import_from_a_pipe(db_url: str, engine: Engine) -> None:
    """`opsledger import -` reads standard input from a real pipe (which cannot tell its
    position to a progress bar), here several blocks of lines long."""
    import subprocess
    import sys

    lines = "".join(
        json.dumps({"kind": "team", "id": f"t{i}", "name": f"Team {i}"}) + "\n"
        for i in range(12_000)
    )
    done = subprocess.run(
        [sys.executable, "-m", "opsledger", "--db", db_url, "import", "-", "--format", "json"],
        input=lines.encode(), capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)["imported"][0]["counts"]["team"]["inserted"] == 12_000
    with engine.connect() as conn:
        table = RECORD_TABLES["team"]
        assert conn.execute(select(func.count()).select_from(table)).scalar_one() == 12_000
