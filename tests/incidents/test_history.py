"""The incident's own timeline entries come from every stored version (the raw event log)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from opsledger.incidents import service
from opsledger.incidents.history import incident_versions
from opsledger.incidents.timeline import build_timeline
from opsledger.records.tables import imports
from tests.conftest import load

NOW = datetime(2026, 12, 1, tzinfo=UTC)
V1 = {"kind": "incident", "id": "i1", "title": "Checkout down", "severity": 2, "service": "api",
      "started_at": "2026-10-02T10:00:00Z", "detected_at": "2026-10-02T10:03:00Z"}


def t(hh_mm: str) -> datetime:
    return datetime.fromisoformat(f"2026-10-02T{hh_mm}:00+00:00")


def recorded(engine: Engine) -> dict[str, datetime]:
    with engine.connect() as conn:
        rows = conn.execute(select(imports.c.source, imports.c.imported_at)).all()
    return {r[0]: r[1] for r in rows}


def incident_entries(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        tl = build_timeline(conn, "i1", NOW)
    keys = [e.key() for e in tl.entries]
    assert keys == sorted(keys)
    return [e for e in tl.entries if e.source == "incident"]


def test_every_stored_state_change_once_with_its_version(engine: Engine) -> None:
    load(engine, [V1], "pagerduty webhook")
    with engine.begin() as conn:
        service.acknowledge(conn, "i1", t("10:09"), by="alice")
    acked = {**V1, "acknowledged_at": "2026-10-02T10:09:00Z", "acknowledged_by": "alice"}
    load(engine, [{**acked, "severity": 1, "service": "db"}], "re-import")
    with engine.begin() as conn:
        service.mitigate(conn, "i1", t("10:40"))
        service.resolve(conn, "i1", t("11:00"), root_cause="pool too small",
                        root_cause_key="db-pool")
    current = {**acked, "severity": 1, "service": "db", "mitigated_at": "2026-10-02T10:40:00Z",
               "root_cause": "pool too small", "root_cause_key": "db-pool"}
    load(engine, [current], "reopen")  # whole record without resolved_at: reopened
    with engine.begin() as conn:
        service.resolve(conn, "i1", t("11:30"))
    resolved = {**current, "resolved_at": "2026-10-02T11:30:00Z"}
    assert load(engine, [resolved], "same again").totals().unchanged == 1  # no new version

    at = recorded(engine)
    got = [(e.event, e.at, e.version.number, e.version.source) for e in incident_entries(engine)]
    expected = [
        ("started", t("10:00"), 1, "pagerduty webhook"),
        ("detected", t("10:03"), 1, "pagerduty webhook"),
        ("acknowledged", t("10:09"), 2, "cli: incidents ack i1"),
        ("mitigated", t("10:40"), 4, "cli: incidents mitigate i1"),
        ("resolved", t("11:00"), 5, "cli: incidents resolve i1"),
        ("resolved", t("11:30"), 7, "cli: incidents resolve i1"),
        ("severity", at["re-import"], 3, "re-import"),
        ("reassigned", at["re-import"], 3, "re-import"),
        ("reopened", at["reopen"], 6, "reopen"),
    ]
    assert sorted(got, key=lambda x: (x[1], x[2])) == sorted(expected, key=lambda x: (x[1], x[2]))
    texts = {(e.event, e.version.number): e.text for e in incident_entries(engine)}
    assert texts[("severity", 3)] == "Severity Sev-2 -> Sev-1"
    assert texts[("reassigned", 3)] == "Service api -> db"
    assert texts[("resolved", 5)] == "Resolved; root cause: pool too small (key db-pool)"
    assert texts[("resolved", 7)] == "Resolved"
    assert texts[("reopened", 6)] == (
        "Reopened: the resolution at 2026-10-02T11:00:00Z no longer recorded")
    assert texts[("started", 1)] == "Impact started: Checkout down (Sev-2 on api)"
    with engine.connect() as conn:
        assert len(incident_versions(conn, "i1")) == 7


def test_a_changed_time_says_what_it_replaces(engine: Engine) -> None:
    # a late delivery of an earlier acknowledgement moves acknowledged_at back
    load(engine, [{**V1, "acknowledged_at": "2026-10-02T10:09:00Z"}], "first")
    load(engine, [{**V1, "acknowledged_at": "2026-10-02T10:05:00Z",
                   "acknowledged_by": "bob"}], "second")
    acks = [(e.at, e.text, e.version.number) for e in incident_entries(engine)
            if e.event == "acknowledged"]
    assert acks == [
        (t("10:05"), "Acknowledged by bob (replaces 2026-10-02T10:09:00Z)", 2),
        (t("10:09"), "Acknowledged", 1),
    ]
    # the acknowledger came with the time: no separate "acknowledger" entry
    assert [e.event for e in incident_entries(engine)].count("acknowledger") == 0


def test_a_time_set_again_after_it_was_cleared_is_a_new_change(engine: Engine) -> None:
    resolved = {**V1, "resolved_at": "2026-10-02T11:00:00Z"}
    load(engine, [resolved], "a")
    load(engine, [V1], "b")
    load(engine, [resolved], "c")
    got = [(e.event, e.text, e.version.number) for e in incident_entries(engine)
           if e.event in ("resolved", "reopened")]
    assert sorted(got, key=lambda x: x[2]) == [
        ("resolved", "Resolved", 1),
        ("reopened", "Reopened: the resolution at 2026-10-02T11:00:00Z no longer recorded", 2),
        ("resolved", "Resolved (again)", 3),
    ]


def test_csv_and_json_versions_are_both_read(cli: Any, engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "incidents.csv"
    path.write_text("id,title,severity,service,started_at\n"
                    "i1,Checkout down,3,api,2026-10-02T10:00:00Z\n")
    code, _, err = cli("import", str(path))
    assert code == 0, err
    load(engine, [{**V1, "severity": 2}], "json")
    got = [(e.event, e.text) for e in incident_entries(engine)]
    assert ("severity", "Severity Sev-3 -> Sev-2") in got
    assert ("started", "Impact started: Checkout down (Sev-3 on api)") in got
    assert ("detected", "Detected") in got
