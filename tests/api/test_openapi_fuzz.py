"""Fuzzing the API of create_app: no input gives a 5xx.

Schemathesis generates calls for every operation of the published OpenAPI schema, with
valid and invalid parameters (its positive and negative modes), with an admin token, on
SQLite and PostgreSQL; the check is schemathesis' `not_a_server_error`. The webhook
receivers read their bodies raw (the schema declares none), so a Hypothesis test beside it
posts generated bodies, valid-looking and broken, to every connector.

(schemathesis' lazy pytest fixture loader does not run under pytest 9, so the operations
are walked here with `APIOperation.as_strategy`, which is the same generator.)
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from sqlalchemy import select

from opsledger.access import create_token
from opsledger.api.app import create_app
from opsledger.connectors.base import connectors
from opsledger.records.tables import rejected_payloads
from opsledger.settings import Settings

EXAMPLES = 8  # per operation and mode: the file stays under a minute on a busy 2-core machine
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def served(db_url: str) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(Settings(database_url=db_url))
    with app.state.engine.begin() as conn:
        token = create_token(conn, f"fuzz-{uuid.uuid4().hex[:8]}", "admin")
    yield app, token
    app.state.writer.close()  # no lifespan here: stop the webhook writer's thread
    app.state.engine.dispose()


def test_openapi_operations_never_answer_5xx(served: tuple[FastAPI, str]) -> None:
    app, token = served
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    walked = negated = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in GenerationMode:

            @given(case=operation.as_strategy(generation_mode=mode))
            @FUZZ
            def call(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=[not_a_server_error])

            where = f"{operation.method.upper()} {operation.path} [{mode.value}]"
            try:
                call()
            except Unsatisfiable:
                # nothing to make invalid (no parameters, or only free-text ones)
                assert mode is GenerationMode.NEGATIVE, f"{where}: no valid call generated"
                continue
            except Exception as exc:  # noqa: BLE001 - collected and reported below
                failures.append(f"{where}: {exc}")
            walked += 1
            negated += mode is GenerationMode.NEGATIVE
    assert walked >= 7 + 4, f"only {walked} operation/mode pairs were fuzzed"
    assert negated >= 4, f"only {negated} operations had invalid inputs generated"
    assert not failures, "\n\n".join(failures)


# Webhook bodies: anything at all, any JSON, and Alertmanager-shaped payloads with
# generated (often wrong) values in every place.
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
times = st.one_of(
    st.sampled_from(
        [
            "2026-10-04T13:22:05Z",
            "2026-10-04T13:22:05.123456789Z",
            "2026-10-04T13:22:05",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59Z",
            "not a time",
        ]
    ),
    json_values,
)
label_sets = st.one_of(
    st.dictionaries(
        st.sampled_from(["alertname", "severity", "service", "runbook_url", "x"]),
        st.text(max_size=30),
        max_size=5,
    ),
    json_values,
)
am_alerts = st.fixed_dictionaries(
    {
        "status": st.one_of(st.sampled_from(["firing", "resolved"]), json_values),
        "labels": label_sets,
        "annotations": st.one_of(
            st.dictionaries(st.sampled_from(["runbook_url", "summary"]), st.text(max_size=30)),
            json_values,
        ),
        "startsAt": times,
        "endsAt": times,
        "generatorURL": st.one_of(st.text(max_size=40), json_values),
        "fingerprint": st.one_of(st.text(max_size=20), json_values),
    }
)
am_payloads = st.fixed_dictionaries(
    {"version": st.sampled_from(["4", 4, "3"]), "alerts": st.lists(am_alerts, max_size=3)}
).map(lambda p: json.dumps(p).encode())
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    am_payloads,
)


def test_webhook_bodies_never_answer_5xx(served: tuple[FastAPI, str]) -> None:
    app, token = served
    paths = [f"/api/v1/hooks/{name}" for name in sorted(connectors())] + ["/v2/enqueue"]
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    # in-process (httpx's ASGI transport): an unexpected error comes back as its 500
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    with asyncio.Runner() as runner:
        client = httpx.AsyncClient(transport=transport, base_url="http://opsledger.test")

        @given(path=st.sampled_from(paths), body=bodies)
        @settings(FUZZ, max_examples=120)
        def post(path: str, body: bytes) -> None:
            r = runner.run(client.post(path, content=body, headers=headers))
            assert r.status_code < 500, (path, body, r.status_code, r.text)
            if r.status_code >= 400:
                assert r.headers["content-type"] == "application/problem+json", r.headers
                assert r.json()["status"] == r.status_code

        try:
            post()
        finally:
            runner.run(client.aclose())


def test_nul_characters_are_refused_not_500(served: tuple[FastAPI, str]) -> None:
    """What the fuzzing found: PostgreSQL text cannot hold NUL, so each place a NUL can come
    in answers 4xx with a reason instead of 500."""
    app, token = served
    headers = {"Authorization": f"Bearer {token}"}
    alert = {
        "status": "firing",
        "labels": {"alertname": "Disk\u0000Full"},
        "startsAt": "2026-10-04T13:22:05Z",
    }
    calls = [
        ("GET", "/api/v1/alerts?name=%00", b"", 400, "NUL character (%00)"),
        ("GET", "/api/v1/scorecard?service=a%00b", b"", 400, "NUL character (%00)"),
        (
            "POST",
            "/api/v1/hooks/alertmanager",
            json.dumps({"version": "4", "alerts": [alert]}).encode(),
            422,
            "field 'name': contains a NUL character",
        ),
        ("POST", "/api/v1/hooks/alertmanager", b'{"version": "4"}\x00', 400, "malformed JSON"),
        ("POST", "/api/v1/hooks/no%00such", b"{}", 404, "unknown connector"),
    ]

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return [
                await client.request(method, url, content=body, headers=headers)
                for method, url, body, _, _ in calls
            ]

    for r, (method, url, _, status, detail) in zip(asyncio.run(run()), calls, strict=True):
        assert r.status_code == status, (method, url, r.text)
        assert detail in r.json()["detail"], (method, url, r.text)
    with app.state.engine.connect() as conn:  # refused webhooks are in the rejected log
        rows = conn.execute(
            select(rejected_payloads.c.connector, rejected_payloads.c.body)
            .order_by(rejected_payloads.c.id.desc())
            .limit(3)
        ).all()
    assert [r.connector for r in rows] == ["no\ufffdsuch", "alertmanager", "alertmanager"]
    assert rows[1].body == '{"version": "4"}\ufffd'
