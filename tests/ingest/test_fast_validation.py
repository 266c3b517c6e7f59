"""The fast JSON Lines path (records.fast, msgspec) against the reference (pydantic).

For any file, `read_entries` (fast path, pydantic only where it is unsure) must give exactly
what validating every line with pydantic gives (`read_items`): the same kinds and values, of
the same types, or the same error at the same line. Lines are generated to sit on the edges
where the two libraries could differ: timestamp forms, fractional digits, offsets, integer
sizes, floats given as integers, wrong types, patterns, duplicate keys, unknown fields, NULs,
escapes, invalid UTF-8.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from opsledger.errors import RecordError
from opsledger.ingest.reader import entry, open_source, read_entries, read_items
from opsledger.ingest.rows import digest, legacy_digest, same_content, values_digest
from opsledger.records.fast import LONG_FRACTION, NUL_ESCAPE, decoder, unsure, values_of
from opsledger.records.spec import KINDS, FieldType
from opsledger.records.validation import validate_json_partial

SETTINGS = settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_STAMPS = (
    "2026-10-04T13:22:05Z", "2026-10-04t13:22:05z", "2026-10-04 13:22:05Z",
    "2026-10-04T13:22:05+02:00", "2026-10-04T13:22:05+0200", "2026-10-04T13:22:05+02",
    "2026-10-04T13:22:05-00:00", "2026-10-04T13:22:05.123Z", "2026-10-04T13:22:05.123456Z",
    "2026-10-04T13:22:05.1234567Z", "2026-10-04T13:22:05.9999995Z", "2026-10-04T13:22:05",
    "2026-10-04T13:22Z", "2026-10-04T24:00:00Z", "2026-10-04T23:59:60Z", "2026-10-04",
    "2026-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "2026-10-04T13:22:05,5Z",
    "2026-10-04T13:22:05+24:00", "2026-10-04T13:22:05.5-03:30", "1700000000",
)
_ODD = st.sampled_from([
    None, True, False, 0, 1, -1, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 1.0, 1.5, -0.0,
    1e308, "", " ", "x", "\x00", "é", "2026-10", "2026-13", "2026-10\n", "0 3 * * *",
    "61 * * * *", "2026-10-04", "2026-10-04T13:22:05Z", [], {}, {"a": 1}, [1, "a"],
    {"big": 10**30}, {"f": 1e300, "n": None, "s": "\x00"},
])


def _value(t: FieldType, choices: tuple[Any, ...] | None) -> st.SearchStrategy[Any]:
    good: st.SearchStrategy[Any]
    if choices is not None:
        good = st.sampled_from(list(choices))
    elif t is FieldType.STR:
        good = st.text(max_size=8)
    elif t is FieldType.INT:
        good = st.integers(min_value=-(2**65), max_value=2**65)
    elif t is FieldType.FLOAT:
        good = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(0, 9))
    elif t is FieldType.BOOL:
        good = st.booleans()
    elif t is FieldType.DATETIME:
        good = st.one_of(
            st.sampled_from(_STAMPS),
            st.builds(
                lambda s, tz, us: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=s,
                                   microseconds=us)).astimezone(timezone(timedelta(minutes=tz)))
                .isoformat(),
                st.integers(0, 10**7), st.sampled_from([0, 60, -150, 330, 840]),
                st.integers(0, 999_999),
            ),
        )
    elif t is FieldType.DATE:
        good = st.sampled_from(["2026-10-04", "2026-1-4", "20261004", "2026-02-30"])
    elif t is FieldType.MONTH:
        good = st.sampled_from(["2026-10", "2026-13", "2026-10\n", "26-10"])
    elif t is FieldType.OBJECT:
        good = st.dictionaries(st.text(max_size=3), st.one_of(
            st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False,
                                                                allow_infinity=False),
            st.text(max_size=4), st.lists(st.integers(), max_size=2)), max_size=3)
    else:
        good = st.sampled_from(["0 3 * * *", "*/5 * * * *", "61 * * * *", "nonsense"])
    return st.one_of(*[good] * 12, _ODD)  # mostly valid, so that whole files pass too


@st.composite
def _record(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(KINDS))
    rec: dict[str, Any] = {"kind": kind.name}
    for f in kind.fields:
        if f.name == "id":
            rec["id"] = draw(st.one_of(st.just("r1"), st.text(max_size=3), _ODD))
        # now and then a required field is missing
        elif (f.required or draw(st.booleans())) and draw(st.integers(0, 30)) != 0:
            rec[f.name] = draw(_value(f.type, f.choices))
    if draw(st.integers(0, 15)) == 0:
        rec["unknown_field"] = draw(_ODD)
    if draw(st.integers(0, 25)) == 0:
        rec["kind"] = draw(st.sampled_from(["nope", 3, None]))
    return rec


def _line(rec: dict[str, Any], ascii_only: bool) -> bytes:
    try:
        return json.dumps(rec, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    except ValueError:
        return b"{}"


def _read(path: Path, lenient: bool, fast: bool) -> Any:
    try:
        src = open_source(str(path))
        if fast:
            return [e[:2] for block in read_entries(src, lenient) for e in block]
        return [entry(item)[:2] for item in read_items(src, lenient)]
    except RecordError as exc:
        return ("error", str(exc))


def _typed(got: Any) -> Any:
    """Values with their types (1 and 1.0 and True differ; so do offsets)."""
    if isinstance(got, tuple) and got and got[0] == "error":
        return got
    return [(kind, [(type(v).__name__, v, getattr(v, "tzinfo", None) and v.utcoffset())
                    for v in values]) for kind, values in got]


@SETTINGS
@given(records=st.lists(_record(), min_size=1, max_size=3), lenient=st.booleans(),
       ascii_only=st.booleans())
@example(records=[{"kind": "alert", "id": "a", "name": "n",
                   "fired_at": "2026-10-04T13:22:05.9999995Z"}], lenient=False, ascii_only=True)
@example(records=[{"kind": "asset", "id": "h", "tags": {"b": 1, "a": [2, {"c": None}]}},
                  {"kind": "asset", "id": "g", "tags": {}}], lenient=False, ascii_only=False)
@example(records=[{"kind": "budget", "id": "b", "scope": "s", "month": "2026-10\n",
                   "amount": 1}], lenient=False, ascii_only=True)
def test_fast_path_reads_what_pydantic_reads(
    tmp_path: Path, records: list[dict[str, Any]], lenient: bool, ascii_only: bool
) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b"\n".join(_line(r, ascii_only) for r in records) + b"\n")
    slow = _read(path, lenient, fast=False)
    assert _typed(_read(path, lenient, fast=True)) == _typed(slow)
    if not (isinstance(slow, tuple) and slow[0] == "error"):
        # a record's digest is the same whichever path read it
        src = open_source(str(path))
        fast_entries = [e for block in read_entries(src, lenient) for e in block]
        items = list(read_items(src, lenient))
        for (_kind, values, _, _), item in zip(fast_entries, items, strict=True):
            assert values_digest(values) == digest(item.kind, item.record)


RAW_LINES = [
    b'{"kind":"team","id":"t","name":"\xff"}',  # invalid UTF-8 in a known field
    b'{"kind":"team","id":"t","zz":"\xff"}',  # ... in an unknown one (lenient skips it)
    b'{"kind":"team","id":"t","zz":"\\ud800"}',  # a lone surrogate escape
    b'{"kind":"team","id":"t","name":"a\\u0000b"}',  # NUL
    b'{"kind":"team","id":"t","id":"u"}',  # duplicate key: the last wins in both
    b'{"kind":"team","kind":"service","id":"t"}',
    b'{"kind":"team","id":"t"} {"kind":"team","id":"u"}',
    b'{"kind":"team","id":"t","zz":1e400}',
    b'{"kind":"team","id":"t","zz":NaN}',
    b'{"kind":"vulnerability","id":"v","host":"h","cve":"C","severity":"high",'
    b'"detected_at":"2026-10-04T13:22:05Z","cvss":1e400}',
    b'{"kind":"asset","id":"h","tags":{"a":1e400}}',
    b'{"kind":"asset","id":"h","tags":{"a":[NaN]}}',
    b'{"kind":"asset","id":"h","tags":{"a":123456789012345678901234567890}}',
    b'{"kind":"asset","id":"h","tags":{"a":18446744073709551615,"b":null}}',
    b'{"kind":"asset","id":"h","tags":{"a":18446744073709551616}}',
    b'{"kind":"asset","id":"h","tags":{"a":-9223372036854775809}}',
    b'  {"kind":"team","id":"t"}  ',
    b'{"kind":"team","id":"t"}\r',
    b'[{"kind":"team","id":"t"}]',
    b'"text"',
]


@pytest.mark.parametrize("lenient", [False, True])
@pytest.mark.parametrize("raw", RAW_LINES)
def test_edge_lines_agree(tmp_path: Path, raw: bytes, lenient: bool) -> None:
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"kind":"team","id":"first"}\n' + raw + b"\n")
    assert _typed(_read(path, lenient, fast=True)) == _typed(_read(path, lenient, fast=False))


def test_fast_decoder_defers_rather_than_guess() -> None:
    """The decoder alone says None (ask pydantic) for what it does not check itself."""
    fast = decoder(False)
    line = b'{"kind":"team","id":"t","name":"x"}'
    assert fast(line + b"\r\n") == ("team", ("t", "x"), "json", line)
    assert fast(b'{"kind":"team","id":"t","zz":1}') is None  # unknown field: pydantic words it
    broken_order = (b'{"kind":"alert","id":"a","name":"n","fired_at":"2026-10-04T13:00:00Z",'
                    b'"resolved_at":"2026-10-04T12:00:00Z"}')
    assert fast(broken_order) is None
    with pytest.raises(RecordError, match="before fired_at"):
        validate_json_partial(broken_order, "s", "line 1")
    bad_cron = b'{"kind":"backup_job","id":"j","schedule":"61 * * * *"}'
    assert fast(bad_cron) is None
    # a non-zero offset becomes UTC, as pydantic's path makes it
    got = fast(b'{"kind":"alert","id":"a","name":"n","fired_at":"2026-10-04T15:00:00+02:00"}')
    assert got is not None
    values = dict(zip(next(k for k in KINDS if k.name == "alert").field_names, got[1],
                      strict=True))
    assert values["fired_at"] == datetime(2026, 10, 4, 13, tzinfo=UTC)
    assert values["fired_at"].tzinfo is UTC


def test_legacy_digests_still_match() -> None:
    """A database written before the XXH3 digests holds blake2b ones: the same content must
    still count as unchanged, other content as changed."""
    kind = next(k for k in KINDS if k.name == "alert")
    record = {"id": "a", "name": "n", "fired_at": datetime(2026, 10, 4, tzinfo=UTC),
              "labels": {"b": 1, "a": 2}, "resolved_at": None}
    values = values_of("alert", record)
    new = values_digest(values)
    old = legacy_digest(record)
    assert new != old and new.startswith("x") and len(new) == len(old) == 32
    assert same_content(old, new, "alert", values)
    assert same_content(new, new, "alert", values)
    other = values_of("alert", {**record, "name": "m"})
    assert not same_content(old, values_digest(other), "alert", other)
    assert len(kind.fields) == len(values)


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b'{"t":"2026-10-04T13:22:05.1234567Z"}', True),  # 7 fractional digits
        (b'{"t":"2026-10-04T13:22:05.123456789+02:00"}', True),
        (b'{"t":"2026-10-04T13:22:05.123456Z"}', False),  # 6: msgspec and pydantic agree
        (b'{"v":"1.1234567","t":"2026-10-04T13:22:05Z"}', False),  # not after a time
        (b'{"v":"ab:12.1234567"}', False),
        (b'{"v":"9:12.1234567"}', True),  # time-shaped: pydantic decides
        (b'{"n":"a\\u0000b"}', True),
        (b'{"u":"http://10.0.1.1:9100/x.y","s":"a.b.c"}', False),
    ],
)
def test_unsure_lines(line: bytes, expected: bool) -> None:
    """`unsure` (quick pattern first) says what its exact definition says: a NUL escape, or a
    time's seconds followed by seven or more fractional digits."""
    assert unsure(line) is expected
    assert unsure(line) == (NUL_ESCAPE in line or LONG_FRACTION.search(line) is not None)
