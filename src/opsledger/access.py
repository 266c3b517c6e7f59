"""API tokens: created once (only a hash is kept), listed, revoked, verified."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update

from opsledger.core.sql import driver, id_in
from opsledger.errors import NotFoundError, UsageError
from opsledger.records.tables import api_tokens

SCOPES = ("ingest", "read", "admin")
PREFIX = "opl_"


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    scope: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_hash(token: str) -> str:
    """What is stored of a token: its SHA-256, hex."""
    return _hash(token)


def create_token(conn: Connection, name: str, scope: str) -> str:
    """Create a token and return it; it is shown once, only its hash is stored."""
    if scope not in SCOPES:
        raise UsageError(f"scope {scope!r}: use one of {', '.join(SCOPES)}")
    if not name.strip():
        raise UsageError("a token needs a name")
    if conn.execute(select(api_tokens.c.id).where(api_tokens.c.name == name)).first():
        raise UsageError(f"a token named {name!r} exists already")
    token = PREFIX + secrets.token_urlsafe(32)
    conn.execute(
        insert(api_tokens).values(
            name=name,
            scope=scope,
            token_hash=_hash(token),
            prefix=token[:10],
            created_at=datetime.now(UTC),
        )
    )
    return token


def list_tokens(conn: Connection) -> list[TokenInfo]:
    rows = conn.execute(select(api_tokens).order_by(api_tokens.c.id))
    return [TokenInfo(r.id, r.name, r.scope, r.prefix, r.created_at, r.revoked_at) for r in rows]


def revoke_token(conn: Connection, name: str) -> None:
    done = conn.execute(
        update(api_tokens)
        .where(api_tokens.c.name == name, api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    if done.rowcount == 0:
        raise NotFoundError(f"no active token named {name!r}")


def verify_token(conn: Connection, token: str) -> TokenInfo | None:
    """The active token matching `token`, or None."""
    return verify_token_hash(conn, _hash(token))


def verify_token_hash(conn: Connection, digest: str) -> TokenInfo | None:
    """The active token whose hash is `digest`, or None."""
    row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest)).first()
    if row is None or row.revoked_at is not None:
        return None
    if not hmac.compare_digest(row.token_hash, digest):  # pragma: no cover - same by lookup
        return None
    return TokenInfo(row.id, row.name, row.scope, row.prefix, row.created_at, row.revoked_at)


def allows(scope: str, needed: str) -> bool:
    """admin may do everything; read and ingest only their own."""
    return scope == "admin" or scope == needed


def active_token_hashes(conn: Connection, digests: Iterable[str]) -> set[str]:
    """Those of the given token hashes that belong to tokens not revoked: one query (on the
    driver: the webhook writer asks this in every transaction)."""
    wanted = list(set(digests))
    if not wanted:
        return set()
    condition, params = id_in(conn, wanted)
    return {r[0] for r in driver(conn).execute(_ACTIVE + condition, params)}


_ACTIVE = (
    f'SELECT "token_hash" FROM "{api_tokens.name}" WHERE "revoked_at" IS NULL '
    'AND "token_hash" '
)


TOKEN_CACHE_SECONDS = 10.0


class TokenCache:
    """Tokens found valid, by hash, for `ttl` seconds, so that a webhook's first check costs
    no query. Only valid tokens are kept (an unknown token is looked up every time). The
    webhook writer checks every token again, in the transaction that would store the
    payload, so a revoked token stores nothing from the moment it is revoked; the cache only
    decides how early a request is turned away."""

    MAX_ENTRIES = 10_000

    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, TokenInfo]] = {}

    def get(self, digest: str) -> TokenInfo | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, info: TokenInfo) -> None:
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.ttl, info)

    def forget(self, digest: str) -> None:
        self._entries.pop(digest, None)
