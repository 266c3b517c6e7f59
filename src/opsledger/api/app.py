"""create_app(settings): the FastAPI application. Nothing is built at import time."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsledger import __version__
from opsledger.api import alerts, hooks, incidents, problems, routes
from opsledger.connectors.base import connectors
from opsledger.core.db import open_database
from opsledger.kpis.policy import load_policy
from opsledger.kpis.registry import DEFAULT_TARGETS
from opsledger.settings import Settings


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="opsledger",
        version=__version__,
        description="The system of record and KPI engine for operations teams.",
    )
    app.state.engine = open_database(settings.resolved_database_url())
    app.state.policy = load_policy(settings.policy, DEFAULT_TARGETS)
    connectors()  # load the connector registry once, at start-up
    app.add_exception_handler(problems.Problem, problems.on_problem)
    app.add_exception_handler(StarletteHTTPException, problems.on_http)
    app.add_exception_handler(RequestValidationError, problems.on_validation)
    from opsledger.errors import OpsledgerError

    app.add_exception_handler(OpsledgerError, problems.on_opsledger)
    app.add_exception_handler(Exception, problems.on_unexpected)

    @app.get("/healthz", tags=["health"], summary="Liveness (no token needed)")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__}

    app.include_router(alerts.router)  # before routes: /alerts/noise is not an alert id
    app.include_router(routes.router)
    app.include_router(hooks.router)
    app.include_router(incidents.router)
    return app
