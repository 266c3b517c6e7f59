"""Shared pieces of the incident tests: records, an API client with tokens, exports."""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from opsledger.access import create_token
from opsledger.api.app import create_app
from opsledger.ingest.replay import export_jsonl
from opsledger.records.spec import KINDS
from opsledger.settings import Settings

with warnings.catch_warnings():
    # starlette announces its move from httpx to httpx2 with a UserWarning subclass, which
    # the DeprecationWarning filter of pyproject.toml does not match
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient


@dataclass
class Api:
    client: TestClient
    ingest: dict[str, str]
    read: dict[str, str]
    admin: dict[str, str]
    engine: Engine


@contextmanager
def api(db_url: str, policy: Path | None = None) -> Iterator[Api]:
    app = create_app(Settings(database_url=db_url, policy=policy))
    engine: Engine = app.state.engine
    headers = {}
    with engine.begin() as conn:
        for scope in ("ingest", "read", "admin"):
            token = create_token(conn, f"{scope}-{uuid.uuid4().hex[:8]}", scope)
            headers[scope] = {"Authorization": f"Bearer {token}"}
    try:
        with TestClient(app) as client:
            yield Api(client, headers["ingest"], headers["read"], headers["admin"], engine)
    finally:
        engine.dispose()


def export_all(engine: Engine) -> dict[str, list[dict[str, Any]]]:
    """Every record of every kind, as exported (JSON values, by id)."""
    with engine.connect() as conn:
        return {
            k.name: [json.loads(line) for line in export_jsonl(conn, k.name)] for k in KINDS
        }


def records_of(engine: Engine, kind: str) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in export_all(engine)[kind]}
