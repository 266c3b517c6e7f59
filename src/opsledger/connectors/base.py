"""What a connector is, and the registry of connectors."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opsledger.errors import UsageError

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from opsledger.ingest.importer import ImportResult

NativeRecord = dict[str, Any]
_FRACTION = re.compile(r"\.(\d+)")
_fromisoformat = datetime.fromisoformat
_UTC = UTC


class PayloadError(UsageError):
    """A vendor payload that cannot be turned into records: says where and why."""

    def __init__(self, connector: str, where: str, reason: str, status: int = 422) -> None:
        self.status = status  # 400 for a body that is not JSON, 422 for a wrong schema
        self.connector = connector
        self.where = where
        self.reason = reason
        super().__init__(
            f"{connector} payload, {where}: {reason}" if where else f"{connector} payload: {reason}"
        )


@dataclass(frozen=True)
class Connector:
    """A webhook or file connector.

    `parse` is pure: (body bytes, headers) -> native records, event times from the payload.
    `verify` checks a vendor signature with the connector's secret: True when it matches,
    False when a signature was sent and does not match, None when none was sent.
    `patch`: True when payloads update records (alert episodes) rather than replace them:
    fields the payload leaves out keep their stored values.
    """

    name: str
    parse: Callable[[bytes, Mapping[str, str]], list[NativeRecord]]
    verify: Callable[[bytes, Mapping[str, str], str], bool | None] | None = None
    patch: bool = True
    description: str = ""
    # senders that put a routing key in the body (PagerDuty Events API v2): the key may be
    # an ingest token
    token_in_body: Callable[[bytes], str | None] | None = None
    # `opsledger import --from NAME PATH`: a vendor export (file or directory) -> records
    parse_path: Callable[[Path], list[NativeRecord]] | None = None
    # patch connectors only: (stored record, or an earlier one of the same input, {} when
    # none; the parsed record) -> the record to store. Default: the parsed record's fields
    # replace the stored ones. Lets a connector keep the first acknowledgement, for example.
    merge: Callable[[NativeRecord, NativeRecord], NativeRecord] | None = None
    # records whose identity depends on what is stored (PagerDuty Events: the open alert of a
    # dedup_key): (connection, parsed records) -> the records to apply, before any merge.
    # Runs inside the ingest transaction; raises PayloadError to refuse the payload.
    prepare: Callable[[Connection, list[NativeRecord]], list[NativeRecord]] | None = None
    # the body of the 202 answer, when the sender expects its own shape (PagerDuty Events:
    # status, message, dedup_key): (request body, import result) -> JSON object
    respond: Callable[[bytes, ImportResult], dict[str, Any]] | None = None


def load_json(connector: str, body: bytes) -> Any:
    try:
        return json.loads(body)
    except UnicodeDecodeError:
        raise PayloadError(connector, "", "body is not UTF-8", 400) from None
    except json.JSONDecodeError as exc:
        raise PayloadError(
            connector, f"line {exc.lineno} column {exc.colno}", f"malformed JSON ({exc.msg})", 400
        ) from None
    except RecursionError:
        raise PayloadError(connector, "", "JSON nested too deeply", 400) from None


def instant(connector: str, where: str, value: Any) -> datetime:
    """A vendor timestamp as an aware datetime in UTC (nanoseconds cut to microseconds).
    Naive (no offset): error; no time zone is ever guessed.

    Python 3.11's `datetime.fromisoformat` reads RFC 3339 in C (a `Z`, offsets, and more
    than 6 digits of a fraction, which it cuts as the rule above does), so most values take
    that one call; anything it refuses (surrounding spaces, for one) goes the careful way,
    which also words the errors."""
    if isinstance(value, str):
        try:
            t = _fromisoformat(value)
        except ValueError:
            pass
        else:
            if t.tzinfo is _UTC:
                return t
            if t.tzinfo is not None:
                return t.astimezone(UTC)
    return _instant_slow(connector, where, value)


def _instant_slow(connector: str, where: str, value: Any) -> datetime:
    if not isinstance(value, str):
        raise PayloadError(connector, where, f"expected a timestamp string, got {value!r}")
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], value.strip(), count=1)
    try:
        t = _fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(connector, where, f"not an RFC 3339 timestamp: {value!r}") from None
    if t.tzinfo is None:
        raise PayloadError(connector, where, f"timestamp without UTC offset: {value!r}")
    return t.astimezone(UTC)


def rfc3339(t: datetime) -> str:
    """An aware datetime in UTC as RFC 3339 text: `2026-10-04T13:22:05Z`, or with 6 digits of
    a fraction when it has one."""
    return t.isoformat()[:-6] + "Z"


def utc_text(value: Any, t: datetime) -> str:
    """`rfc3339(t)` for the `t` that `instant` read from `value`, without formatting it
    when `value` is written as RFC 3339 in UTC (`YYYY-MM-DDTHH:MM:SS[.digits]Z`, as
    Alertmanager and Grafana send them): then `fromisoformat` read t's date and time from
    its first 19 characters."""
    if (
        type(value) is str
        and value[-1:] == "Z"
        and value[10:11] == "T"
        and (len(value) == 20 or value[19:20] == ".")
        and value[4:5] == "-"
        and value[7:8] == "-"
        and value[13:14] == ":"
        and value[16:17] == ":"
    ):
        us = t.microsecond
        return f"{value[:19]}.{us:06d}Z" if us else value[:19] + "Z"
    return rfc3339(t)


def timestamp(connector: str, where: str, value: Any) -> str:
    """A vendor timestamp as RFC 3339 UTC (nanoseconds cut to microseconds). Naive: error."""
    return rfc3339(instant(connector, where, value))


def short_hash(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:16]


def hmac_sha256_hex(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_REGISTRY: dict[str, Connector] = {}


def register(connector: Connector) -> Connector:
    if connector.name in _REGISTRY:
        raise ValueError(f"connector {connector.name} registered twice")
    _REGISTRY[connector.name] = connector
    return connector


_LOADED: list[bool] = []  # set once every connector module is loaded


def connectors() -> dict[str, Connector]:
    """Every connector, loaded on first use (nothing happens at import time). A connector
    module imported directly before (a test does) is registered already; the others load."""
    if not _LOADED:
        # every connector module registers itself on import; a missing one is an error
        from opsledger.connectors import (  # noqa: F401
            alertmanager,
            events,
            grafana,
            opsgenie,
            pagerduty,
            review,
            slack,
        )

        _LOADED.append(True)
    return dict(_REGISTRY)


def get_connector(name: str) -> Connector | None:
    return connectors().get(name)
