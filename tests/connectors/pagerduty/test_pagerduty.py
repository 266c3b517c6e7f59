"""PagerDuty connector: webhooks v3 and REST API exports, on their real payloads.

Golden payloads (payloads/, origins in payloads/NOTICE): PagerDuty webhooks v3 deliveries
kept by Zulip, the signed body and signatures of PagerDuty's own go-pagerduty tests, the
demisto `/incidents` export, and one authored log-entries page. Where a test needs an event
the fixtures do not have (a resolution with created_at, say), it is derived from a real
payload by changing only the event type, status and time, and the test says so.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from opsledger.access import create_token
from opsledger.api.app import create_app
from opsledger.connectors.base import PayloadError, get_connector
from opsledger.connectors.pagerduty import merge, parse, parse_path, severity, verify
from opsledger.errors import RecordError
from opsledger.incidents.service import mitigate
from opsledger.ingest.importer import ImportResult
from opsledger.ingest.inbound import ingest_path, ingest_payload
from opsledger.ingest.replay import iter_records
from opsledger.records.tables import RECORD_TABLES, inbound_payloads, rejected_payloads
from opsledger.records.validation import canonical
from opsledger.settings import Settings
from tests.conftest import load

PAYLOADS = Path(__file__).parent / "payloads"
# go-pagerduty webhookv3/webhookv3_test.go (see payloads/NOTICE)
GO_SECRET = "lDQHScfUeXUKaQRNF+8XIiDKZ7XX3itBAYzwU0TARw8lJqRnkKl2iB1anSb0Z+IK"
GO_VALID = "v1=0c0b9495b893a39e70d1fea2fe11fbe0a825f88b9f67846f6cc07dd2bc5476cd"
GO_MISMATCH = "v1=7020c8a7ec668a9b7012bc3dd82e483394b038f4230acc6785efbf2a7d8bcaf5"
CONNECTOR = get_connector("pagerduty")
assert CONNECTOR is not None


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def derived(name: str, event_type: str, status: str, occurred_at: str) -> bytes:
    """A real payload with only its event type, incident status and event time changed."""
    doc = json.loads(raw(name))
    doc["event"]["event_type"] = event_type
    doc["event"]["occurred_at"] = occurred_at
    doc["event"]["data"]["status"] = status
    return json.dumps(doc).encode()


def deliver(engine: Engine, body: bytes) -> ImportResult:
    with engine.begin() as conn:
        return ingest_payload(conn, CONNECTOR, body, {})


def incidents(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r["id"]: json.loads(canonical(r)) for r in iter_records(conn, "incident")}


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def public(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if not k.startswith("_")} for r in records]


# -- signatures --------------------------------------------------------------------------


def test_signature_of_pagerdutys_own_test_vector_passes() -> None:
    body = raw("go_pagerduty_signed_body.json")
    assert verify(body, {"X-PagerDuty-Signature": GO_VALID}, GO_SECRET) is True


def test_wrong_signature_fails() -> None:
    body = raw("go_pagerduty_signed_body.json")
    assert verify(body, {"X-PagerDuty-Signature": GO_MISMATCH}, GO_SECRET) is False
    # the right signature with another secret, or of another body
    assert verify(body, {"X-PagerDuty-Signature": GO_VALID}, GO_SECRET + "x") is False
    assert verify(body + b" ", {"X-PagerDuty-Signature": GO_VALID}, GO_SECRET) is False


def test_missing_signature_is_none() -> None:
    body = raw("go_pagerduty_signed_body.json")
    assert verify(body, {}, GO_SECRET) is None
    assert verify(body, {"X-PagerDuty-Signature": "  "}, GO_SECRET) is None


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{GO_MISMATCH},{GO_VALID}", True),  # secret rotation: any match passes
        (f"{GO_VALID}, {GO_MISMATCH}", True),
        (f"{GO_MISMATCH},v1=00", False),
        (f"v0={GO_VALID[3:]}", False),  # only version v1 counts
        (GO_VALID[3:], False),  # no version prefix
    ],
)
def test_several_signatures(header: str, expected: bool) -> None:
    body = raw("go_pagerduty_signed_body.json")
    assert verify(body, {"X-PagerDuty-Signature": header}, GO_SECRET) is expected


def test_signature_header_name_is_case_insensitive() -> None:
    body = raw("go_pagerduty_signed_body.json")
    assert verify(body, {"x-pagerduty-signature": GO_VALID}, GO_SECRET) is True


# -- webhooks v3: each event type --------------------------------------------------------


def test_triggered() -> None:
    # this 2021 delivery has no data.created_at: the incident.triggered event time is used
    assert public(parse(raw("triggered_v3.json"), {})) == [
        {
            "kind": "incident",
            "id": "pd-PFQZPSY",
            "title": "Test Incident 3",
            "service": "pig208",
            "severity": 2,  # no priority, urgency high
            "started_at": "2021-06-04T13:35:29.781000Z",
            "detected_at": "2021-06-04T13:35:29.781000Z",  # PagerDuty knew from then on
        }
    ]


def test_acknowledged() -> None:
    assert public(parse(raw("acknowledged_v3.json"), {})) == [
        {
            "kind": "incident",
            "id": "pd-PQ1K5C8",
            "title": "Test Incident",
            "service": "pig208",
            "severity": 2,
            "acknowledged_at": "2021-06-04T13:55:30.394000Z",
        }
    ]


def test_resolved() -> None:
    assert public(parse(raw("resolved_v3.json"), {})) == [
        {
            "kind": "incident",
            "id": "pd-PCPZE64",
            "title": "Test Incident",
            "service": "pig208",
            "severity": 2,
            "resolved_at": "2021-06-04T13:16:53.816000Z",
        }
    ]


@pytest.mark.parametrize("name", ["reassigned_v3.json", "unacknowledged_v3.json"])
def test_events_that_change_no_time(name: str) -> None:
    (rec,) = parse(raw(name), {})
    assert set(rec) == {"kind", "id", "title", "service", "severity", "_open_at", "_where"}
    assert rec["severity"] == 2


def test_reopened() -> None:
    (rec,) = parse(raw("reopened_v3.json"), {})
    assert public([rec]) == [
        {
            "kind": "incident",
            "id": "pd-Q05XJA8GDXGOB3",
            "title": "Test Incident 2",
            "service": "Default Service",
            "severity": 3,  # priority P3 (urgency low)
            "started_at": "2026-03-30T13:37:07Z",
            "detected_at": "2026-03-30T13:37:07Z",  # data.created_at
        }
    ]
    assert rec["_open_at"] == "2026-04-01T02:15:02.274000Z"  # seen open: clears a resolution


def test_priority_updated() -> None:
    (rec,) = public(parse(raw("priority_updated_v3.json"), {}))
    assert (rec["severity"], rec["started_at"]) == (2, "2026-04-01T02:07:30Z")  # P2
    (go,) = public(parse(raw("go_pagerduty_signed_body.json"), {}))
    assert (go["id"], go["severity"], go["service"]) == ("pd-PGR0VU2", 1, "API Service")  # P1


def test_annotated_changes_no_record() -> None:
    # data is an incident_note, not an incident: accepted, kept raw, no record change
    assert parse(raw("annotated_v3.json"), {}) == []


def test_ping_and_service_events_change_no_record() -> None:
    ping = {
        "event": {
            "event_type": "pagey.ping",
            "occurred_at": "2021-06-04T13:35:29Z",
            "data": {"type": "ping", "message": "Hello"},
        }
    }
    assert parse(json.dumps(ping).encode(), {}) == []


@pytest.mark.parametrize(
    ("priority", "urgency", "expected"),
    [
        ("P1", "low", 1),
        ("P2", "low", 2),
        ("P3", "high", 3),
        ("P4", "high", 3),
        ("P5", None, 3),
        ("p1", None, 1),
        ("SEV-1", "high", 2),  # not a P<n> name: urgency decides
        (None, "high", 2),
        (None, "low", 3),
        (None, None, 3),  # neither: the stated default
    ],
)
def test_severity_rule(priority: str | None, urgency: str | None, expected: int) -> None:
    incident: dict[str, Any] = {"priority": {"summary": priority} if priority else None}
    if urgency:
        incident["urgency"] = urgency
    assert severity(incident, "event.data") == expected


# -- bad payloads ------------------------------------------------------------------------


def _mutated(path: list[str], value: Any) -> bytes:
    doc = json.loads(raw("priority_updated_v3.json"))
    node = doc
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("body", "where", "reason"),
    [
        (b"{not json", "line 1 column 2", "malformed JSON"),
        (b"[]", "", "must be a JSON object"),
        (b'{"messages": []}', "event", "v3 webhook payload"),
        (_mutated(["event", "event_type"], KeyError), "event.event_type", "non-empty string"),
        (_mutated(["event", "occurred_at"], KeyError), "event.occurred_at", "timestamp string"),
        (
            _mutated(["event", "occurred_at"], "2026-04-01T02:15:36.315"),
            "event.occurred_at",
            "without UTC offset",
        ),
        (
            _mutated(["event", "data", "created_at"], "2026-04-01 02:07:30"),
            "event.data.created_at",
            "without UTC offset",
        ),
        (_mutated(["event", "data", "id"], ""), "event.data.id", "non-empty string"),
        (_mutated(["event", "data", "id"], 42), "event.data.id", "non-empty string"),
        (_mutated(["event", "data", "priority"], "P1"), "event.data.priority", "object or null"),
        (_mutated(["event", "data", "urgency"], "medium"), "event.data.urgency", "high or low"),
        (_mutated(["event", "data", "status"], "open"), "event.data.status", "must be one of"),
        (_mutated(["event", "data", "title"], ["x"]), "event.data.title", "must be a string"),
        (_mutated(["event", "data", "service"], "api"), "event.data.service", "an object"),
        (_mutated(["event", "data"], "x"), "event.data", "an object"),
    ],
)
def test_bad_payload_says_where_and_why(body: bytes, where: str, reason: str) -> None:
    with pytest.raises(PayloadError) as exc:
        parse(body, {})
    assert exc.value.where == where
    assert reason in exc.value.reason


def test_bad_payload_stores_nothing(engine: Engine) -> None:
    before = count(engine, inbound_payloads)
    with pytest.raises(PayloadError):
        deliver(engine, _mutated(["event", "occurred_at"], "2026-04-01T02:15:36"))
    assert incidents(engine) == {}
    assert count(engine, inbound_payloads) == before


# -- webhooks into the ledger ------------------------------------------------------------


def test_delivery_is_stored(engine: Engine) -> None:
    result = deliver(engine, raw("reopened_v3.json"))
    assert result.totals().inserted == 1
    assert incidents(engine) == {
        "pd-Q05XJA8GDXGOB3": {
            "id": "pd-Q05XJA8GDXGOB3",
            "title": "Test Incident 2",
            "service": "Default Service",
            "severity": 3,
            "started_at": "2026-03-30T13:37:07Z",
            "detected_at": "2026-03-30T13:37:07Z",
        }
    }


def test_redelivery_changes_nothing(engine: Engine) -> None:
    deliver(engine, raw("priority_updated_v3.json"))
    first = incidents(engine)
    again = deliver(engine, raw("priority_updated_v3.json")).totals()
    assert (again.inserted, again.replaced, again.unchanged) == (0, 0, 1)
    assert incidents(engine) == first


def test_resolved_before_triggered_keeps_resolved_at(engine: Engine) -> None:
    # derived from the real priority_updated delivery (it has created_at)
    resolved = derived(
        "priority_updated_v3.json", "incident.resolved", "resolved", "2026-04-01T03:00:00.000Z"
    )
    triggered = derived(
        "priority_updated_v3.json", "incident.triggered", "triggered", "2026-04-01T02:07:30.000Z"
    )
    deliver(engine, resolved)
    deliver(engine, triggered)  # late: seen open at 02:07:30, before the resolution
    rec = incidents(engine)["pd-Q3B15VLMF3ASBD"]
    assert rec["resolved_at"] == "2026-04-01T03:00:00Z"
    assert rec["started_at"] == "2026-04-01T02:07:30Z"


def test_first_acknowledgement_wins_in_any_order(engine: Engine) -> None:
    early = derived(
        "priority_updated_v3.json",
        "incident.acknowledged",
        "acknowledged",
        "2026-04-01T02:10:00.000Z",
    )
    late = derived(
        "priority_updated_v3.json",
        "incident.acknowledged",
        "acknowledged",
        "2026-04-01T02:40:00.000Z",
    )
    deliver(engine, late)
    deliver(engine, early)
    deliver(engine, late)
    assert incidents(engine)["pd-Q3B15VLMF3ASBD"]["acknowledged_at"] == "2026-04-01T02:10:00Z"


def test_reopen_clears_the_resolution_and_the_next_one_counts(engine: Engine) -> None:
    # the real incident.reopened delivery of Q05XJA8GDXGOB3, around a derived resolution
    first = derived("reopened_v3.json", "incident.resolved", "resolved", "2026-03-31T09:00:00Z")
    second = derived("reopened_v3.json", "incident.resolved", "resolved", "2026-04-01T05:00:00Z")
    deliver(engine, first)
    assert incidents(engine)["pd-Q05XJA8GDXGOB3"]["resolved_at"] == "2026-03-31T09:00:00Z"
    deliver(engine, raw("reopened_v3.json"))  # status triggered at 2026-04-01T02:15:02
    assert "resolved_at" not in incidents(engine)["pd-Q05XJA8GDXGOB3"]
    deliver(engine, second)
    deliver(engine, first)  # a late re-delivery of the first resolution changes nothing
    assert incidents(engine)["pd-Q05XJA8GDXGOB3"]["resolved_at"] == "2026-04-01T05:00:00Z"


def test_event_without_created_at_updates_a_known_incident(engine: Engine) -> None:
    load(
        engine,
        [
            {
                "kind": "incident",
                "id": "pd-PQ1K5C8",
                "severity": 1,
                "started_at": "2021-06-04T13:20:11Z",
            }
        ],
    )
    deliver(engine, raw("acknowledged_v3.json"))
    assert incidents(engine)["pd-PQ1K5C8"] == {
        "id": "pd-PQ1K5C8",
        "title": "Test Incident",
        "service": "pig208",
        "severity": 2,
        "started_at": "2021-06-04T13:20:11Z",
        "acknowledged_at": "2021-06-04T13:55:30.394000Z",
    }


def test_event_without_created_at_for_an_unknown_incident_is_refused(engine: Engine) -> None:
    with pytest.raises(PayloadError) as exc:
        deliver(engine, raw("acknowledged_v3.json"))
    assert exc.value.where == "event.data.created_at"
    assert exc.value.reason.startswith(
        "incident PQ1K5C8 is not in the ledger, and this input does not give its started_at"
    )
    assert incidents(engine) == {}


def test_merge_is_pure_and_keeps_a_corrected_earlier_start() -> None:
    stored = {
        "kind": "incident",
        "id": "pd-X",
        "severity": 2,
        "started_at": "2026-04-01T01:50:00Z",
    }  # impact start set by hand
    update = {
        "kind": "incident",
        "id": "pd-X",
        "severity": 1,
        "started_at": "2026-04-01T02:07:30Z",
        "_where": "event.data",
    }
    assert merge(stored, update) == {
        "kind": "incident",
        "id": "pd-X",
        "severity": 1,
        "started_at": "2026-04-01T01:50:00Z",
    }
    assert update["_where"] == "event.data"


# -- REST API exports --------------------------------------------------------------------


def test_demisto_export_with_blank_ids_is_refused(engine: Engine) -> None:
    with pytest.raises(PayloadError) as exc:
        parse_path(PAYLOADS / "demisto_incidents.json")
    assert str(exc.value) == (
        "pagerduty payload, demisto_incidents.json: incidents[0].id: an incident id must be "
        "a non-empty string, got ''"
    )


def test_demisto_export_with_ids(tmp_path: Path) -> None:
    # the anonymised export blanked the ids; give each its incident number to check the rest
    doc = json.loads(raw("demisto_incidents.json"))
    for inc in doc["incidents"]:
        inc["id"] = f"Q{inc['incident_number']}"
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps(doc))
    assert public(parse_path(path)) == [
        {
            "kind": "incident",
            "id": "pd-Q1578",
            "title": "this is a test",
            "service": "API Service",
            "severity": 2,
            "started_at": "2023-11-19T05:51:15Z",
            "detected_at": "2023-11-19T05:51:15Z",
            "resolved_at": "2023-11-19T05:51:28Z",
        },
        {
            "kind": "incident",
            "id": "pd-Q1579",
            "title": "this is a test",
            "service": "API Service",
            "severity": 2,
            "started_at": "2023-11-19T05:52:03Z",
            "detected_at": "2023-11-19T05:52:03Z",
            "resolved_at": "2023-11-19T05:52:16Z",
        },
    ]


def _incident_export(tmp_path: Path, **changes: Any) -> Path:
    doc = json.loads(raw("demisto_incidents.json"))
    inc = copy.deepcopy(doc["incidents"][0])
    inc.update(id="PQ1K5C8", title="Test Incident", **changes)
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps({"incidents": [inc]}))
    return path


def test_resolved_export_without_resolved_at_uses_the_last_status_change(tmp_path: Path) -> None:
    path = _incident_export(
        tmp_path, resolved_at=None, last_status_change_at="2023-11-19T06:00:00Z"
    )
    (rec,) = parse_path(path)
    assert rec["resolved_at"] == "2023-11-19T06:00:00Z"
    path = _incident_export(tmp_path, resolved_at=None, last_status_change_at=None)
    with pytest.raises(PayloadError, match="neither resolved_at nor last_status_change_at"):
        parse_path(path)


def test_log_entries_give_first_ack_and_latest_resolution(engine: Engine) -> None:
    load(
        engine,
        [
            {
                "kind": "incident",
                "id": "pd-PQ1K5C8",
                "severity": 2,
                "started_at": "2021-06-04T13:20:11Z",
            }
        ],
    )
    deliver(engine, raw("acknowledged_v3.json"))  # the re-acknowledgement at 13:55:30.394
    with engine.begin() as conn:
        ingest_path(conn, CONNECTOR, PAYLOADS / "authored_log_entries.json")
    rec = incidents(engine)["pd-PQ1K5C8"]
    assert rec["acknowledged_at"] == "2021-06-04T13:24:23Z"  # the first acknowledgement
    assert rec["resolved_at"] == "2021-06-04T14:10:02Z"
    assert rec["started_at"] == "2021-06-04T13:20:11Z"  # log entries never move the start
    assert rec["detected_at"] == "2021-06-04T13:20:11Z"  # the trigger_log_entry
    assert "mitigated_at" not in rec  # PagerDuty records no mitigation
    with engine.begin() as conn:
        again = ingest_path(conn, CONNECTOR, PAYLOADS / "authored_log_entries.json").totals()
    assert (again.inserted, again.replaced, again.unchanged) == (0, 0, 1)


def test_log_entries_of_an_unknown_incident_are_refused(engine: Engine) -> None:
    with pytest.raises(PayloadError) as exc, engine.begin() as conn:
        ingest_path(conn, CONNECTOR, PAYLOADS / "authored_log_entries.json")
    assert exc.value.where == (
        "authored_log_entries.json: log_entries[0] (log entries of incident PQ1K5C8)"
    )
    assert "does not give its severity and started_at" in exc.value.reason
    assert incidents(engine) == {}


def test_directory_export_of_incidents_and_log_entries(tmp_path: Path, engine: Engine) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    _incident_export(
        folder,
        status="resolved",
        created_at="2021-06-04T13:20:11Z",
        resolved_at="2021-06-04T14:10:02Z",
        acknowledgements=[],
    )
    (folder / "log_entries.json").write_bytes(raw("authored_log_entries.json"))
    with engine.begin() as conn:
        ingest_path(conn, CONNECTOR, folder)
    assert incidents(engine)["pd-PQ1K5C8"] == {
        "id": "pd-PQ1K5C8",
        "title": "Test Incident",
        "service": "API Service",
        "severity": 2,
        "started_at": "2021-06-04T13:20:11Z",
        "detected_at": "2021-06-04T13:20:11Z",
        "acknowledged_at": "2021-06-04T13:24:23Z",
        "resolved_at": "2021-06-04T14:10:02Z",
    }


def test_open_incident_in_export_clears_an_older_resolution(tmp_path: Path, engine: Engine) -> None:
    deliver(
        engine, derived("reopened_v3.json", "incident.resolved", "resolved", "2026-03-31T09:00:00Z")
    )
    doc = json.loads(raw("demisto_incidents.json"))
    inc = doc["incidents"][0]
    inc.update(
        id="Q05XJA8GDXGOB3",
        status="triggered",
        created_at="2026-03-30T13:37:07Z",
        resolved_at=None,
        last_status_change_at="2026-04-01T02:15:01Z",
    )
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps({"incidents": [inc]}))
    with engine.begin() as conn:
        ingest_path(conn, CONNECTOR, path)
    assert "resolved_at" not in incidents(engine)["pd-Q05XJA8GDXGOB3"]


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        ({"alerts": []}, "not a PagerDuty REST API export"),
        ({"incidents": {}}, "must be a list"),
        (
            {
                "log_entries": [
                    {
                        "type": "acknowledge_log_entry",
                        "created_at": "2021-06-04T13:24:23",
                        "incident": {"id": "PQ1K5C8"},
                    }
                ]
            },
            "without UTC offset",
        ),
        (
            {"log_entries": [{"type": "resolve_log_entry", "created_at": "2021-06-04T13:24:23Z"}]},
            "must be an object",
        ),
        (
            {"incidents": [{"id": "Q1", "status": "triggered", "urgency": "high"}]},
            "missing (every incident has one)",
        ),
    ],
)
def test_bad_export_is_refused(tmp_path: Path, doc: Any, reason: str) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PayloadError) as exc:
        parse_path(path)
    assert reason in str(exc.value)
    assert "export.json" in str(exc.value)


def test_cli_import(cli: Any, tmp_path: Path) -> None:
    code, _, err = cli("import", "--from", "pagerduty", str(PAYLOADS / "demisto_incidents.json"))
    assert code == 2
    assert "demisto_incidents.json: incidents[0].id" in err
    path = _incident_export(tmp_path, status="resolved")
    code, out, _ = cli("import", "--from", "pagerduty", str(path), "--format", "json")
    assert code == 0
    assert json.loads(out)["imported"][0]["counts"]["incident"]["inserted"] == 1
    code, out, _ = cli("import", "--from", "pagerduty", str(path), "--format", "json")
    assert json.loads(out)["imported"][0]["counts"]["incident"]["unchanged"] == 1


# -- through the HTTP API ----------------------------------------------------------------


# starlette announces a move from httpx to httpx2 (a UserWarning subclass, which the project's
# DeprecationWarning filter does not match): not ours to act on
HTTPX_NOTICE = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)


@pytest.fixture
def client(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from fastapi.testclient import TestClient

    monkeypatch.setenv("OPSLEDGER_PAGERDUTY_WEBHOOK_SECRET", GO_SECRET)
    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as c:
        c.engine = app.state.engine
        yield c
    app.state.engine.dispose()


def _signed(body: bytes) -> dict[str, str]:
    # signed here with the standard library, as PagerDuty documents it
    digest = hmac.new(GO_SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-PagerDuty-Signature": f"v1=ffff,v1={digest}", "Content-Type": "application/json"}


@HTTPX_NOTICE
def test_signed_webhook_is_accepted_without_a_token(client: Any) -> None:
    body = raw("priority_updated_v3.json")
    response = client.post("/api/v1/hooks/pagerduty", content=body, headers=_signed(body))
    assert response.status_code == 202, response.text
    assert response.json()["inserted"] == 1
    # PagerDuty's own signed test body (signature computed by go-pagerduty's authors)
    load(
        client.engine,
        [
            {
                "kind": "incident",
                "id": "pd-PGR0VU2",
                "severity": 3,
                "started_at": "2021-04-26T17:00:00Z",
            }
        ],
    )
    go = raw("go_pagerduty_signed_body.json")
    response = client.post(
        "/api/v1/hooks/pagerduty", content=go, headers={"X-PagerDuty-Signature": GO_VALID}
    )
    assert response.status_code == 202, response.text
    assert incidents(client.engine)["pd-PGR0VU2"]["severity"] == 1


@HTTPX_NOTICE
def test_wrong_signature_is_401_logged_and_stores_nothing(client: Any) -> None:
    body = raw("go_pagerduty_signed_body.json")
    rejected = count(client.engine, rejected_payloads)
    inbound = count(client.engine, inbound_payloads)
    response = client.post(
        "/api/v1/hooks/pagerduty", content=body, headers={"X-PagerDuty-Signature": GO_MISMATCH}
    )
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["detail"]) == (401, "pagerduty signature does not match")
    assert count(client.engine, rejected_payloads) == rejected + 1
    with client.engine.connect() as conn:
        row = conn.execute(
            select(rejected_payloads).order_by(rejected_payloads.c.id.desc()).limit(1)
        ).one()
    assert (row.connector, row.status, row.body) == ("pagerduty", 401, body.decode())
    assert count(client.engine, inbound_payloads) == inbound
    assert count(client.engine, RECORD_TABLES["incident"]) == 0


@HTTPX_NOTICE
def test_unsigned_webhook_needs_a_bearer_token(client: Any) -> None:
    body = raw("priority_updated_v3.json")
    response = client.post("/api/v1/hooks/pagerduty", content=body)
    assert response.status_code == 401
    assert count(client.engine, RECORD_TABLES["incident"]) == 0
    with client.engine.begin() as conn:
        token = create_token(conn, "pd-test", "ingest")
    response = client.post(
        "/api/v1/hooks/pagerduty", content=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 202


@HTTPX_NOTICE
def test_bad_payload_with_a_good_signature_is_422(client: Any) -> None:
    body = _mutated(["event", "occurred_at"], "2026-04-01T02:15:36")
    rejected = count(client.engine, rejected_payloads)
    response = client.post("/api/v1/hooks/pagerduty", content=body, headers=_signed(body))
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "pagerduty payload, event.occurred_at: timestamp without UTC offset: '2026-04-01T02:15:36'"
    )
    assert count(client.engine, rejected_payloads) == rejected + 1
    assert count(client.engine, RECORD_TABLES["incident"]) == 0


# -- detected_at and mitigated_at --------------------------------------------------------


def test_earliest_detection_wins_and_a_hand_mitigation_is_kept(
    engine: Engine, tmp_path: Path
) -> None:
    # derived from the real priority_updated delivery (created_at 02:07:30); the incident
    # was recorded by hand before, with an earlier impact start and a later detection guess
    body = raw("priority_updated_v3.json")
    iid = "pd-" + json.loads(body)["event"]["data"]["id"]
    load(engine, [{"kind": "incident", "id": iid, "severity": 2,
                   "started_at": "2026-04-01T02:00:00Z", "detected_at": "2026-04-01T02:09:00Z"}])
    deliver(engine, body)
    rec = incidents(engine)[iid]
    assert (rec["started_at"], rec["detected_at"]) == ("2026-04-01T02:00:00Z",
                                                       "2026-04-01T02:07:30Z")
    with engine.begin() as conn:  # a person records when the service was restored
        mitigate(conn, iid, datetime(2026, 4, 1, 2, 12, tzinfo=UTC))
    # later trigger_log_entries (re-triggers) do not move the detection
    path = tmp_path / "log_entries.json"
    path.write_text(json.dumps({"log_entries": [
        {"type": "trigger_log_entry", "created_at": at, "incident": {"id": iid[3:]}}
        for at in ("2026-04-01T02:07:45Z", "2026-04-01T02:07:31Z")]}))
    with engine.begin() as conn:
        ingest_path(conn, CONNECTOR, path)
    rec = incidents(engine)[iid]
    assert rec["detected_at"] == "2026-04-01T02:07:30Z"
    assert rec["mitigated_at"] == "2026-04-01T02:12:00Z"  # no PagerDuty input touches it
    deliver(engine, body)  # the webhook again: nothing changes
    assert incidents(engine)[iid] == rec


def test_a_trigger_log_entry_before_the_start_is_refused(engine: Engine, tmp_path: Path) -> None:
    load(engine, [{"kind": "incident", "id": "pd-PQ1K5C8", "severity": 2,
                   "started_at": "2021-06-04T13:30:00Z"}])
    with pytest.raises(RecordError, match=r"detected_at .* is before started_at"), \
            engine.begin() as conn:
        ingest_path(conn, CONNECTOR, PAYLOADS / "authored_log_entries.json")
    assert "detected_at" not in incidents(engine)["pd-PQ1K5C8"]
