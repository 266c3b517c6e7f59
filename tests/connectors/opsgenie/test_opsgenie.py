"""Opsgenie connector: alert webhooks and List Alerts exports, on their real payloads.

Golden payloads (payloads/, origins in payloads/NOTICE): Opsgenie Webhook-integration
deliveries kept by Zulip and the demisto List Alerts response. Expected times were computed
by hand from the epoch values (e.g. `date -u -d @1420452191` is 2015-01-05 10:03:11 UTC).
Where a test needs an event the fixtures do not have, it is derived from a real payload by
changing only the named fields, and the test says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from opsledger.access import create_token
from opsledger.api.app import create_app
from opsledger.connectors.base import PayloadError, get_connector
from opsledger.connectors.opsgenie import merge, parse, parse_path, when
from opsledger.core.db import make_engine
from opsledger.ingest.importer import ImportResult
from opsledger.ingest.inbound import ingest_path, ingest_payload
from opsledger.ingest.replay import iter_records
from opsledger.records.tables import RECORD_TABLES, inbound_payloads, rejected_payloads
from opsledger.records.validation import canonical
from opsledger.settings import Settings

PAYLOADS = Path(__file__).parent / "payloads"
CONNECTOR = get_connector("opsgenie")
assert CONNECTOR is not None
ALERT = "og-052652ac-5d1c-464a-812a-7dd18bbfba8c"  # the alert of the Zulip fixtures
CREATED = "2015-01-05T10:03:11.104000Z"  # its createdAt 1420452191104 (ms)


def raw(name: str) -> bytes:
    return (PAYLOADS / name).read_bytes()


def derived(name: str, **alert: Any) -> bytes:
    """A real payload with only the named alert fields changed (`action` for the action)."""
    doc = json.loads(raw(name))
    if "action" in alert:
        doc["action"] = alert.pop("action")
    doc["alert"].update(alert)
    return json.dumps(doc).encode()


def deliver(engine: Engine, body: bytes) -> ImportResult:
    with engine.begin() as conn:
        return ingest_payload(conn, CONNECTOR, body, {})


def alerts(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r["id"]: json.loads(canonical(r)) for r in iter_records(conn, "alert")}


def count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


# -- each action -------------------------------------------------------------------------


def test_create() -> None:
    assert parse(raw("create.json"), {}) == [
        {
            "kind": "alert",
            "id": "og-ec03dad6-62c8-4c94-b38b-d88f398e900f",
            "name": "another alert",
            "source": "opsgenie",
            "fired_at": "2017-08-14T11:25:56.288000Z",  # createdAt 1502709956288 ms
            "severity": "warning",  # priority 3
            "fingerprint": "alert-alias",
            "annotations": {
                "tags": "vip",
                "entity": "Server",
                "tiny_id": "2",
                "source": "test@example.com",
            },
        }
    ]


def test_acknowledge() -> None:
    (rec,) = parse(raw("acknowledge.json"), {})
    assert rec == {
        "kind": "alert",
        "id": ALERT,
        "name": "test alert",
        "source": "opsgenie",
        "fired_at": CREATED,
        "fingerprint": "aliastest",
        "annotations": {"tags": "tag1,tag2", "tiny_id": "23", "source": "fili@ifountain.com"},
        # updatedAt 1420452224764002246 ns, cut to the microsecond
        "acknowledged_at": "2015-01-05T10:03:44.764002Z",
        "acknowledged_by": "fili@ifountain.com",
    }


def test_close() -> None:
    (rec,) = parse(raw("close.json"), {})
    assert rec["resolved_at"] == "2015-01-05T10:06:14.669001Z"  # updatedAt ns
    assert "acknowledged_at" not in rec
    assert "tags" not in rec["annotations"]  # the alert has no tags any more


@pytest.mark.parametrize("name", ["addnote.json", "unacknowledge.json"])
def test_actions_that_set_no_time(name: str) -> None:
    (rec,) = parse(raw(name), {})
    assert rec["fired_at"] == CREATED
    assert not {"acknowledged_at", "acknowledged_by", "resolved_at"} & set(rec)


def test_details_become_labels_and_service() -> None:
    body = derived(
        "create.json", details={"service": "checkout", "region": "eu-1"}, description="p99 over 2 s"
    )
    (rec,) = parse(body, {})
    assert rec["labels"] == {"service": "checkout", "region": "eu-1"}
    assert rec["service"] == "checkout"
    assert rec["annotations"]["description"] == "p99 over 2 s"


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        ("P1", "critical"),
        ("P2", "critical"),
        ("P3", "warning"),
        ("P4", "info"),
        ("P5", "info"),
        (1, "critical"),
        (3, "warning"),
        (5, "info"),
        (None, None),
    ],
)
def test_priority_rule(priority: Any, expected: str | None) -> None:
    (rec,) = parse(derived("create.json", priority=priority), {})
    assert rec.get("severity") == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1420452191104, "2015-01-05T10:03:11.104000Z"),  # milliseconds
        (1420452224764002246, "2015-01-05T10:03:44.764002Z"),  # nanoseconds
        (100000000000, "1973-03-03T09:46:40Z"),  # the smallest millisecond value taken
        ("2021-11-24T12:14:40.926Z", "2021-11-24T12:14:40.926000Z"),
        ("2021-11-24T13:14:40+01:00", "2021-11-24T12:14:40Z"),
    ],
)
def test_times_convert_exactly(value: Any, expected: str) -> None:
    assert when(value, "alert.createdAt") == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1420452191, "neither epoch milliseconds nor epoch nanoseconds"),  # seconds
        (1420452191104000, "neither epoch milliseconds nor epoch nanoseconds"),  # micros
        (1420452191104.5, "expected epoch milliseconds or an RFC 3339 time"),
        (True, "expected epoch milliseconds or an RFC 3339 time"),
        ("2021-11-24T12:14:40.926", "without UTC offset"),
        ("yesterday", "not an RFC 3339 timestamp"),
    ],
)
def test_bad_times_are_refused(value: Any, reason: str) -> None:
    with pytest.raises(PayloadError) as exc:
        when(value, "alert.createdAt")
    assert exc.value.where == "alert.createdAt"
    assert reason in exc.value.reason


# -- bad payloads ------------------------------------------------------------------------


def _without(key: str) -> bytes:
    doc = json.loads(raw("acknowledge.json"))
    del doc["alert"][key]
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("body", "where", "reason"),
    [
        (b"\xff", "", "not UTF-8"),
        (b'{"action": "Create"', "line 1 column 20", "malformed JSON"),
        (b'"Create"', "", "must be a JSON object"),
        (b'{"alert": {}}', "action", "non-empty string"),
        (b'{"action": "Create"}', "alert", "must be an object"),
        (_without("alertId"), "alert.alertId", "missing or empty"),
        (_without("message"), "alert.message", "missing or empty"),
        (_without("createdAt"), "alert.createdAt", "expected epoch milliseconds"),
        (_without("updatedAt"), "alert.updatedAt", "expected epoch milliseconds"),
        (
            derived("acknowledge.json", createdAt="2015-01-05 10:03:11"),
            "alert.createdAt",
            "without UTC offset",
        ),
        (derived("acknowledge.json", tags="tag1"), "alert.tags", "list of strings"),
        (derived("acknowledge.json", details={"n": 1}), "alert.details.n", "must be a string"),
        (derived("acknowledge.json", priority="high"), "alert.priority", "P1 to P5"),
        (derived("acknowledge.json", priority=0), "alert.priority", "P1 to P5"),
        (derived("acknowledge.json", username=["x"]), "alert.username", "must be a string"),
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
        deliver(engine, derived("acknowledge.json", createdAt="2015-01-05T10:03:11"))
    assert alerts(engine) == {}
    assert count(engine, inbound_payloads) == before


def test_acknowledged_before_it_fired_is_refused(engine: Engine) -> None:
    from opsledger.errors import RecordError

    with pytest.raises(RecordError, match="acknowledged_at"):
        deliver(engine, derived("acknowledge.json", updatedAt=1420452000000000000))
    assert alerts(engine) == {}


# -- into the ledger ---------------------------------------------------------------------


def test_lifecycle(engine: Engine) -> None:
    for name in ("acknowledge.json", "unacknowledge.json", "addnote.json", "close.json"):
        deliver(engine, raw(name))
    assert alerts(engine) == {
        ALERT: {
            "id": ALERT,
            "name": "test alert",
            "source": "opsgenie",
            "fired_at": "2015-01-05T10:03:11.104000Z",
            "fingerprint": "aliastest",
            "annotations": {"tiny_id": "23", "source": "fili@ifountain.com"},
            "acknowledged_at": "2015-01-05T10:03:44.764002Z",  # unacknowledged later: kept
            "acknowledged_by": "fili@ifountain.com",
            "resolved_at": "2015-01-05T10:06:14.669001Z",
        }
    }


def test_redelivery_changes_nothing(engine: Engine) -> None:
    deliver(engine, raw("acknowledge.json"))
    deliver(engine, raw("close.json"))
    first = alerts(engine)
    again = deliver(engine, raw("close.json")).totals()
    assert (again.inserted, again.replaced, again.unchanged) == (0, 0, 1)
    assert alerts(engine) == first


def test_close_before_create_keeps_resolved_at(engine: Engine) -> None:
    deliver(engine, raw("close.json"))
    deliver(engine, raw("acknowledge.json"))
    # derived: the Create delivery of the same alert
    deliver(engine, derived("acknowledge.json", action="Create"))
    rec = alerts(engine)[ALERT]
    assert rec["resolved_at"] == "2015-01-05T10:06:14.669001Z"
    assert rec["acknowledged_at"] == "2015-01-05T10:03:44.764002Z"


def test_first_acknowledgement_and_its_author_win(engine: Engine) -> None:
    # derived: a second acknowledgement by someone else, 2 minutes later, delivered first
    later = derived("acknowledge.json", updatedAt=1420452344764002246, username="ops@example.com")
    deliver(engine, later)
    assert alerts(engine)[ALERT]["acknowledged_by"] == "ops@example.com"
    deliver(engine, raw("acknowledge.json"))
    deliver(engine, later)
    rec = alerts(engine)[ALERT]
    assert (rec["acknowledged_at"], rec["acknowledged_by"]) == (
        "2015-01-05T10:03:44.764002Z",
        "fili@ifountain.com",
    )


def test_merge_is_pure() -> None:
    stored = {
        "kind": "alert",
        "id": "og-1",
        "name": "a",
        "fired_at": CREATED,
        "acknowledged_at": "2015-01-05T10:03:44Z",
        "resolved_at": "2015-01-05T10:09:00Z",
    }
    update = {
        "kind": "alert",
        "id": "og-1",
        "name": "b",
        "fired_at": CREATED,
        "acknowledged_at": "2015-01-05T10:05:00Z",
        "acknowledged_by": "late",
        "resolved_at": "2015-01-05T10:06:00Z",
    }
    assert merge(stored, update) == {
        "kind": "alert",
        "id": "og-1",
        "name": "b",
        "fired_at": CREATED,
        "acknowledged_at": "2015-01-05T10:03:44Z",
        "resolved_at": "2015-01-05T10:09:00Z",
    }
    assert update["acknowledged_by"] == "late"


# -- List Alerts exports -----------------------------------------------------------------


def test_demisto_export() -> None:
    assert parse_path(PAYLOADS / "demisto_get_alerts.json") == [
        {
            "kind": "alert",
            "id": "og-b7da6303-0da4-43e2-8e21-9e22faedc594-1637756080926",
            "name": "1234",
            "source": "opsgenie",
            "fired_at": "2021-11-24T12:14:40.926000Z",
            "severity": "warning",
            "fingerprint": "b7da6303-0da4-43e2-8e21-9e22faedc594-1637756080926",
            "annotations": {"tiny_id": "163", "source": "192.168.x.x"},
        }
    ]


def _export(tmp_path: Path, **changes: Any) -> Path:
    doc = json.loads(raw("demisto_get_alerts.json"))
    doc["data"][0].update(changes)
    path = tmp_path / "alerts.json"
    path.write_text(json.dumps(doc))
    return path


def test_export_of_an_acknowledged_and_closed_alert(tmp_path: Path) -> None:
    # derived from the demisto alert: closed, acknowledged, with the report durations
    path = _export(
        tmp_path,
        status="closed",
        acknowledged=True,
        report={
            "ackTime": 15702,
            "closeTime": 60503,
            "acknowledgedBy": "user@example.com",
            "closedBy": "user@example.com",
        },
    )
    (rec,) = parse_path(path)
    assert rec["acknowledged_at"] == "2021-11-24T12:14:56.628000Z"  # 40.926 s + 15.702 s
    assert rec["acknowledged_by"] == "user@example.com"
    assert rec["resolved_at"] == "2021-11-24T12:15:41.429000Z"  # 40.926 s + 60.503 s


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"status": "closed"}, "report.closeTime: missing: the alert is closed"),
        ({"acknowledged": True}, "report.ackTime: missing: the alert is acknowledged"),
        ({"acknowledged": True, "report": {"ackTime": "15s"}}, "must be milliseconds"),
        ({"status": "resolved"}, "status: must be open or closed"),
        ({"acknowledged": "yes"}, "acknowledged: must be true or false"),
        ({"createdAt": "2021-11-24T12:14:40.926"}, "without UTC offset"),
        ({"id": ""}, "data[0].id: missing or empty"),
    ],
)
def test_bad_export_is_refused(tmp_path: Path, changes: dict[str, Any], reason: str) -> None:
    with pytest.raises(PayloadError) as exc:
        parse_path(_export(tmp_path, **changes))
    assert "alerts.json: data[0]" in str(exc.value)
    assert reason in str(exc.value)


def test_export_not_a_list_alerts_response(tmp_path: Path) -> None:
    path = tmp_path / "logs.json"
    path.write_text(json.dumps({"incidents": []}))
    with pytest.raises(PayloadError, match=r"logs\.json: data: must be a list"):
        parse_path(path)


def test_export_directory_of_pages(tmp_path: Path, engine: Engine) -> None:
    pages = tmp_path / "pages"
    pages.mkdir()
    (pages / "1.json").write_bytes(raw("demisto_get_alerts.json"))
    doc = json.loads(raw("demisto_get_alerts.json"))
    doc["data"][0].update(id="second", alias="second")  # derived: a second page's alert
    (pages / "2.json").write_text(json.dumps(doc))
    with engine.begin() as conn:
        assert ingest_path(conn, CONNECTOR, pages).totals().inserted == 2
    assert sorted(alerts(engine)) == [
        "og-b7da6303-0da4-43e2-8e21-9e22faedc594-1637756080926",
        "og-second",
    ]


def test_export_then_webhook_update_the_same_record(tmp_path: Path, engine: Engine) -> None:
    with engine.begin() as conn:
        ingest_path(conn, CONNECTOR, PAYLOADS / "demisto_get_alerts.json")
    rid = "og-b7da6303-0da4-43e2-8e21-9e22faedc594-1637756080926"
    # derived: the Close webhook of the exported alert, 10 s after it was created
    close = derived(
        "close.json",
        alertId=rid[3:],
        message="1234",
        createdAt=1637756080926,
        updatedAt=1637756090926000000,
    )
    deliver(engine, close)
    assert alerts(engine)[rid]["resolved_at"] == "2021-11-24T12:14:50.926000Z"
    assert alerts(engine)[rid]["severity"] == "warning"  # from the export, kept


def test_cli_import(cli: Any) -> None:
    path = str(PAYLOADS / "demisto_get_alerts.json")
    code, out, _ = cli("import", "--from", "opsgenie", path, "--format", "json")
    assert code == 0
    assert json.loads(out)["imported"][0]["counts"]["alert"]["inserted"] == 1
    code, out, _ = cli("import", "--from", "opsgenie", path, "--format", "json")
    assert json.loads(out)["imported"][0]["counts"]["alert"]["unchanged"] == 1


def test_cli_import_refuses_a_bad_export(cli: Any, tmp_path: Path, db_url: str) -> None:
    code, _, err = cli("import", "--from", "opsgenie", str(_export(tmp_path, status="closed")))
    assert code == 2
    assert "alerts.json: data[0].report.closeTime" in err
    engine = make_engine(db_url)
    try:
        assert count(engine, RECORD_TABLES["alert"]) == 0
    finally:
        engine.dispose()


# -- through the HTTP API (bearer token: Opsgenie sends it as a custom header) -----------

HTTPX_NOTICE = pytest.mark.filterwarnings(
    "ignore::starlette.exceptions.StarletteDeprecationWarning"
)


@pytest.fixture
def client(db_url: str) -> Any:
    from fastapi.testclient import TestClient

    app = create_app(Settings(database_url=db_url))
    with TestClient(app) as c:
        with app.state.engine.begin() as conn:
            c.token = create_token(conn, "opsgenie-test", "ingest")
        c.engine = app.state.engine
        yield c
    app.state.engine.dispose()


@HTTPX_NOTICE
def test_webhook_with_token(client: Any) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}
    response = client.post("/api/v1/hooks/opsgenie", content=raw("create.json"), headers=headers)
    assert response.status_code == 202, response.text
    assert response.json()["inserted"] == 1
    assert list(alerts(client.engine)) == ["og-ec03dad6-62c8-4c94-b38b-d88f398e900f"]


@HTTPX_NOTICE
def test_webhook_without_token_is_401_and_stores_nothing(client: Any) -> None:
    rejected = count(client.engine, rejected_payloads)
    response = client.post("/api/v1/hooks/opsgenie", content=raw("create.json"))
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert count(client.engine, rejected_payloads) == rejected + 1
    assert count(client.engine, RECORD_TABLES["alert"]) == 0


@HTTPX_NOTICE
def test_bad_webhook_is_422_logged_and_stores_nothing(client: Any) -> None:
    headers = {"Authorization": f"Bearer {client.token}"}
    rejected = count(client.engine, rejected_payloads)
    inbound = count(client.engine, inbound_payloads)
    body = derived("create.json", createdAt=1502709956)  # epoch seconds: refused
    response = client.post("/api/v1/hooks/opsgenie", content=body, headers=headers)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "opsgenie payload, alert.createdAt: 1502709956 is neither epoch milliseconds nor "
        "epoch nanoseconds"
    )
    assert count(client.engine, rejected_payloads) == rejected + 1
    assert count(client.engine, inbound_payloads) == inbound
    assert count(client.engine, RECORD_TABLES["alert"]) == 0
