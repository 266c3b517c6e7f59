"""Request dependencies: the database and the caller's token."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from fastapi import Request
from sqlalchemy import Engine

from opsledger.access import TokenInfo, allows, verify_token
from opsledger.api.problems import Problem


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def bearer(request: Request) -> str | None:
    return bearer_of(request.headers)


def bearer_of(headers: Mapping[str, str]) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    header = headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(request: Request, needed: str) -> TokenInfo:
    token = bearer(request)
    if token is None:
        raise Problem(401, "missing bearer token (Authorization: Bearer <token>)")
    with engine_of(request).connect() as conn:
        info = verify_token(conn, token)
    if info is None:
        raise Problem(401, "invalid or revoked token")
    if not allows(info.scope, needed):
        raise Problem(403, f"token '{info.name}' has scope {info.scope}; this needs {needed}")
    return info


def require(scope: str) -> Callable[[Request], TokenInfo]:
    def dependency(request: Request) -> TokenInfo:
        return authenticate(request, scope)

    return dependency
