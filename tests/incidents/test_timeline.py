"""The incident timeline: sources, order and the edges of its windows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, select

from opsledger.incidents.service import iso
from opsledger.incidents.timeline import build_timeline, offset_text
from opsledger.records.tables import imports
from tests.conftest import load
from tests.incidents.helpers import api

NOW = datetime(2026, 10, 2, 12, 0, tzinfo=UTC)  # for the open incident; never the clock


def alert(aid: str, fired: str, service: str = "api", **extra: Any) -> dict[str, Any]:
    return {"kind": "alert", "id": aid, "name": aid.upper(), "service": service,
            "fired_at": fired, **extra}


def change(cid: str, service: str = "api", **times: str) -> dict[str, Any]:
    return {"kind": "change", "id": cid, "title": f"deploy {cid}", "service": service, **times}


def chat(mid: str, posted: str, channel: str = "inc") -> dict[str, Any]:
    return {"kind": "chat_message", "id": mid, "channel": channel, "user": "alice",
            "text": f"msg {mid}", "posted_at": posted}


RECORDS = [
    {"kind": "incident", "id": "i1", "title": "Checkout down", "severity": 1, "service": "api",
     "started_at": "2026-10-02T10:00:00Z", "detected_at": "2026-10-02T10:03:00Z",
     "acknowledged_at": "2026-10-02T10:05:00Z", "acknowledged_by": "alice",
     "mitigated_at": "2026-10-02T10:40:00Z", "resolved_at": "2026-10-02T11:00:00Z",
     "caused_by_change": "chg-cause"},
    # alerts: 2 h before the start is in, 1 s more is out; the end (resolution) is in
    alert("a-edge", "2026-10-02T08:00:00Z", resolved_at="2026-10-02T08:10:00Z"),
    alert("a-early", "2026-10-02T07:59:59Z"),
    alert("a-start", "2026-10-02T10:00:00Z", acknowledged_at="2026-10-02T10:04:00Z",
          acknowledged_by="bob", resolved_at="2026-10-02T11:30:00Z"),  # resolved after the end
    alert("a-end", "2026-10-02T11:00:00Z"),
    alert("a-late", "2026-10-02T11:00:01Z"),
    alert("a-web", "2026-10-02T10:10:00Z", service="web"),  # another service: out
    alert("a-db", "2026-10-02T09:30:00Z", service="db", incident="i1"),  # linked: db joins
    alert("a-db2", "2026-10-02T10:20:00Z", service="db"),  # db is now a service of i1
    # changes: from 24 h before the start (deploy time, else start time)
    change("chg-edge", deployed_at="2026-10-01T10:00:00Z"),
    change("chg-early", deployed_at="2026-10-01T09:59:59Z"),
    change("chg-started", started_at="2026-10-02T09:00:00Z"),
    change("chg-web", service="web", deployed_at="2026-10-02T09:00:00Z"),
    change("chg-cause", service="lb", deployed_at="2026-09-20T00:00:00Z"),  # named: always in
    change("chg-during", service="db", deployed_at="2026-10-02T10:30:00Z"),
    # chat: every channel, from 2 h before the start to the end
    chat("m-edge", "2026-10-02T08:00:00Z", "general"),
    chat("m-early", "2026-10-02T07:59:59.999999Z", "general"),
    chat("m-in", "2026-10-02T10:01:00.000200Z"),
    chat("m-end", "2026-10-02T11:00:00Z"),
    chat("m-after", "2026-10-02T11:00:00.000001Z"),
]

EXPECTED = [
    ("change", "deployed", "chg-cause"),  # long before, but named by caused_by_change
    ("change", "deployed", "chg-edge"),
    ("alert", "fired", "a-edge"),
    ("chat", "message", "m-edge"),
    ("alert", "resolved", "a-edge"),
    ("change", "started", "chg-started"),
    ("alert", "fired", "a-db"),
    ("alert", "fired", "a-start"),  # the same instant: the alert before the incident
    ("incident", "started", "i1"),
    ("chat", "message", "m-in"),
    ("incident", "detected", "i1"),
    ("alert", "acknowledged", "a-start"),
    ("incident", "acknowledged", "i1"),
    ("alert", "fired", "a-db2"),
    ("change", "deployed", "chg-during"),
    ("incident", "mitigated", "i1"),
    ("alert", "fired", "a-end"),
    ("chat", "message", "m-end"),
    ("incident", "resolved", "i1"),
]


def test_timeline_sources_order_and_window_edges(engine: Engine) -> None:
    load(engine, RECORDS)
    with engine.connect() as conn:
        tl = build_timeline(conn, "i1", NOW)
    assert [(e.source, e.event, e.ref) for e in tl.entries] == EXPECTED
    assert tl.services == ("api", "db")
    data = tl.as_json()
    assert data["windows"] == {"alerts_from": "2026-10-02T08:00:00Z",
                               "changes_from": "2026-10-01T10:00:00Z",
                               "chat_from": "2026-10-02T08:00:00Z",
                               "to": "2026-10-02T11:00:00Z"}
    first = data["entries"][0]
    assert first["at"] == "2026-09-20T00:00:00Z" and "[caused the incident]" in first["text"]
    m_in = next(e for e in data["entries"] if e["id"] == "m-in")
    assert m_in["at"] == "2026-10-02T10:01:00.000200Z" and m_in["offset_seconds"] == 60.0002
    ack = next(e for e in data["entries"] if e["id"] == "a-start" and e["event"] == "acknowledged")
    assert ack["text"] == "A-START acknowledged by bob"


def test_open_incident_runs_to_now_and_channels_narrow_chat(engine: Engine) -> None:
    records = [r for r in RECORDS if r["kind"] != "incident"]
    records.append({"kind": "incident", "id": "i2", "severity": 2, "service": "api",
                    "started_at": "2026-10-02T10:00:00Z"})
    load(engine, records)
    with engine.connect() as conn:
        tl = build_timeline(conn, "i2", NOW)
        narrowed = build_timeline(conn, "i2", NOW, ["general"])
    refs = [e.ref for e in tl.entries]
    assert tl.end == NOW
    assert "a-late" in refs and "m-after" in refs  # open: the window runs to now
    assert "a-db" not in refs  # not linked to i2, and db is none of its services
    assert "chg-cause" not in refs
    chats = [e.ref for e in narrowed.entries if e.source == "chat"]
    assert chats == ["m-edge"]


def test_timeline_command_formats(cli: Any, engine: Engine) -> None:
    load(engine, [*RECORDS, chat("m-pipe", "2026-10-02T10:02:00Z")])
    code, out, err = cli("incidents", "timeline", "i1", "--format", "json")
    assert code == 0, err
    data = json.loads(out)
    assert data["incident"] == "i1" and data["open"] is False
    assert [e["source"] for e in data["entries"]].count("incident") == 5
    code, out, _ = cli("incidents", "timeline", "i1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "# Timeline of i1: Checkout down"
    assert "| time (UTC) | from start | source | event | record | details |" in lines
    assert ("| 2026-10-02 08:00:00 | T-02:00:00 | alert | fired | a-edge | "
            "A-EDGE fired (api) |") in lines
    with engine.connect() as conn:  # the one import that stored i1
        (recorded,) = conn.execute(select(imports.c.imported_at)).one()
    assert ("| 2026-10-02 10:05:00 | T+00:05:00 | incident | acknowledged | i1 | "
            f"Acknowledged by alice [version 1, recorded {iso(recorded)}, test] |") in lines
    incident = [e for e in data["entries"] if e["source"] == "incident"]
    assert {json.dumps(e["version"]) for e in incident} == {
        json.dumps({"number": 1, "recorded_at": iso(recorded), "source": "test"})}
    assert all(e["version"] is None for e in data["entries"] if e["source"] != "incident")
    assert "| 2026-10-02 10:01:00 | T+00:01:00 | chat | message | m-in | #inc alice: msg m-in |" \
        in lines
    code, out, _ = cli("incidents", "timeline", "i1", "--channel", "general", "--format", "json")
    assert [e["id"] for e in json.loads(out)["entries"] if e["source"] == "chat"] == ["m-edge"]
    code, _, err = cli("incidents", "timeline", "nope")
    assert code == 2 and "no incident with id 'nope'" in err


def test_offset_text() -> None:
    from datetime import timedelta

    assert offset_text(timedelta(hours=-24)) == "T-24:00:00"
    assert offset_text(timedelta(seconds=3661)) == "T+01:01:01"
    assert offset_text(timedelta(microseconds=-1)) == "T-00:00:00"
    assert offset_text(timedelta(days=2, seconds=5)) == "T+48:00:05"


def test_timeline_over_the_api(db_url: str) -> None:
    with api(db_url) as a:
        load(a.engine, RECORDS)
        r = a.client.get("/api/v1/incidents/i1/timeline", headers=a.read)
        assert r.status_code == 200
        assert [(e["source"], e["id"]) for e in r.json()["entries"]][:2] == [
            ("change", "chg-cause"), ("change", "chg-edge")]
        r = a.client.get("/api/v1/incidents/i1/timeline",
                         params={"format": "markdown", "channel": ["inc"]}, headers=a.read)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/markdown")
        assert "m-in" in r.text and "m-edge" not in r.text
        assert a.client.get("/api/v1/incidents/i1/timeline").status_code == 401
        r = a.client.get("/api/v1/incidents/i1/timeline", params={"format": "xml"},
                         headers=a.read)
        assert r.status_code == 422
