"""A running opsledger app (FastAPI TestClient over create_app) with a real ingest token, and
the readings the connector tests make of its database. Shared by the alertmanager, grafana
and events connector tests."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from opsledger.access import create_token
from opsledger.api.app import create_app
from opsledger.records.tables import RECORD_TABLES, inbound_payloads, rejected_payloads
from opsledger.records.validation import canonical
from opsledger.settings import Settings

with warnings.catch_warnings():
    # starlette announces its move from httpx to httpx2 with a UserWarning subclass, which
    # the DeprecationWarning filter of pyproject.toml does not match
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


class Hooks:
    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.token = token
        self.engine = client.app.state.engine  # type: ignore[attr-defined]

    def post(self, connector: str, body: bytes | dict[str, Any], **headers: str) -> Any:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        sent = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        sent.update(headers)
        return self.client.post(f"/api/v1/hooks/{connector}", content=data, headers=sent)

    def enqueue(self, body: bytes | dict[str, Any], bearer: bool = False) -> Any:
        """POST /v2/enqueue as a PagerDuty client does: no Authorization header, the token is
        the body's routing_key (unless `bearer`)."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {self.token}"
        return self.client.post("/v2/enqueue", content=data, headers=headers)

    def alerts(self) -> dict[str, dict[str, Any]]:
        """Every stored alert record, by id, in its canonical JSON form."""
        table = RECORD_TABLES["alert"]
        cols = [c for c in table.c if not c.name.startswith("_")]
        with self.engine.connect() as conn:
            rows = conn.execute(select(*cols)).all()
        out = {}
        for row in rows:
            rec = json.loads(canonical(dict(row._mapping)))  # absent fields left out
            out[rec["id"]] = rec
        return out

    def count(self, table: Any, connector: str | None = None) -> int:
        q = select(func.count()).select_from(table)
        if connector is not None:
            q = q.where(table.c.connector == connector)
        with self.engine.connect() as conn:
            return int(conn.execute(q).scalar_one())

    def rejected(self, connector: str) -> list[dict[str, Any]]:
        r = rejected_payloads.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(r.status, r.reason, r.body).where(r.connector == connector).order_by(r.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    def inbound(self, connector: str) -> int:
        return self.count(inbound_payloads, connector)


@pytest.fixture
def hooks(db_url: str) -> Iterator[Hooks]:
    app = create_app(Settings(database_url=db_url))
    with app.state.engine.begin() as conn:
        # PostgreSQL keeps tokens and payload logs between tests: unique names, and tests
        # count differences, never absolute numbers of logged payloads
        token = create_token(conn, f"connector-tests-{uuid.uuid4().hex[:10]}", "ingest")
    with TestClient(app) as client:
        yield Hooks(client, token)
    app.state.engine.dispose()


def payload(directory: Path, name: str) -> bytes:
    return (directory / "payloads" / name).read_bytes()
