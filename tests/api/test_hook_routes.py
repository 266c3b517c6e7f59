"""api.app.App answers the webhook routes in front of FastAPI (api.hooks.answer_hook): each
answer (status, headers, body) is the one the FastAPI routes give, which the app still serves
with `hooks_first` off; every refusal is logged either way."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from opsledger.access import create_token
from opsledger.api import hooks
from opsledger.api.app import App, create_app
from opsledger.records.tables import RECORD_TABLES, inbound_payloads, rejected_payloads
from opsledger.settings import Settings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


def _app(db_url: str, middleware: bool) -> FastAPI:
    app = create_app(Settings(database_url=db_url))
    assert isinstance(app, App)
    app.hooks_first = middleware
    return app


@pytest.fixture
def apps(db_url: str) -> Iterator[tuple[TestClient, TestClient, str]]:
    fast, plain = _app(db_url, True), _app(db_url, False)
    with fast.state.engine.begin() as conn:
        token = create_token(conn, f"hook-routes-{uuid.uuid4().hex[:10]}", "ingest")
    with TestClient(fast) as a, TestClient(plain) as b:
        yield a, b, token
    fast.state.engine.dispose()
    plain.state.engine.dispose()


def notification(fp: str, **alert: Any) -> bytes:
    one = {
        "status": "firing",
        "labels": {"alertname": "DiskFull", "service": "db", "severity": "critical"},
        "startsAt": "2026-10-04T13:22:05.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": fp,
        **alert,
    }
    return json.dumps({"version": "4", "status": "firing", "alerts": [one]}).encode()


def _answer(r: Any) -> tuple[int, dict[str, str], bytes]:
    keep = ("content-type", "content-length", "www-authenticate")
    return r.status_code, {k: v for k, v in r.headers.items() if k in keep}, r.content


def _count(client: TestClient, table: Any) -> int:
    with client.app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def test_hook_name() -> None:
    def scope(path: str, method: str = "POST", **extra: Any) -> dict[str, Any]:
        return {"type": "http", "method": method, "path": path, **extra}

    assert hooks.hook_name(scope("/api/v1/hooks/alertmanager")) == "alertmanager"
    assert hooks.hook_name(scope("/api/v1/hooks/nope")) == "nope"  # 404 from the handler
    assert hooks.hook_name(scope("/v2/enqueue")) == "events"
    assert hooks.hook_name(scope("/api/v1/hooks/alertmanager", "GET")) is None  # 405
    assert hooks.hook_name(scope("/api/v1/hooks/alertmanager/")) is None  # redirect
    assert hooks.hook_name(scope("/api/v1/hooks/")) is None
    assert hooks.hook_name(scope("/api/v1/hooks/a/b")) is None
    assert hooks.hook_name(scope("/v2/enqueue/")) is None
    assert hooks.hook_name(scope("/api/v1/hooks/alertmanager", root_path="/x")) is None
    assert hooks.hook_name({"type": "websocket", "path": "/v2/enqueue"}) is None


def test_answers_are_those_of_the_routes(apps: tuple[TestClient, TestClient, str]) -> None:
    fast, plain, token = apps
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    run = uuid.uuid4().hex[:8]
    calls: list[tuple[str, bytes, dict[str, str]]] = [
        ("/api/v1/hooks/alertmanager", notification(f"{run}-1"), auth),  # 202 inserted
        ("/api/v1/hooks/alertmanager", notification(f"{run}-1"), auth),  # 202 unchanged
        ("/api/v1/hooks/alertmanager", b'{"version": "4", "alerts": [', auth),  # 400
        ("/api/v1/hooks/alertmanager", notification(run, startsAt="2026-10-04T13:22"), auth),
        ("/api/v1/hooks/alertmanager", notification(f"{run}-2"), {}),  # 401 no token
        ("/api/v1/hooks/alertmanager", notification(f"{run}-2"),
         {"Authorization": "Bearer opl_not-a-token"}),  # 401
        ("/api/v1/hooks/no-such", b"{}", auth),  # 404
        ("/api/v1/hooks/alertmanager", b" " * (hooks.MAX_BODY + 1), auth),  # 413
        ("/v2/enqueue", b"{}", auth),  # the events connector: 400 or 422, its own words
    ]
    rejected = _count(fast, rejected_payloads)
    for path, body, headers in calls:
        # the same payload to both apps, which share the database: the plain app first
        want = _answer(plain.post(path, content=body, headers=headers))
        if want[0] == 202:  # the second one finds it stored: send a new one to each
            body = body.replace(run.encode(), f"{run}x".encode())
            want = _answer(plain.post(path, content=body, headers=headers))
            body = body.replace(f"{run}x".encode(), f"{run}y".encode())
        got = _answer(fast.post(path, content=body, headers=headers))
        assert got == want, (path, body[:80])
    refused = sum(1 for _, body, _ in calls) - 2
    assert _count(fast, rejected_payloads) == rejected + 2 * refused
    assert _count(fast, RECORD_TABLES["alert"]) >= 3


def test_summary_is_compact_json(apps: tuple[TestClient, TestClient, str]) -> None:
    fast, _, token = apps
    before = _count(fast, inbound_payloads)
    r = fast.post(
        "/api/v1/hooks/alertmanager",
        content=notification(uuid.uuid4().hex),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 202
    assert r.headers["content-type"] == "application/json"
    assert r.content == (
        b'{"connector":"alertmanager","records":1,"inserted":1,"replaced":0,"unchanged":0}'
    )
    assert _count(fast, inbound_payloads) == before + 1


def test_other_methods_and_paths_go_to_the_app(
    apps: tuple[TestClient, TestClient, str],
) -> None:
    fast, plain, _ = apps
    for method, path in (
        ("GET", "/api/v1/hooks/alertmanager"),
        ("PUT", "/v2/enqueue"),
        ("GET", "/healthz"),
        ("POST", "/api/v1/hooks/a/b"),
    ):
        assert _answer(fast.request(method, path)) == _answer(plain.request(method, path))
