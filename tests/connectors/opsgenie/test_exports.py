"""Opsgenie exports beyond List Alerts: alert logs and the Incident API, on the real demisto
responses (payloads/NOTICE). Where a test needs data the samples do not have, it is derived
from a real response by changing only the named fields, and the test says so."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from opsledger.connectors.base import PayloadError, get_connector
from opsledger.connectors.opsgenie import parse_path
from opsledger.incidents.service import get_record, write
from opsledger.ingest.inbound import ingest_path
from opsledger.ingest.replay import iter_records
from opsledger.records.validation import canonical
from tests.conftest import load

PAYLOADS = Path(__file__).parent / "payloads"
CONNECTOR = get_connector("opsgenie")
assert CONNECTOR is not None
ALERT_ID = "b7da6303-0da4-43e2-8e21-9e22faedc594-1637756080926"  # of demisto_get_alerts.json
INCIDENT_ID = "2a1c07ea-b9bd-4922-afcc-edf406b46904"  # of demisto_get_incidents.json


def records(engine: Engine, kind: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        return {r["id"]: json.loads(canonical(r)) for r in iter_records(conn, kind)}


def import_path(engine: Engine, path: Path) -> None:
    with engine.begin() as conn:
        ingest_path(conn, CONNECTOR, path)


def logs_doc(*extra: dict[str, Any]) -> dict[str, Any]:
    doc = json.loads((PAYLOADS / "demisto_get_alert_logs.json").read_text())
    doc["data"].extend(extra)
    return doc


def export_dir(tmp_path: Path, logs: dict[str, Any] | None = None) -> Path:
    """The demisto alert list and (by default) the demisto logs, saved as that alert's logs;
    the list's file name sorts after the logs', which must not matter."""
    folder = tmp_path / "export"
    folder.mkdir(parents=True)
    shutil.copy(PAYLOADS / "demisto_get_alerts.json", folder / "z-alerts.json")
    path = folder / f"{ALERT_ID}.logs.json"
    if logs is None:
        shutil.copy(PAYLOADS / "demisto_get_alert_logs.json", path)
    else:
        path.write_text(json.dumps(logs))
    return folder


# -- alert logs --------------------------------------------------------------------------


def test_alert_logs_give_the_acknowledgement_and_who(tmp_path: Path, engine: Engine) -> None:
    import_path(engine, export_dir(tmp_path))
    alert = records(engine, "alert")["og-" + ALERT_ID]
    # "Alert acknowledged via web[...]" at 09:24:58.894 by its owner; "Viewed on [web]" is
    # no acknowledgement
    assert alert["acknowledged_at"] == "2023-08-03T09:24:58.894000Z"
    assert alert["acknowledged_by"] == "demisto@demisto.local"
    assert "resolved_at" not in alert
    assert alert["name"] == "1234"  # the list's fields are kept
    with engine.begin() as conn:  # the same export again changes nothing
        again = ingest_path(conn, CONNECTOR, export_dir(tmp_path / "again")).totals()
    assert (again.inserted, again.replaced, again.unchanged) == (0, 0, 1)


def test_first_acknowledgement_and_latest_close_win(tmp_path: Path, engine: Engine) -> None:
    # derived: the demisto log entries plus a later re-acknowledgement and two closes
    later_ack = {"createdAt": "2023-08-03T09:30:00Z", "owner": "bob@example.com",
                 "log": "Alert acknowledged via web[Default API-Acknowledge Alert]",
                 "offset": "x", "type": "alertAction"}
    closes = [{"createdAt": at, "owner": "bob@example.com", "log": "Alert closed via web",
               "offset": "y", "type": "alertAction"}
              for at in ("2023-08-03T10:00:00Z", "2023-08-03T09:45:00.5Z")]
    import_path(engine, export_dir(tmp_path, logs_doc(later_ack, *closes)))
    alert = records(engine, "alert")["og-" + ALERT_ID]
    assert (alert["acknowledged_at"], alert["acknowledged_by"]) == (
        "2023-08-03T09:24:58.894000Z", "demisto@demisto.local")
    assert alert["resolved_at"] == "2023-08-03T10:00:00Z"


def test_logs_of_an_alert_not_in_the_ledger_are_refused(tmp_path: Path, engine: Engine) -> None:
    path = tmp_path / f"{ALERT_ID}.logs.json"
    shutil.copy(PAYLOADS / "demisto_get_alert_logs.json", path)
    with pytest.raises(PayloadError) as exc:
        import_path(engine, path)
    assert exc.value.where == f"{path.name}: data (logs of alert {ALERT_ID})"
    assert "is not in the ledger" in exc.value.reason
    assert records(engine, "alert") == {}


def test_logs_need_the_alert_in_their_file_name(tmp_path: Path) -> None:
    path = tmp_path / "logs.json"
    shutil.copy(PAYLOADS / "demisto_get_alert_logs.json", path)
    with pytest.raises(PayloadError, match=r"logs\.json: data\[0\]: an alert log entry, which "
                                           r"does not name its alert: save the logs of alert ID "
                                           r"as ID\.logs\.json"):
        parse_path(path)


def test_logs_with_a_naive_time_are_refused(tmp_path: Path) -> None:
    doc = logs_doc()
    doc["data"][1]["createdAt"] = "2023-08-03T09:24:58.894"  # derived: no offset
    path = tmp_path / f"{ALERT_ID}.logs.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PayloadError, match=r"data\[1\]\.createdAt: timestamp without UTC offset"):
        parse_path(path)


# -- Incident API ------------------------------------------------------------------------


def test_incident_export() -> None:
    (rec,) = parse_path(PAYLOADS / "demisto_get_incidents.json")
    assert {k: v for k, v in rec.items() if not k.startswith("_")} == {
        "kind": "incident",
        "id": "og-" + INCIDENT_ID,
        "title": "test",
        "severity": 3,  # P3
        "started_at": "2021-11-21T19:32:02.148000Z",  # impactStartDate
        "detected_at": "2021-11-21T19:32:02.148000Z",  # createdAt
    }


def _incidents(tmp_path: Path, **changes: Any) -> Path:
    doc = json.loads((PAYLOADS / "demisto_get_incidents.json").read_text())
    doc["data"][0].update(changes)
    path = tmp_path / "incidents.json"
    path.write_text(json.dumps(doc))
    return path


def test_resolved_incident_and_reopen(tmp_path: Path, engine: Engine) -> None:
    # derived: the demisto incident resolved, impact from 19:30 to 20:05, a P1 of checkout
    resolved = _incidents(tmp_path, status="resolved", priority="P1",
                          impactStartDate="2021-11-21T19:30:00Z",
                          impactEndDate="2021-11-21T20:05:00Z", updatedAt="2021-11-21T20:05:01Z",
                          extraProperties={"service": "checkout"})
    import_path(engine, resolved)
    assert records(engine, "incident")["og-" + INCIDENT_ID] == {
        "id": "og-" + INCIDENT_ID, "title": "test", "severity": 1, "service": "checkout",
        "started_at": "2021-11-21T19:30:00Z", "detected_at": "2021-11-21T19:32:02.148000Z",
        "mitigated_at": "2021-11-21T20:05:00Z", "resolved_at": "2021-11-21T20:05:00Z",
    }
    # a person acknowledged it in the ledger; an older export (open, updated before the
    # resolution) changes no time and keeps the acknowledgement
    with engine.begin() as conn:
        rec = get_record(conn, "incident", "og-" + INCIDENT_ID)
        assert rec is not None
        rec.update(acknowledged_at=datetime(2021, 11, 21, 19, 40, tzinfo=UTC))
        write(conn, [("incident", rec)], "cli")
    import_path(engine, _incidents(tmp_path, priority="P1", extraProperties={"service":
                                                                             "checkout"}))
    inc = records(engine, "incident")["og-" + INCIDENT_ID]
    assert inc["resolved_at"] == "2021-11-21T20:05:00Z"
    assert inc["started_at"] == "2021-11-21T19:30:00Z"  # the earliest start stays
    assert inc["acknowledged_at"] == "2021-11-21T19:40:00Z"
    # open again, updated after the resolution: reopened
    import_path(engine, _incidents(tmp_path, updatedAt="2021-11-21T21:00:00Z", priority="P1"))
    inc = records(engine, "incident")["og-" + INCIDENT_ID]
    assert "resolved_at" not in inc and inc["mitigated_at"] == "2021-11-21T20:05:00Z"


@pytest.mark.parametrize(
    ("changes", "where", "reason"),
    [
        ({"status": "closed"}, "data[0].impactEndDate",
         "missing: the incident is closed, but the export does not say when its impact ended"),
        ({"priority": "high"}, "data[0].priority", "must be P1 to P5, got 'high'"),
        ({"status": "acknowledged"}, "data[0].status",
         "must be one of open, resolved, closed, got 'acknowledged'"),
        ({"createdAt": "2021-11-21 19:32:02"}, "data[0].createdAt", "without UTC offset"),
        ({"message": ""}, "data[0].message", "missing or empty"),
        ({"impactedServices": None, "impactStartDate": None, "alias": None}, "data[0]",
         "cannot tell an alert"),
    ],
)
def test_bad_incident_export_is_refused(
    tmp_path: Path, engine: Engine, changes: dict[str, Any], where: str, reason: str
) -> None:
    path = _incidents(tmp_path, **changes)
    if changes.get("impactedServices", 0) is None:  # the markers removed, not set to null
        doc = json.loads(path.read_text())
        for key in changes:
            doc["data"][0].pop(key, None)
        path.write_text(json.dumps(doc))
    with pytest.raises(PayloadError) as exc:
        import_path(engine, path)
    assert exc.value.where == f"incidents.json: {where}"
    assert reason in exc.value.reason
    assert records(engine, "incident") == {}


def test_cli_imports_a_directory_of_alerts_logs_and_incidents(
    cli: Any, engine: Engine, tmp_path: Path
) -> None:
    folder = export_dir(tmp_path)
    shutil.copy(PAYLOADS / "demisto_get_incidents.json", folder / "incidents.json")
    load(engine, [])
    code, out, err = cli("import", "--from", "opsgenie", str(folder), "--format", "json")
    assert code == 0, err
    counts = json.loads(out)["imported"][0]["counts"]
    assert counts["alert"]["inserted"] == 1 and counts["incident"]["inserted"] == 1
    assert records(engine, "alert")["og-" + ALERT_ID]["acknowledged_by"] == "demisto@demisto.local"
