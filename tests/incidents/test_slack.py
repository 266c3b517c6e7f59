"""`opsledger import --from slack DIR`: a Slack export into chat_message records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.connectors.base import PayloadError
from opsledger.connectors.slack import parse_path, ts_parts
from tests.conftest import load
from tests.incidents.helpers import api, export_all, records_of

EXPORT = Path(__file__).parent / "fixtures" / "slack-export"

EXPECTED = {
    "slack-inc-checkout-1790935212.000100": {
        "channel": "inc-checkout", "user": "PagerDuty",
        "posted_at": "2026-10-02T10:00:12.000100Z",
        "text": "Triggered #4711: HighErrorRate on api (critical)"},
    "slack-inc-checkout-1790935260.000200": {
        "channel": "inc-checkout", "user": "alice",
        "posted_at": "2026-10-02T10:01:00.000200Z",
        "text": "Checkout is returning 500s, looking into it. @bob can you check the DB?",
        "thread": "slack-inc-checkout-1790935260.000200"},
    "slack-inc-checkout-1790935410.123456": {
        "channel": "inc-checkout", "user": "bob", "posted_at": "2026-10-02T10:03:30.123456Z",
        "text": "api-db-1 connection pool is at 100%",
        "thread": "slack-inc-checkout-1790935260.000200"},
    "slack-inc-checkout-1790937600.500000": {
        "channel": "inc-checkout", "user": "carol", "posted_at": "2026-10-02T10:40:00.500000Z",
        "text": "Rolled back deploy v2 | errors dropping"},
    "slack-general-1790866800.000000": {
        "channel": "general", "user": "bob", "posted_at": "2026-10-01T15:00:00Z",
        "text": "lunch at 1?"},
    "slack-general-1790927999.999999": {
        "channel": "general", "user": "bob", "posted_at": "2026-10-02T07:59:59.999999Z",
        "text": "morning all"},
    "slack-general-1790928000.000000": {
        "channel": "general", "user": "alice", "posted_at": "2026-10-02T08:00:00Z",
        "text": "anyone else seeing slow checkouts?"},
    "slack-sre-private-1790939100.000300": {
        "channel": "sre-private", "user": "alice", "posted_at": "2026-10-02T11:05:00.000300Z",
        "text": "postmortem draft is up"},
}


def test_ts_is_exact() -> None:
    assert ts_parts("x", "1507000000.000200")[1].isoformat() == "2017-10-03T03:06:40.000200+00:00"
    assert ts_parts("x", "1790935410.123456")[0] == "1790935410.123456"
    assert ts_parts("x", "1790935410.5")[0] == "1790935410.500000"
    assert ts_parts("x", "1790935410")[0] == "1790935410.000000"
    for bad in (1790935410.5, "1790935410.1234567", "abc", "", None, "-1.000000"):
        with pytest.raises(PayloadError):
            ts_parts("x", bad)


def test_slack_export_import_exact(cli: Any, engine: Engine) -> None:
    code, out, err = cli("import", "--from", "slack", str(EXPORT), "--format", "json")
    assert code == 0, err
    assert json.loads(out)["imported"][0]["counts"]["chat_message"]["inserted"] == 8
    got = records_of(engine, "chat_message")
    assert got == {rid: {"kind": "chat_message", "id": rid, **rec}
                   for rid, rec in EXPECTED.items()}
    before = export_all(engine)
    code, out, _ = cli("import", "--from", "slack", str(EXPORT), "--format", "json")
    assert json.loads(out)["imported"][0]["counts"]["chat_message"] == {
        "inserted": 0, "replaced": 0, "unchanged": 8}
    assert export_all(engine) == before
    # the raw event log replays to the same messages, microseconds and all
    assert cli("rebuild")[0] == 0
    assert export_all(engine) == before


def test_slack_messages_in_the_incident_timeline(cli: Any, engine: Engine) -> None:
    assert cli("import", "--from", "slack", str(EXPORT))[0] == 0
    load(engine, [{"kind": "incident", "id": "i1", "severity": 1, "service": "api",
                   "started_at": "2026-10-02T10:00:00Z", "resolved_at": "2026-10-02T11:00:00Z"}])
    code, out, _ = cli("incidents", "timeline", "i1", "--format", "json")
    chats = [(e["id"], e["at"]) for e in json.loads(out)["entries"] if e["source"] == "chat"]
    assert chats == [
        ("slack-general-1790928000.000000", "2026-10-02T08:00:00Z"),
        ("slack-inc-checkout-1790935212.000100", "2026-10-02T10:00:12.000100Z"),
        ("slack-inc-checkout-1790935260.000200", "2026-10-02T10:01:00.000200Z"),
        ("slack-inc-checkout-1790935410.123456", "2026-10-02T10:03:30.123456Z"),
        ("slack-inc-checkout-1790937600.500000", "2026-10-02T10:40:00.500000Z"),
    ]
    code, out, _ = cli("incidents", "timeline", "i1", "--channel", "inc-checkout")
    assert code == 0
    assert "#inc-checkout carol: Rolled back deploy v2 \\| errors dropping" in out
    assert "#general" not in out


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "export"
    shutil.copytree(EXPORT, target)
    return target


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "users.json").unlink(),
         "slack payload, users.json: missing: is this the top of an unzipped Slack export?"),
        (lambda d: (d / "channels.json").unlink(), "slack payload, channels.json: missing"),
        (lambda d: (d / "general" / "2026-10-02.json").write_text('[{"type": "message",\n',
                                                                 encoding="utf-8"),
         "slack payload, general/2026-10-02.json line 2 column 1: malformed JSON"),
        (lambda d: (d / "general" / "2026-10-02.json").write_text(
            '[{"type": "message", "user": "U0BOB", "text": "x", "ts": 1790928000.5}]',
            encoding="utf-8"),
         "slack payload, general/2026-10-02.json[0].ts: ts must be a string like"),
        (lambda d: (d / "general" / "2026-10-02.json").write_text('{"messages": []}',
                                                                 encoding="utf-8"),
         "slack payload, general/2026-10-02.json: must be a JSON list of objects"),
        (lambda d: (d / "channels.json").write_text('[{"id": "C1", "name": "../etc"}]',
                                                   encoding="utf-8"),
         "slack payload, channels.json[0].name: not a channel name: '../etc'"),
    ],
)
def test_bad_exports_are_refused_whole(
    cli: Any, engine: Engine, tmp_path: Path, damage: Any, message: str
) -> None:
    export = _copy(tmp_path)
    damage(export)
    code, _, err = cli("import", "--from", "slack", str(export))
    assert code == 2
    assert message in " ".join(err.split()), err
    assert records_of(engine, "chat_message") == {}


def test_a_file_is_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(PayloadError, match="unzipped Slack export"):
        parse_path(EXPORT / "users.json")


def test_slack_has_no_webhook(db_url: str) -> None:
    with api(db_url) as a:
        r = a.client.post("/api/v1/hooks/slack", json={"type": "event_callback"},
                          headers=a.ingest)
        assert r.status_code == 404
        assert "import --from slack" in r.json()["detail"]
