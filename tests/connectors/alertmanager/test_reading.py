"""How the alertmanager (and grafana) connector reads a body: orjson first, and the standard
library's `json` wherever the two could differ, so that every body gets the answer it got
when only the standard library read it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsledger.connectors.alertmanager import _notification, parse
from opsledger.connectors.base import PayloadError, load_json
from tests.connectors.alertmanager.hooks import payload

HERE = Path(__file__).parent
BODIES = sorted((HERE / "payloads").rglob("*.json"))


def _stdlib(body: bytes) -> list[dict[str, Any]]:
    """The records as the connector made them before orjson: json.loads decides."""
    return _notification("alertmanager", "am", "4", load_json("alertmanager", body))


def _answer(read: Any, body: bytes) -> Any:
    try:
        return read(body)
    except PayloadError as exc:
        return ("refused", exc.status, str(exc))


@pytest.mark.parametrize("path", BODIES, ids=lambda p: str(p.relative_to(HERE / "payloads")))
def test_golden_payloads_read_as_the_standard_library_reads_them(path: Path) -> None:
    body = path.read_bytes()
    assert _answer(lambda b: parse(b, {}), body) == _answer(_stdlib, body)


FIRING = payload(HERE, "alertmanager-bot/firing.json")


def _with(change: Any) -> bytes:
    doc = json.loads(FIRING)
    change(doc)
    return json.dumps(doc, allow_nan=True).encode()


BIG = 123456789012345678901234567890  # orjson reads it as a float, json as an int
DIFFERENT = [
    # where orjson and json differ, in fields the connector ignores: the records are stored
    _with(lambda d: d.__setitem__("truncatedAlerts", BIG)),
    _with(lambda d: d.__setitem__("groupLabels", {"n": float("nan")})),  # NaN: orjson refuses
    b"\xef\xbb\xbf" + FIRING,  # a byte order mark: orjson refuses, json skips it
    _with(lambda d: d.__setitem__("receiver", "\ud800")),  # a lone surrogate
    # ... and in fields it reads: the refusal says what it said with json alone
    _with(lambda d: d.__setitem__("version", BIG)),
    _with(lambda d: d["alerts"][0].__setitem__("status", BIG)),
    _with(lambda d: d["alerts"][0].__setitem__("startsAt", -BIG)),
    _with(lambda d: d["alerts"][0].__setitem__("startsAt", float("inf"))),
    _with(lambda d: d["alerts"][0]["labels"].__setitem__("alertname", BIG)),
    # nesting deeper than the standard library reads at this depth of the stack, which
    # orjson reads (up to 1,024 levels): refused as nested too deeply, as before
    FIRING.rstrip()[:-1] + b', "deep": ' + b"[" * 990 + b"]" * 990 + b"}",
    b"[" * 100_000,
    b'{"version": "4", "alerts": [',
    b"\xc3\x28",
]


@pytest.mark.parametrize("body", DIFFERENT, ids=range(len(DIFFERENT)))
def test_bodies_where_orjson_differs_get_the_standard_librarys_answer(body: bytes) -> None:
    assert _answer(lambda b: parse(b, {}), body) == _answer(_stdlib, body)


def test_big_integer_in_an_ignored_field_is_stored_as_usual() -> None:
    assert parse(DIFFERENT[0], {}) == parse(FIRING, {})


def test_nested_too_deeply_is_still_refused() -> None:
    # 990 levels: json's limit at this depth of the stack is below, orjson's above
    with pytest.raises(PayloadError, match="nested too deeply"):
        parse(DIFFERENT[9], {})
