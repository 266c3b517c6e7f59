"""Access control and bad input, against a real `opsledger serve` subprocess.

Tokens are made, listed and revoked with the CLI (on the database directly, while the
server runs). Every refusal is RFC 9457 problem+json, stores nothing, and lands in the
rejected-payload log that an admin lists with GET /api/v1/rejected.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from opsledger.api.hooks import MAX_BODY
from opsledger.core.db import make_engine
from opsledger.records.tables import RECORD_TABLES, api_tokens, inbound_payloads
from tests.e2e.procs import Processes, free_port, start_opsledger

Cli = Callable[..., tuple[int, str, str]]

HOOK = "/api/v1/hooks/alertmanager"
PAYLOAD = {
    "version": "4",
    "status": "firing",
    "receiver": "opsledger",
    "groupKey": '{}:{alertname="DiskFull"}',
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "DiskFull", "severity": "critical", "service": "db"},
            "annotations": {"runbook_url": "https://runbooks.example.org/disk"},
            "startsAt": "2026-10-04T13:22:05.123Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus.example.org/graph?g0.expr=disk",
            "fingerprint": "c0ffee0000000001",
        }
    ],
}
BODY = json.dumps(PAYLOAD).encode()


def _count(db_url: str, query: Any) -> int:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return int(conn.execute(query).scalar_one())
    finally:
        engine.dispose()


def _alerts(db_url: str) -> int:
    return _count(db_url, select(func.count()).select_from(RECORD_TABLES["alert"]))


def _inbound_after(db_url: str, floor: int) -> int:
    return _count(db_url, select(func.count()).where(inbound_payloads.c.id > floor))


def _max_inbound(db_url: str) -> int:
    return _count(db_url, select(func.coalesce(func.max(inbound_payloads.c.id), 0)))


def _token(cli: Cli, scope: str) -> tuple[str, str]:
    """A new token of `scope` made with the CLI: (name, token)."""
    name = f"{scope}-{uuid.uuid4().hex[:8]}"
    code, out, err = cli("tokens", "create", "--name", name, "--scope", scope)
    assert code == 0, err
    return name, out.strip()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _problem(r: httpx.Response, status: int, detail_has: str) -> dict[str, Any]:
    """`r` is an RFC 9457 problem of `status` whose detail says `detail_has`."""
    assert r.status_code == status, (r.status_code, r.text)
    assert r.headers["content-type"] == "application/problem+json", r.headers
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert body["type"] == "about:blank"
    assert body["title"]
    assert body["instance"] == r.request.url.path
    assert detail_has in body["detail"], body
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    return body


@pytest.fixture
def server(db_url: str, tmp_path: Path) -> Iterator[httpx.Client]:
    """A running `opsledger --db <db_url> serve` on a free loopback port."""
    processes = Processes(tmp_path)
    try:
        port = free_port()
        start_opsledger(processes, db_url, port)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30.0) as client:
            yield client
    finally:
        processes.stop_all()


def test_tokens_create_list_revoke(cli: Cli, db_url: str) -> None:
    name, token = _token(cli, "ingest")
    assert token.startswith("opl_") and len(token) > 40
    code, out, _ = cli("tokens", "list", "--format", "json")
    assert code == 0
    listed = {t["name"]: t for t in json.loads(out)}
    assert listed[name]["scope"] == "ingest"
    assert listed[name]["prefix"] == token[:10] + "…"
    assert listed[name]["revoked"] == ""
    assert token not in out
    # only a hash is kept
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one()
    engine.dispose()
    assert token not in [str(v) for v in row._mapping.values()]
    assert len(row.token_hash) == 64

    code, _, err = cli("tokens", "create", "--name", name, "--scope", "read")
    assert code == 2 and "exists already" in err
    code, _, err = cli("tokens", "create", "--name", "x-" + name, "--scope", "root")
    assert code == 2 and "use one of ingest, read, admin" in err

    code, _, err = cli("tokens", "revoke", name)
    assert code == 0 and "revoked" in err
    code, out, _ = cli("tokens", "list", "--format", "json")
    assert {t["name"]: t for t in json.loads(out)}[name]["revoked"] != ""
    code, _, err = cli("tokens", "revoke", name)
    assert code == 2 and f"no active token named '{name}'" in err
    code, out, _ = cli("tokens", "list")
    assert code == 0 and name in out


def test_webhook_refusals_store_nothing_and_are_logged(
    cli: Cli, db_url: str, server: httpx.Client
) -> None:
    _, ingest = _token(cli, "ingest")
    _, read = _token(cli, "read")
    _, admin = _token(cli, "admin")
    revoked_name, revoked = _token(cli, "ingest")
    assert server.post(HOOK, content=BODY, headers=_bearer(revoked)).status_code == 202
    assert cli("tokens", "revoke", revoked_name)[0] == 0  # the running server sees it at once
    floor = _max_inbound(db_url)
    before = _alerts(db_url)
    last = server.get("/api/v1/rejected", headers=_bearer(admin)).json()["items"]
    rejected_floor = last[0]["id"] if last else 0

    refusals: list[tuple[str, int, str]] = []  # (connector, status, reason fragment)

    def refused(r: httpx.Response, connector: str, status: int, detail_has: str) -> dict[str, Any]:
        refusals.append((connector, status, detail_has))
        return _problem(r, status, detail_has)

    refused(server.post(HOOK, content=BODY), "alertmanager", 401, "missing bearer token")
    refused(
        server.post(HOOK, content=BODY, headers={"Authorization": "Basic dXNlcjpwYXNz"}),
        "alertmanager",
        401,
        "missing bearer token",
    )
    refused(
        server.post(HOOK, content=BODY, headers=_bearer("opl_not-a-token")),
        "alertmanager",
        401,
        "invalid or revoked token",
    )
    refused(
        server.post(HOOK, content=BODY, headers=_bearer(revoked)),
        "alertmanager",
        401,
        "invalid or revoked token",
    )
    refused(
        server.post(HOOK, content=BODY, headers=_bearer(read)),
        "alertmanager",
        403,
        "scope read; webhooks need ingest",
    )
    refused(
        server.post("/api/v1/hooks/nagios", content=BODY, headers=_bearer(ingest)),
        "nagios",
        404,
        "unknown connector 'nagios'",
    )
    refused(
        server.post(HOOK, content=b'{"version": "4", "alerts": [', headers=_bearer(ingest)),
        "alertmanager",
        400,
        "malformed JSON",
    )
    wrong = json.dumps({**PAYLOAD, "alerts": [{**PAYLOAD["alerts"][0], "status": "on fire"}]})
    refused(
        server.post(HOOK, content=wrong, headers=_bearer(ingest)),
        "alertmanager",
        422,
        "alerts[0].status: must be firing or resolved",
    )
    big = b"{" + b" " * MAX_BODY + b"}"  # 1 MiB + 2 bytes, with its Content-Length
    refused(
        server.post(HOOK, content=big, headers=_bearer(ingest)),
        "alertmanager",
        413,
        f"over the limit of {MAX_BODY} bytes",
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: the server counts as it reads
        yield b"{"
        for _ in range(16):
            yield b" " * (MAX_BODY // 16)
        yield b"}"

    refused(
        server.post(HOOK, content=chunks(), headers=_bearer(ingest)),
        "alertmanager",
        413,
        f"body is over the limit of {MAX_BODY} bytes",
    )

    assert _inbound_after(db_url, floor) == 0, "a refused payload was stored"
    assert _alerts(db_url) == before, "a refused payload changed the records"

    # the rejected-payload log: admin only, newest first, one entry per refusal
    _problem(server.get("/api/v1/rejected"), 401, "missing bearer token")
    _problem(server.get("/api/v1/rejected", headers=_bearer(read)), 403, "this needs admin")
    _problem(server.get("/api/v1/rejected", headers=_bearer(ingest)), 403, "this needs admin")
    r = server.get("/api/v1/rejected", headers=_bearer(admin), params={"limit": 1000})
    assert r.status_code == 200, r.text
    logged = [e for e in r.json()["items"] if e["id"] > rejected_floor]
    assert len(logged) == len(refusals), json.dumps(logged, indent=1)[:3000]
    for entry, (connector, status, reason) in zip(reversed(logged), refusals, strict=True):
        assert entry["connector"] == connector
        assert entry["status"] == status
        assert reason in entry["reason"]
        assert entry["remote"] == "127.0.0.1"
        assert entry["received_at"]
    by_status = {e["status"]: e for e in logged}
    assert by_status[401]["body"] == BODY.decode()  # what was sent is kept, to resend later
    assert by_status[403]["body"] == BODY.decode()
    assert by_status[422]["body"] == wrong

    # and the right token, on the same server, is accepted (also an admin one)
    r = server.post(HOOK, content=BODY, headers=_bearer(ingest))
    assert r.status_code == 202, r.text
    assert r.json()["records"] == 1
    r = server.post(HOOK, content=BODY, headers=_bearer(admin))
    assert r.status_code == 202 and r.json()["unchanged"] == 1
    exact = b"{" + b" " * (MAX_BODY - 2) + b"}"  # exactly 1 MiB is not too large
    _problem(server.post(HOOK, content=exact, headers=_bearer(ingest)), 422, "version")


def test_read_api_needs_the_read_scope(cli: Cli, server: httpx.Client) -> None:
    _, ingest = _token(cli, "ingest")
    read_name, read = _token(cli, "read")
    _, admin = _token(cli, "admin")

    r = server.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    for path in ("/api/v1/alerts", "/api/v1/incidents"):
        _problem(server.get(path), 401, "missing bearer token")
        _problem(server.get(path, headers=_bearer("opl_wrong")), 401, "invalid or revoked")
        _problem(server.get(path, headers=_bearer(ingest)), 403, "this needs read")
        for token in (read, admin):
            r = server.get(path, headers=_bearer(token))
            assert r.status_code == 200, r.text
            assert r.json()["items"] == []
    _problem(
        server.get("/api/v1/alerts", headers=_bearer(read), params={"limit": 0}),
        422,
        "limit",
    )
    _problem(
        server.get("/api/v1/alerts", headers=_bearer(read), params={"since": "2026-10-04T13:22"}),
        422,
        "needs a UTC offset",
    )
    _problem(server.get("/api/v1/nothing-here", headers=_bearer(read)), 404, "Not Found")

    assert cli("tokens", "revoke", read_name)[0] == 0
    _problem(server.get("/api/v1/alerts", headers=_bearer(read)), 401, "invalid or revoked")
