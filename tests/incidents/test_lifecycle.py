"""The incident lifecycle by hand, through the CLI and the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from opsledger.ingest.rawlog import versions
from tests.conftest import load
from tests.incidents.helpers import api, export_all, records_of

BASE = [
    {"kind": "service", "id": "api", "tier": "critical"},
    {"kind": "alert", "id": "a1", "name": "HighErrorRate", "service": "api",
     "severity": "critical", "fired_at": "2026-10-02T09:58:00Z"},
    {"kind": "alert", "id": "a2", "name": "HighLatency", "service": "api",
     "severity": "warning", "fired_at": "2026-10-02T09:59:00Z"},
]
INC = "inc-20261002-1"


def _open(cli: Any, *extra: str) -> tuple[int, str, str]:
    return cli("incidents", "open", "--title", "Checkout returns 500s", "--severity", "1",
               "--service", "api", "--started-at", "2026-10-02T10:00:00Z", *extra)


def test_cli_lifecycle(cli: Any, engine: Engine) -> None:
    load(engine, BASE)
    code, out, err = _open(cli, "--detected-at", "2026-10-02T10:04:00+02:00")
    assert code == 2 and "before the impact started" in err  # 08:04Z
    code, out, err = _open(cli, "--detected-at", "2026-10-02T10:05:00Z")
    assert (code, out.strip()) == (0, INC), err
    # the next id of the same UTC day counts on
    code, out, _ = cli("incidents", "open", "--title", "Other", "--severity", "3",
                       "--started-at", "2026-10-02T23:59:59Z")
    assert (code, out.strip()) == (0, "inc-20261002-2")
    assert cli("incidents", "ack", INC, "--at", "2026-10-02T10:12:00Z", "--by", "alice")[0] == 0
    assert cli("incidents", "link", INC, "a1", "a2")[0] == 0
    assert cli("incidents", "mitigate", INC, "--at", "2026-10-02T10:40:00Z")[0] == 0
    code, _, err = cli("incidents", "resolve", INC, "--at", "2026-10-02T11:00:00Z",
                       "--root-cause", "DB pool exhausted", "--root-cause-key", "db-pool")
    assert code == 0, err

    assert records_of(engine, "incident")[INC] == {
        "kind": "incident", "id": INC, "title": "Checkout returns 500s", "severity": 1,
        "service": "api", "started_at": "2026-10-02T10:00:00Z",
        "detected_at": "2026-10-02T10:05:00Z", "acknowledged_at": "2026-10-02T10:12:00Z",
        "acknowledged_by": "alice", "mitigated_at": "2026-10-02T10:40:00Z",
        "resolved_at": "2026-10-02T11:00:00Z", "root_cause": "DB pool exhausted",
        "root_cause_key": "db-pool",
    }
    assert {a["id"]: a.get("incident") for a in records_of(engine, "alert").values()} == {
        "a1": INC, "a2": INC}

    code, out, _ = cli("incidents", "show", INC, "--format", "json")
    view = json.loads(out)
    assert view["status"] == "resolved"
    assert {k: v["minutes"] for k, v in view["durations"].items()} == {
        "time_to_detect": 5.0, "time_to_acknowledge": 7.0, "time_to_mitigate": 40.0,
        "time_to_resolve": 60.0}
    assert view["durations"]["time_to_acknowledge"]["from"] == "detected_at"
    assert [a["id"] for a in view["alerts"]] == ["a1", "a2"]

    code, out, _ = cli("incidents", "list", "--format", "json")
    assert [(i["id"], i["status"]) for i in json.loads(out)] == [
        ("inc-20261002-2", "open"), (INC, "resolved")]
    code, out, _ = cli("incidents", "list", "--open", "--format", "json")
    assert [i["id"] for i in json.loads(out)] == ["inc-20261002-2"]
    code, out, _ = cli("incidents", "list")
    assert code == 0 and INC in out and "resolved" in out
    code, out, _ = cli("incidents", "show", INC)
    assert code == 0 and "alice" in out and "40 min" in out and "HighLatency" in out


def test_status_follows_the_recorded_times(cli: Any) -> None:
    _open(cli, "--id", "x")

    def status() -> str:
        return str(json.loads(cli("incidents", "show", "x", "--format", "json")[1])["status"])

    assert status() == "open"
    cli("incidents", "ack", "x", "--at", "2026-10-02T10:01:00Z")
    assert status() == "acknowledged"
    cli("incidents", "mitigate", "x", "--at", "2026-10-02T10:02:00Z")
    assert status() == "mitigated"
    cli("incidents", "resolve", "x", "--at", "2026-10-02T10:03:00Z")
    assert status() == "resolved"


def test_ids_continue_after_the_highest(cli: Any) -> None:
    for iid in ("inc-20261002-7", "inc-20261002-x", "inc-20261003-9"):
        assert _open(cli, "--id", iid)[0] == 0
    assert _open(cli)[1].strip() == "inc-20261002-8"
    code, _, err = _open(cli, "--id", "inc-20261002-7")
    assert code == 2 and "exists already" in err


def test_the_clock_is_read_only_without_at(cli: Any, engine: Engine) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    code, out, _ = cli("incidents", "open", "--title", "now", "--severity", "2")
    assert code == 0
    after = datetime.now(UTC)
    iid = out.strip()
    assert iid == f"inc-{before:%Y%m%d}-1" or iid == f"inc-{after:%Y%m%d}-1"
    cli("incidents", "ack", iid)
    rec = records_of(engine, "incident")[iid]
    started = datetime.fromisoformat(rec["started_at"].replace("Z", "+00:00"))
    acked = datetime.fromisoformat(rec["acknowledged_at"].replace("Z", "+00:00"))
    assert before <= started <= acked <= datetime.now(UTC)


def test_invalid_transitions_are_clear_errors_and_change_nothing(
    cli: Any, engine: Engine
) -> None:
    load(engine, BASE)
    _open(cli)
    cli("incidents", "open", "--title", "Other", "--severity", "2", "--id", "other",
        "--started-at", "2026-10-02T09:00:00Z")
    cli("incidents", "link", "other", "a2")
    cli("incidents", "ack", INC, "--at", "2026-10-02T10:10:00Z", "--by", "alice")
    before = export_all(engine)
    cases = [
        (("ack", "nope"), "no incident with id 'nope'"),
        (("mitigate", "nope"), "no incident with id 'nope'"),
        (("resolve", INC, "--at", "2026-10-02T09:59:59Z"), "before it started"),
        (("ack", INC, "--at", "2026-10-02T10:20:00Z"), "acknowledged already at "
         "2026-10-02T10:10:00Z by alice"),
        (("resolve", INC, "--at", "2026-10-02T10:30:00"), "no UTC offset"),
        (("resolve", INC, "--at", "yesterday"), "not an RFC 3339 timestamp"),
        (("link", INC, "a1", "missing"), "no alert with id 'missing'; nothing was linked"),
        (("link", INC, "a1", "a2"), "alert a2 is linked to incident other; pass --move"),
        (("open", "--title", "t", "--severity", "4"), "severity 4"),
        (("open", "--title", " ", "--severity", "2"), "needs a title"),
    ]
    for args, message in cases:
        code, _, err = cli("incidents", *args)
        assert code == 2, (args, err)
        assert message in " ".join(err.split()), (args, err)
    assert export_all(engine) == before

    cli("incidents", "mitigate", INC, "--at", "2026-10-02T10:30:00Z")
    code, _, err = cli("incidents", "resolve", INC, "--at", "2026-10-02T10:29:00Z")
    assert code == 2 and "before it was mitigated (2026-10-02T10:30:00Z)" in err
    cli("incidents", "resolve", INC, "--at", "2026-10-02T10:45:00Z")
    code, _, err = cli("incidents", "resolve", INC, "--at", "2026-10-02T10:50:00Z")
    assert code == 2 and "resolved already" in err
    code, _, err = cli("incidents", "mitigate", INC, "--at", "2026-10-02T10:50:00Z")
    assert code == 2 and "mitigated already" in err
    cli("incidents", "open", "--title", "t", "--severity", "3", "--id", "late",
        "--started-at", "2026-10-02T10:00:00Z")
    cli("incidents", "resolve", "late", "--at", "2026-10-02T10:05:00Z")
    code, _, err = cli("incidents", "ack", "late", "--at", "2026-10-02T10:06:00Z")
    assert code == 2 and "it was resolved at 2026-10-02T10:05:00Z" in err
    # acknowledging late, but before the resolution, is a record of the past: allowed
    assert cli("incidents", "ack", "late", "--at", "2026-10-02T10:04:00Z")[0] == 0

    code, _, err = cli("incidents", "link", INC, "a2", "--move")
    assert code == 0 and "moved from other" in err
    assert records_of(engine, "alert")["a2"]["incident"] == INC


def test_recurrence_shows_prior_incidents_of_the_same_key(cli: Any, engine: Engine) -> None:
    def inc(iid: str, started: str, key: str) -> dict[str, Any]:
        return {"kind": "incident", "id": iid, "severity": 2, "started_at": started,
                "root_cause_key": key}

    load(engine, [
        inc("in-window", "2026-09-02T10:00:01Z", "db-pool"),  # 719 h 59 min 59 s before
        inc("edge", "2026-09-02T10:00:00Z", "db-pool"),  # exactly 720 h before: included
        inc("too-old", "2026-09-02T09:59:59Z", "db-pool"),
        inc("other-key", "2026-10-01T10:00:00Z", "dns"),
        inc("later", "2026-10-03T10:00:00Z", "db-pool"),
    ])
    _open(cli)
    cli("incidents", "resolve", INC, "--at", "2026-10-02T11:00:00Z", "--root-cause-key", "db-pool")
    view = json.loads(cli("incidents", "show", INC, "--format", "json")[1])
    assert view["recurrence"]["root_cause_key"] == "db-pool"
    assert [p["id"] for p in view["recurrence"]["prior"]] == ["edge", "in-window"]
    code, out, _ = cli("incidents", "show", INC)
    assert code == 0
    assert "2 prior incident(s) with root cause key 'db-pool'" in " ".join(out.split())


def test_rebuild_after_hand_actions_gives_the_same_records(
    cli: Any, engine: Engine, tmp_path: Path
) -> None:
    load(engine, BASE)
    _open(cli)
    cli("incidents", "ack", INC, "--at", "2026-10-02T10:12:00Z", "--by", "alice")
    cli("incidents", "link", INC, "a1")
    cli("incidents", "mitigate", INC, "--at", "2026-10-02T10:40:00Z")
    cli("incidents", "resolve", INC, "--at", "2026-10-02T11:00:00Z", "--root-cause-key", "k")
    before = export_all(engine)
    with engine.connect() as conn:
        events = len(versions(conn, "incident", INC))
    assert events == 4  # open, ack, mitigate, resolve: each a version in the raw log
    assert cli("rebuild")[0] == 0
    after = export_all(engine)
    assert after == before
    assert after["incident"][0]["resolved_at"] == "2026-10-02T11:00:00Z"
    assert after["alert"][0]["incident"] == INC


def test_api_lifecycle(db_url: str) -> None:
    with api(db_url) as a:
        load(a.engine, BASE)
        c = a.client
        body = {"title": "Checkout returns 500s", "severity": 1, "service": "api",
                "started_at": "2026-10-02T10:00:00Z"}
        assert c.post("/api/v1/incidents", json=body).status_code == 401
        r = c.post("/api/v1/incidents", json=body, headers=a.read)
        assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
        r = c.post("/api/v1/incidents", json=body, headers=a.ingest)
        assert r.status_code == 201, r.text
        assert r.json()["incident"]["id"] == INC and r.json()["status"] == "open"
        r = c.post("/api/v1/incidents", json={**body, "id": INC}, headers=a.admin)
        assert r.status_code == 409 and "exists already" in r.json()["detail"]
        assert r.json()["title"] == "Conflict"

        r = c.post(f"/api/v1/incidents/{INC}/ack",
                   json={"at": "2026-10-02T10:12:00Z", "by": "alice"}, headers=a.ingest)
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        r = c.post(f"/api/v1/incidents/{INC}/ack", json={}, headers=a.ingest)
        assert r.status_code == 409 and "acknowledged already" in r.json()["detail"]
        r = c.post(f"/api/v1/incidents/{INC}/resolve", json={"at": "2026-10-02T09:00:00Z"},
                   headers=a.ingest)
        assert r.status_code == 409 and "before it started" in r.json()["detail"]
        r = c.post(f"/api/v1/incidents/{INC}/resolve", json={"at": "2026-10-02T11:00:00"},
                   headers=a.ingest)
        assert r.status_code == 422  # no offset
        r = c.post("/api/v1/incidents/nope/mitigate", json={}, headers=a.ingest)
        assert r.status_code == 404 and "no incident with id 'nope'" in r.json()["detail"]
        r = c.post(f"/api/v1/incidents/{INC}/link", json={"alerts": ["a1", "zz"]},
                   headers=a.ingest)
        assert r.status_code == 404 and "nothing was linked" in r.json()["detail"]
        r = c.post(f"/api/v1/incidents/{INC}/link", json={"alerts": ["a1"]}, headers=a.ingest)
        assert r.json() == {"incident": INC,
                            "linked": [{"alert": "a1", "previous": None, "changed": True}]}
        r = c.post(f"/api/v1/incidents/{INC}/mitigate", json={"at": "2026-10-02T10:40:00Z"},
                   headers=a.ingest)
        assert r.status_code == 200 and r.json()["status"] == "mitigated"
        r = c.post(f"/api/v1/incidents/{INC}/resolve",
                   json={"at": "2026-10-02T12:00:00+01:00", "root_cause": "pool",
                         "root_cause_key": "db-pool"}, headers=a.ingest)
        assert r.status_code == 200, r.text

        assert c.get(f"/api/v1/incidents/{INC}", headers=a.ingest).status_code == 403
        view = c.get(f"/api/v1/incidents/{INC}", headers=a.read).json()
        assert view["incident"]["resolved_at"] == "2026-10-02T11:00:00Z"
        assert view["durations"]["time_to_resolve"]["minutes"] == 60.0
        assert [x["id"] for x in view["alerts"]] == ["a1"]
        assert c.get("/api/v1/incidents/nope", headers=a.read).status_code == 404
        # the API wrote through the import path too: a rebuild changes nothing
        from opsledger.ingest.replay import rebuild

        before = export_all(a.engine)
        with a.engine.begin() as conn:
            rebuild(conn)
        assert export_all(a.engine) == before
