"""RFC 9457 problem details: every error the API returns has this shape."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from opsledger.errors import NotFoundError, OpsledgerError, UsageError

PROBLEM = "application/problem+json"
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
}


class Problem(Exception):
    def __init__(self, status: int, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra


def nul_in_query(query_string: bytes, path: str) -> JSONResponse | None:
    """The 400 for a query string with a NUL character (%00), else None: PostgreSQL text
    cannot hold NUL, and no parameter of the API needs one."""
    if b"%00" not in query_string:
        return None
    return problem_response(400, "the query string contains a NUL character (%00)", path)


def problem_response(status: int, detail: str, instance: str, **extra: Any) -> JSONResponse:
    body = {
        "type": "about:blank",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


async def on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, Problem)
    return problem_response(exc.status, exc.detail, request.url.path, **exc.extra)


async def on_http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return problem_response(exc.status_code, str(exc.detail), request.url.path)


async def on_validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", "")} for e in exc.errors()
    ]
    detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
    return problem_response(422, detail, request.url.path, errors=errors)


async def on_opsledger(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, OpsledgerError)
    status = 404 if isinstance(exc, NotFoundError) else 400 if isinstance(exc, UsageError) else 500
    return problem_response(status, str(exc), request.url.path)


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(500, "internal error", request.url.path)
