"""create_app(settings): the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from opsledger import __version__
from opsledger.access import TokenCache
from opsledger.api import alerts, hooks, incidents, problems, routes
from opsledger.api.writer import Writer, writer_threads
from opsledger.connectors.base import connectors
from opsledger.core.db import open_database
from opsledger.kpis.policy import load_policy
from opsledger.kpis.registry import DEFAULT_TARGETS
from opsledger.settings import Settings


class RefuseNulInQuery:
    """A query string with a NUL character (%00) is refused with 400 before any route sees
    it (problems.nul_in_query)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = problems.nul_in_query(scope.get("query_string", b""), scope["path"])
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class App(FastAPI):
    """opsledger's FastAPI app: webhook requests are answered in front of FastAPI's
    middleware stack and routing (api.hooks.answer_hook), the rest as usual. `hooks_first`
    False sends them the FastAPI way too (the same answers; tests compare the two)."""

    hooks_first = True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.hooks_first and scope["type"] == "http" and not self.root_path:
            name = hooks.hook_name(scope)
            if name is not None:
                scope["app"] = self
                await hooks.answer_hook(name, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    # after the last request: the writer finishes what is queued, then stops
    writer: Writer = app.state.writer
    writer.close()


def create_app(settings: Settings) -> FastAPI:
    app = App(
        title="opsledger",
        version=__version__,
        description="The system of record and KPI engine for operations teams.",
        lifespan=_lifespan,
    )
    app.state.engine = open_database(settings.resolved_database_url())
    app.state.policy = load_policy(settings.policy, DEFAULT_TARGETS)
    app.state.tokens = TokenCache()
    app.state.writer = Writer(
        app.state.engine, app.state.policy, app.state.tokens,
        writer_threads(app.state.engine),
    )
    connectors()  # load the connector registry once, at start-up
    app.add_exception_handler(problems.Problem, problems.on_problem)
    app.add_exception_handler(StarletteHTTPException, problems.on_http)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    from opsledger.errors import OpsledgerError

    app.add_exception_handler(OpsledgerError, problems.on_opsledger)
    app.add_exception_handler(Exception, problems.on_unexpected)
    app.add_middleware(RefuseNulInQuery)

    @app.get("/healthz", tags=["health"], summary="Liveness (no token needed)")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    app.include_router(alerts.router)  # before routes: /alerts/noise is not an alert id
    app.include_router(routes.router)
    app.include_router(hooks.router)
    app.include_router(incidents.router)
    return app


def app_from_env() -> FastAPI:
    """The app of one worker of `opsledger serve --workers N`, from OPSLEDGER_* settings."""
    return create_app(Settings())
