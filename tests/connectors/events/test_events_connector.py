"""The PagerDuty Events API v2 compatible endpoint, POST /v2/enqueue, end to end through the
app on SQLite and PostgreSQL: authenticated by the routing_key alone, on real requests sent
by Alertmanager 0.25 (payloads/, see NOTICE.md) and on events in PagerDuty's documented
format; episodes, retries, late and out-of-order delivery, and refusals."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from opsledger.access import create_token
from opsledger.connectors.base import PayloadError, get_connector, short_hash
from opsledger.connectors.events import dedup_key_for
from tests.connectors.alertmanager.hooks import Hooks, hooks, payload  # noqa: F401

HERE = Path(__file__).parent
AM_KEY = "6ffe4f0ee8a412953635699b89f8af2a9afedba933ee5f519054cdd74ba6c35b"
EP1 = f"ev-{short_hash(AM_KEY)}-1795929730"  # 2026-11-29T05:22:10Z
EP2 = f"ev-{short_hash(AM_KEY)}-1795933320"  # 2026-11-29T06:22:00Z
ACCEPTED = {"status": "success", "message": "Event processed"}


def captured(name: str, token: str) -> bytes:
    """A request Alertmanager sent, with a real ingest token as its routing_key."""
    doc = json.loads(payload(HERE, name))
    doc["routing_key"] = token
    return json.dumps(doc).encode()


def event(action: str, key: str | None, at: str | None, token: str, **payload: Any) -> bytes:
    """An event in PagerDuty's documented format."""
    doc: dict[str, Any] = {"routing_key": token, "event_action": action}
    if key is not None:
        doc["dedup_key"] = key
    if action == "trigger":
        payload = {
            "summary": "DISK at 99% on db1.example.com",
            "source": "db1.example.com",
            "severity": "critical",
            **payload,
        }
    if at is not None:
        payload["timestamp"] = at
    if payload:
        doc["payload"] = payload
    return json.dumps(doc).encode()


def ep_id(key: str, epoch: int) -> str:
    return f"ev-{short_hash(key)}-{epoch}"


# --- Alertmanager's pagerduty_config, as captured ---------------------------------------------


def test_alertmanager_episodes_through_v2_enqueue(hooks: Hooks) -> None:  # noqa: F811
    before = hooks.inbound("events")
    r = hooks.enqueue(captured("am-0.25-ep1-trigger.json", hooks.token))
    assert r.status_code == 202, r.text
    assert r.json() == {**ACCEPTED, "dedup_key": AM_KEY}
    first = {
        "id": EP1,
        "name": "CPUHigh",  # payload.class
        "source": "events",
        "severity": "critical",  # Alertmanager's default PagerDuty severity `error`
        "fired_at": "2026-11-29T05:22:10.500000Z",
        "fingerprint": AM_KEY,
        "generator_url": "http://vm:19093/#/alerts?receiver=pd",
        "labels": {
            "source": "Alertmanager",
            "severity": "error",
            "component": "web",
            "class": "CPUHigh",
        },
        "annotations": {
            "summary": "[FIRING:1] CPUHigh (web warning)",
            "client": "Alertmanager",
            "custom_details": {
                "firing": "Labels:\n - alertname = CPUHigh\n - service = web\n"
                " - severity = warning\nAnnotations:\n - summary = cpu\nSource: \n",
                "num_firing": "1",
                "num_resolved": "0",
                "opsledger_timestamp": "2026-11-29T06:22:10.5+01:00",
                "resolved": "",
            },
        },
    }
    assert hooks.alerts() == {EP1: first}
    r = hooks.enqueue(captured("am-0.25-ep1-resolve.json", hooks.token))
    assert r.status_code == 202, r.text
    assert r.json() == {**ACCEPTED, "dedup_key": AM_KEY}
    assert hooks.alerts() == {EP1: {**first, "resolved_at": "2026-11-29T06:21:45Z"}}
    # the same dedup_key fires again: PagerDuty opens a new alert, so does opsledger
    assert hooks.enqueue(captured("am-0.25-ep2-trigger.json", hooks.token)).status_code == 202
    assert hooks.enqueue(captured("am-0.25-ep2-resolve.json", hooks.token)).status_code == 202
    stored = hooks.alerts()
    assert sorted(stored) == sorted([EP1, EP2])
    assert stored[EP1]["resolved_at"] == "2026-11-29T06:21:45Z"
    assert (stored[EP2]["fired_at"], stored[EP2]["resolved_at"]) == (
        "2026-11-29T06:22:00Z",
        "2026-11-29T06:22:30Z",
    )
    assert hooks.inbound("events") == before + 4
    # Alertmanager's retries of all four: nothing changes, nothing doubles
    for name in ("ep1-trigger", "ep1-resolve", "ep2-trigger", "ep2-resolve"):
        assert hooks.enqueue(captured(f"am-0.25-{name}.json", hooks.token)).status_code == 202
    assert hooks.alerts() == stored


def test_alertmanager_delivered_out_of_order(hooks: Hooks) -> None:  # noqa: F811
    # episode 2 arrives before episode 1 has been resolved
    for name in ("ep1-trigger", "ep2-trigger", "ep1-resolve", "ep2-resolve"):
        r = hooks.enqueue(captured(f"am-0.25-{name}.json", hooks.token))
        assert r.status_code == 202, (name, r.text)
    stored = hooks.alerts()
    # ep2's trigger came while ep1 was open: PagerDuty and opsledger take it as a repeat;
    # ep1's resolve then closes the episode; ep2's resolve comes after that and is dropped
    assert sorted(stored) == [EP1]
    assert stored[EP1]["resolved_at"] == "2026-11-29T06:21:45Z"


def test_alertmanager_without_a_timestamp_is_refused(hooks: Hooks) -> None:  # noqa: F811
    rejected = len(hooks.rejected("events"))
    for name in ("am-0.25-trigger-no-timestamp.json", "am-0.25-resolve-no-timestamp.json"):
        r = hooks.enqueue(captured(name, hooks.token))
        assert r.status_code == 422
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["detail"].startswith(
            "events payload, payload.timestamp: is required: opsledger takes event times "
            "from the event, never from its own clock"
        )
        assert "opsledger_timestamp" in r.json()["detail"]
    assert hooks.alerts() == {}
    assert len(hooks.rejected("events")) == rejected + 2


# --- PagerDuty's documented format -----------------------------------------------------------


def test_documented_trigger_without_dedup_key(hooks: Hooks) -> None:  # noqa: F811
    links = [
        {"href": "https://monitoring.example.com/db1", "text": "Dashboard"},
        {"href": "https://runbooks.example.com/disk", "text": "Runbook: disk full"},
    ]
    images = [{"src": "https://monitoring.example.com/db1.png", "alt": "disk"}]
    body = json.loads(
        event(
            "trigger",
            None,
            "2015-07-17T08:42:58.315+0000",  # PagerDuty's documented form: offset +0000
            hooks.token,
            component="postgres",
            group="prod-datapipe",
            **{"class": "disk full"},
            custom_details={"free space": "1%", "load avg": 0.75, "service": "db"},
        )
    )
    body.update(
        links=links,
        images=images,
        client="Sample Monitoring Service",
        client_url="https://monitoring.example.com",
    )
    raw = json.dumps(body).encode()
    r = hooks.enqueue(raw)
    assert r.status_code == 202, r.text
    key = r.json()["dedup_key"]
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert key == dedup_key_for(body["payload"])
    rid = ep_id(key, 1437122578)
    assert hooks.alerts() == {
        rid: {
            "id": rid,
            "name": "disk full",
            "source": "events",
            "service": "db",
            "severity": "critical",
            "fired_at": "2015-07-17T08:42:58.315000Z",
            "fingerprint": key,
            "runbook_url": "https://runbooks.example.com/disk",
            "generator_url": "https://monitoring.example.com",
            "labels": {
                "source": "db1.example.com",
                "severity": "critical",
                "component": "postgres",
                "group": "prod-datapipe",
                "class": "disk full",
            },
            "annotations": {
                "summary": "DISK at 99% on db1.example.com",
                "custom_details": {"free space": "1%", "load avg": 0.75, "service": "db"},
                "links": links,
                "images": images,
                "client": "Sample Monitoring Service",
            },
        }
    }
    # a retry of the same trigger gets the same dedup_key and changes nothing
    r = hooks.enqueue(raw)
    assert r.json() == {**ACCEPTED, "dedup_key": key}
    assert len(hooks.alerts()) == 1
    # a distinct event (another time) without dedup_key is a distinct alert, as in PagerDuty
    r = hooks.enqueue(event("trigger", None, "2015-07-17T09:00:00Z", hooks.token))
    assert r.json()["dedup_key"] != key
    assert len(hooks.alerts()) == 2


def test_trigger_acknowledge_resolve(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    assert hooks.enqueue(event("trigger", "disk-db1", "2026-10-04T13:00:00Z", t)).json() == {
        **ACCEPTED,
        "dedup_key": "disk-db1",
    }
    rid = ep_id("disk-db1", 1791118800)
    r = hooks.enqueue(event("acknowledge", "disk-db1", "2026-10-04T13:04:00+02:00", t))
    assert r.status_code == 422  # 11:04Z is before the alert fired
    assert "at or before 2026-10-04T11:04:00Z" in r.json()["detail"]
    r = hooks.enqueue(event("acknowledge", "disk-db1", "2026-10-04T13:04:00Z", t))
    assert r.status_code == 202
    assert r.json() == {**ACCEPTED, "dedup_key": "disk-db1"}
    r = hooks.enqueue(event("resolve", "disk-db1", "2026-10-04T13:30:00Z", t))
    assert r.status_code == 202
    stored = hooks.alerts()[rid]
    assert (stored["fired_at"], stored["acknowledged_at"], stored["resolved_at"]) == (
        "2026-10-04T13:00:00Z",
        "2026-10-04T13:04:00Z",
        "2026-10-04T13:30:00Z",
    )
    assert stored["name"] == "DISK at 99% on db1.example.com"  # no class: the summary


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("critical", "critical"), ("error", "critical"), ("warning", "warning"), ("info", "info")],
)
def test_severity_mapping(hooks: Hooks, sent: str, stored: str) -> None:  # noqa: F811
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", hooks.token, severity=sent))
    [rec] = hooks.alerts().values()
    assert (rec["severity"], rec["labels"]["severity"]) == (stored, sent)


def test_bearer_token_and_hooks_route(hooks: Hooks) -> None:  # noqa: F811
    # with a bearer token, the routing_key may be anything (a PagerDuty integration key)
    body = event("trigger", "k1", "2026-10-04T13:00:00Z", "R0UTINGKEY0000000000000000000000")
    assert hooks.enqueue(body, bearer=True).status_code == 202
    r = hooks.post("events", event("trigger", "k2", "2026-10-04T13:00:00Z", "x"))
    assert r.status_code == 202
    assert r.json() == {**ACCEPTED, "dedup_key": "k2"}
    assert len(hooks.alerts()) == 2


# --- episodes: retries, late and out-of-order events -----------------------------------------


def test_repeated_triggers_are_one_alert(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", t))
    for at in ("2026-10-04T13:05:00Z", "2026-10-04T13:10:00Z", "2026-10-04T13:00:00Z"):
        r = hooks.enqueue(event("trigger", "k", at, t, summary="changed text", severity="info"))
        assert r.status_code == 202
    [(rid, rec)] = hooks.alerts().items()
    assert rid == ep_id("k", 1791118800)
    # later triggers of an open alert are repeats (PagerDuty appends them to the alert's log)
    assert (rec["fired_at"], rec["severity"]) == ("2026-10-04T13:00:00Z", "critical")


def test_late_first_trigger_moves_the_start_back(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:10:00Z", t))
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", t))  # delayed in transit
    [(rid, rec)] = hooks.alerts().items()
    assert rid == ep_id("k", 1791119400)  # the id of the first delivered; the start is the first
    assert rec["fired_at"] == "2026-10-04T13:00:00Z"


def test_trigger_retry_after_resolve_keeps_the_resolution(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    trigger = event("trigger", "k", "2026-10-04T13:00:00Z", t)
    hooks.enqueue(trigger)
    hooks.enqueue(event("resolve", "k", "2026-10-04T13:20:00Z", t))
    assert hooks.enqueue(trigger).status_code == 202
    [rec] = hooks.alerts().values()
    assert rec["resolved_at"] == "2026-10-04T13:20:00Z"


def test_trigger_after_resolve_opens_a_new_alert(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", t))
    hooks.enqueue(event("resolve", "k", "2026-10-04T13:20:00Z", t))
    hooks.enqueue(event("trigger", "k", "2026-10-04T14:00:00Z", t))
    hooks.enqueue(event("acknowledge", "k", "2026-10-04T14:01:00Z", t))
    stored = hooks.alerts()
    first, second = ep_id("k", 1791118800), ep_id("k", 1791122400)
    assert sorted(stored) == sorted([first, second])
    assert "acknowledged_at" not in stored[first]
    assert stored[second]["acknowledged_at"] == "2026-10-04T14:01:00Z"
    assert "resolved_at" not in stored[second]


def test_two_episodes_within_one_second(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00.1Z", t))
    hooks.enqueue(event("resolve", "k", "2026-10-04T13:00:00.2Z", t))
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00.3Z", t))
    assert sorted(hooks.alerts()) == [ep_id("k", 1791118800), ep_id("k", 1791118800) + "-2"]


def test_acknowledge_and_resolve_keep_the_earliest(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", t))
    hooks.enqueue(event("acknowledge", "k", "2026-10-04T13:06:00Z", t))
    hooks.enqueue(event("acknowledge", "k", "2026-10-04T13:03:00Z", t))  # the earlier, late
    hooks.enqueue(event("acknowledge", "k", "2026-10-04T13:09:00Z", t))
    hooks.enqueue(event("resolve", "k", "2026-10-04T13:30:00Z", t))
    hooks.enqueue(event("resolve", "k", "2026-10-04T13:25:00Z", t))  # the earlier, late
    r = hooks.enqueue(event("acknowledge", "k", "2026-10-04T13:40:00Z", t))  # after: dropped
    assert r.status_code == 202
    [rec] = hooks.alerts().values()
    assert (rec["acknowledged_at"], rec["resolved_at"]) == (
        "2026-10-04T13:03:00Z",
        "2026-10-04T13:25:00Z",
    )


def test_resolve_before_its_trigger_is_refused_then_accepted(hooks: Hooks) -> None:  # noqa: F811
    t = hooks.token
    rejected = len(hooks.rejected("events"))
    resolve = event("resolve", "k", "2026-10-04T13:20:00Z", t)
    r = hooks.enqueue(resolve)
    assert r.status_code == 422
    assert r.json()["detail"] == (
        'events payload, dedup_key: no alert with dedup_key "k" was triggered: '
        "nothing to resolve (send the trigger first)"
    )
    assert hooks.alerts() == {}
    assert len(hooks.rejected("events")) == rejected + 1
    hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", t))
    assert hooks.enqueue(resolve).status_code == 202  # the sender's (or an admin's) retry
    [rec] = hooks.alerts().values()
    assert rec["resolved_at"] == "2026-10-04T13:20:00Z"


# --- authentication ----------------------------------------------------------------------------


def test_routing_key_must_be_an_ingest_token(hooks: Hooks) -> None:  # noqa: F811
    rejected = len(hooks.rejected("events"))
    body = event("trigger", "k", "2026-10-04T13:00:00Z", "R0UTINGKEY0000000000000000000000")
    r = hooks.enqueue(body)
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["detail"] == "invalid or revoked token"
    no_key = json.loads(body)
    del no_key["routing_key"]
    r = hooks.enqueue(json.dumps(no_key).encode())
    assert r.status_code == 401
    assert "missing bearer token" in r.json()["detail"]
    with hooks.engine.begin() as conn:
        reader = create_token(conn, f"reader-{uuid.uuid4().hex[:8]}", "read")
    r = hooks.enqueue(event("trigger", "k", "2026-10-04T13:00:00Z", reader))
    assert r.status_code == 403
    assert hooks.alerts() == {}
    assert len(hooks.rejected("events")) == rejected + 3


# --- bad events: a clear error, nothing stored, an entry in the rejected-payload log ----------


def _trigger(**change: Any) -> dict[str, Any]:
    doc = json.loads(event("trigger", "k", "2026-10-04T13:00:00Z", "TOKEN"))
    for key, value in change.items():
        if key.startswith("payload_"):
            doc["payload"][key[len("payload_") :]] = value
        else:
            doc[key] = value
    return doc


TS = "opsledger_timestamp"
BAD: list[tuple[Any, str]] = [
    ([_trigger()], "the event must be a JSON object"),
    (_trigger(event_action="escalate"), 'must be trigger, acknowledge or resolve, got "escalate"'),
    (_trigger(event_action=None), "event_action"),
    (_trigger(payload="disk full"), "payload: must be an object"),
    (
        _trigger(payload_severity="high"),
        "payload.severity: must be one of critical, error, warning, info",
    ),
    (_trigger(payload_summary=None), "payload.summary: is required"),
    (_trigger(payload_summary=""), "payload.summary: must not be empty"),
    (_trigger(payload_source=42), "payload.source: must be a string, got 42"),
    (_trigger(payload_class=["disk"]), "payload.class: must be a string"),
    (_trigger(payload_timestamp="2026-10-04T13:00:00"), "payload.timestamp: timestamp without UTC"),
    (_trigger(payload_timestamp=1791118800), "payload.timestamp: expected a timestamp string"),
    (_trigger(payload_timestamp="today"), "payload.timestamp: not an RFC 3339 timestamp"),
    (_trigger(payload_timestamp=None), "payload.timestamp: is required"),
    (
        _trigger(payload_timestamp=None, payload_custom_details={TS: "13:00"}),
        f"payload.custom_details.{TS}: not an RFC 3339",
    ),
    (_trigger(dedup_key=7), "dedup_key: must be a string, got 7"),
    (_trigger(dedup_key=" "), "dedup_key: must not be empty"),
    (_trigger(dedup_key="k" * 256), "dedup_key: is over 255 characters"),
    (_trigger(links={"href": "x"}), "links: must be a list of objects"),
    (_trigger(links=[{"text": "no href"}]), "links[0].href: is required"),
    (_trigger(images=["x.png"]), "images[0]: must be an object"),
    (_trigger(client_url=1), "client_url: must be a string"),
    (
        {"event_action": "resolve", "payload": {"timestamp": "2026"}},
        "dedup_key: is required to resolve",
    ),
    ({"event_action": "acknowledge", "dedup_key": "k"}, "payload.timestamp: is required"),
]


@pytest.mark.parametrize(("doc", "reason"), BAD)
def test_bad_event_is_refused_and_logged(hooks: Hooks, doc: Any, reason: str) -> None:  # noqa: F811
    if isinstance(doc, dict):
        doc = {**doc, "routing_key": "not used: the bearer token authenticates"}
    data = json.dumps(doc).encode()
    rejected = len(hooks.rejected("events"))
    inbound = hooks.inbound("events")
    r = hooks.enqueue(data, bearer=True)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert reason in r.json()["detail"]
    assert r.json()["detail"].startswith("events payload")
    assert hooks.alerts() == {}
    assert hooks.inbound("events") == inbound
    log = hooks.rejected("events")
    assert len(log) == rejected + 1
    assert (log[-1]["status"], log[-1]["body"]) == (422, data.decode())


def test_custom_details_timestamp_must_have_an_offset() -> None:
    connector = get_connector("events")
    assert connector is not None
    doc = _trigger(
        payload_timestamp=None, payload_custom_details={"opsledger_timestamp": "2026-10-04 13:00"}
    )
    with pytest.raises(PayloadError) as caught:
        connector.parse(json.dumps(doc).encode(), {})
    assert caught.value.where == "payload.custom_details.opsledger_timestamp"
    assert "without UTC offset" in caught.value.reason


def test_malformed_json_is_400(hooks: Hooks) -> None:  # noqa: F811
    r = hooks.enqueue(b'{"event_action": "trigger",', bearer=True)
    assert r.status_code == 400
    assert "malformed JSON" in r.json()["detail"]
    # without a bearer token a body that is not JSON has no routing_key: 401
    assert hooks.enqueue(b"{").status_code == 401
    assert hooks.enqueue(b"[" * 100_000).status_code == 401
    assert hooks.enqueue(b"[" * 100_000, bearer=True).status_code == 400
    assert hooks.alerts() == {}
