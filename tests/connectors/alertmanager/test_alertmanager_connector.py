"""The alertmanager connector on real captured Alertmanager notifications (payloads/, see
NOTICE.md): the records it makes, and end to end through the app (bearer token, POST
/api/v1/hooks/alertmanager) on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsledger.connectors.base import PayloadError, get_connector
from tests.connectors.alertmanager.hooks import Hooks, hooks, payload  # noqa: F401

HERE = Path(__file__).parent
FIRING = payload(HERE, "alertmanager-bot/firing.json")
RESOLVED = payload(HERE, "alertmanager-bot/resolved.json")
# alertmanager-bot's captures predate fingerprints (Alertmanager < 0.19): the connector
# derives one from the sorted label set, so the id is stable
FIRE_ID = "am-10eee5634229cdef-1541367838"
FIRE = {
    "id": FIRE_ID,
    "name": "Fire",
    "source": "alertmanager",
    "severity": "critical",
    "fired_at": "2018-11-04T21:43:58.283995Z",
    "labels": {"alertname": "Fire", "severity": "critical"},
    "annotations": {"message": "Something is on fire"},
    "generator_url": "http://localhost:9090/graph?g0.expr=vector%28666%29&g0.tab=1",
    "fingerprint": "10eee5634229cdef",
}


def parse(body: bytes) -> list[dict[str, Any]]:
    connector = get_connector("alertmanager")
    assert connector is not None
    return connector.parse(body, {})


# --- the records of the golden payloads ------------------------------------------------------


def test_firing_notification_is_one_open_episode() -> None:
    assert parse(FIRING) == [{"kind": "alert", **FIRE}]


def test_resolved_notification_completes_the_same_episode() -> None:
    [rec] = parse(RESOLVED)
    assert rec == {"kind": "alert", **FIRE, "resolved_at": "2018-11-04T21:48:13.283995Z"}


def test_firing_alert_ignores_endsat_even_the_zero_time() -> None:
    # prometheus-msteams' capture: a firing alert with Go's zero time as endsAt
    [rec] = parse(payload(HERE, "prometheus-msteams/prom_post_request.json"))
    assert "resolved_at" not in rec
    assert rec["fired_at"] == "2018-03-07T11:33:21.873077Z"
    assert rec["severity"] == "warning"
    assert rec["labels"]["instance"] == "instance-with-hyphen_and_underscore"
    assert "runbook_url" not in rec  # the group's commonAnnotations.runbook is not the alert's


def test_alert_without_its_own_status_takes_the_notifications() -> None:
    # prometheus-msteams' captures carry no per-alert status
    body = payload(HERE, "prometheus-msteams/prom_post_request.json")
    assert "status" not in json.loads(body)["alerts"][0]
    [firing] = parse(body)
    assert "resolved_at" not in firing

    def resolve(doc: dict[str, Any]) -> None:
        doc["status"] = "resolved"
        doc["alerts"][0]["endsAt"] = "2018-03-07T06:40:00-05:00"

    [resolved] = parse(_with(body, resolve))
    assert resolved["id"] == firing["id"]
    assert resolved["resolved_at"] == "2018-03-07T11:40:00Z"


def test_twelve_alerts_give_twelve_episodes() -> None:
    recs = parse(payload(HERE, "prometheus-msteams/prom_post_request_12_alerts.json"))
    assert len(recs) == 12
    assert [r["name"] for r in recs] == ["high_memory_load"] + [
        f"high_memory_load{n}" for n in range(2, 13)
    ]
    assert len({r["id"] for r in recs}) == 12
    assert {r["fired_at"] for r in recs} == {"2018-03-07T11:33:21.873077Z"}
    assert all("severity" not in r for r in recs)  # these alerts carry no severity label


# --- end to end through the app --------------------------------------------------------------


def test_firing_then_resolved_is_one_record_with_its_resolution(hooks: Hooks) -> None:  # noqa: F811
    before = hooks.inbound("alertmanager")
    r = hooks.post("alertmanager", FIRING)
    assert r.status_code == 202, r.text
    assert r.json() == {
        "connector": "alertmanager",
        "records": 1,
        "inserted": 1,
        "replaced": 0,
        "unchanged": 0,
    }
    assert hooks.alerts() == {FIRE_ID: FIRE}
    r = hooks.post("alertmanager", RESOLVED)
    assert r.status_code == 202, r.text
    assert r.json()["replaced"] == 1
    assert hooks.alerts() == {FIRE_ID: {**FIRE, "resolved_at": "2018-11-04T21:48:13.283995Z"}}
    assert hooks.inbound("alertmanager") == before + 2  # both payloads kept verbatim


def test_repeated_firing_notifications_change_nothing(hooks: Hooks) -> None:  # noqa: F811
    assert hooks.post("alertmanager", FIRING).json()["inserted"] == 1
    for _ in range(3):  # repeat_interval notifications and retries
        r = hooks.post("alertmanager", FIRING)
        assert r.status_code == 202
        assert r.json()["unchanged"] == 1
    assert hooks.alerts() == {FIRE_ID: FIRE}


def test_firing_retry_after_the_resolution_keeps_resolved_at(hooks: Hooks) -> None:  # noqa: F811
    hooks.post("alertmanager", FIRING)
    hooks.post("alertmanager", RESOLVED)
    r = hooks.post("alertmanager", FIRING)  # a late retry of the firing notification
    assert r.status_code == 202
    assert r.json()["unchanged"] == 1
    assert hooks.alerts()[FIRE_ID]["resolved_at"] == "2018-11-04T21:48:13.283995Z"


def test_resolved_delivered_before_firing(hooks: Hooks) -> None:  # noqa: F811
    assert hooks.post("alertmanager", RESOLVED).status_code == 202
    assert hooks.post("alertmanager", FIRING).status_code == 202
    assert hooks.alerts() == {FIRE_ID: {**FIRE, "resolved_at": "2018-11-04T21:48:13.283995Z"}}


def test_multi_alert_payload_end_to_end(hooks: Hooks) -> None:  # noqa: F811
    body = payload(HERE, "prometheus-msteams/prom_post_request_12_alerts.json")
    assert hooks.post("alertmanager", body).json()["inserted"] == 12
    assert hooks.post("alertmanager", body).json()["unchanged"] == 12
    two = payload(HERE, "prometheus-msteams/prom_post_request_2_alerts.json")
    assert hooks.post("alertmanager", two).json()["unchanged"] == 2  # same episodes
    assert len(hooks.alerts()) == 12


# --- bad payloads: a clear error, nothing stored, an entry in the rejected-payload log --------


def _with(body: bytes, change: Any) -> bytes:
    doc = json.loads(body)
    change(doc)
    return json.dumps(doc).encode()


def _set_alert(key: str, value: Any) -> Any:
    return lambda doc: doc["alerts"][0].__setitem__(key, value)


BAD = [
    (b'{"version": "4", "alerts": [', 400, "malformed JSON"),
    (b"\xc3\x28", 400, "not UTF-8"),
    (b"[" * 100_000, 400, "nested too deeply"),
    (b"[]", 422, "must be a JSON object"),
    (_with(FIRING, lambda d: d.__setitem__("version", "3")), 422, "version 4"),
    (_with(FIRING, lambda d: d.__setitem__("alerts", {})), 422, "alerts: must be a list"),
    (_with(FIRING, _set_alert("startsAt", "2018-11-04T22:43:58")), 422, "without UTC offset"),
    (_with(FIRING, _set_alert("startsAt", None)), 422, "alerts[0].startsAt"),
    (_with(FIRING, _set_alert("startsAt", 1541367838)), 422, "timestamp string"),
    (_with(FIRING, _set_alert("status", "pending")), 422, "firing or resolved"),
    (_with(FIRING, _set_alert("labels", {"alertname": 1})), 422, "object of strings"),
    (_with(FIRING, _set_alert("labels", {"severity": "critical"})), 422, "no alertname"),
    (_with(FIRING, _set_alert("generatorURL", 5)), 422, "generatorURL"),
    (_with(RESOLVED, _set_alert("endsAt", "0001-01-01T00:00:00Z")), 422, "end time"),
    (_with(RESOLVED, _set_alert("endsAt", "2018-11-04T20:00:00Z")), 422, "before fired_at"),
]


@pytest.mark.parametrize(("body", "status", "reason"), BAD)
def test_bad_payload_is_refused_and_logged(
    hooks: Hooks,  # noqa: F811
    body: bytes,
    status: int,
    reason: str,
) -> None:
    rejected = len(hooks.rejected("alertmanager"))
    inbound = hooks.inbound("alertmanager")
    r = hooks.post("alertmanager", body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert reason in r.json()["detail"]
    assert r.json()["detail"].startswith("alertmanager payload")
    assert hooks.alerts() == {}
    assert hooks.inbound("alertmanager") == inbound
    log = hooks.rejected("alertmanager")
    assert len(log) == rejected + 1
    assert log[-1]["status"] == status
    assert reason in log[-1]["reason"]


def test_one_bad_alert_rejects_the_whole_notification(hooks: Hooks) -> None:  # noqa: F811
    body = payload(HERE, "prometheus-msteams/prom_post_request_12_alerts.json")
    bad = _with(body, lambda d: d["alerts"][7].__setitem__("startsAt", "yesterday"))
    r = hooks.post("alertmanager", bad)
    assert r.status_code == 422
    assert "alerts[7].startsAt" in r.json()["detail"]
    assert hooks.alerts() == {}


def test_no_token_is_401_and_nothing_is_stored(hooks: Hooks) -> None:  # noqa: F811
    rejected = len(hooks.rejected("alertmanager"))
    r = hooks.client.post("/api/v1/hooks/alertmanager", content=FIRING)
    assert r.status_code == 401
    r = hooks.post("alertmanager", FIRING, Authorization="Bearer opl_not-a-token")
    assert r.status_code == 401
    assert hooks.alerts() == {}
    assert len(hooks.rejected("alertmanager")) == rejected + 2


def test_parse_error_names_where_and_why() -> None:
    bad = _with(FIRING, _set_alert("startsAt", "2018-11-04 22:43"))
    with pytest.raises(PayloadError) as caught:
        parse(bad)
    assert caught.value.where == "alerts[0].startsAt"
    assert "2018-11-04 22:43" in caught.value.reason
