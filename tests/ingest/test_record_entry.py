"""ingest.inbound.record_entry: a connector's record validated by the fast path (msgspec)
where it is sure, else by pydantic. Either way the entry is what pydantic makes of the
record (validate_json_line, then values_of), or pydantic's RecordError; a NUL character
or a timestamp of over six fractional digits goes to pydantic, which reads them otherwise
than msgspec would."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from opsledger.connectors.base import NativeRecord, get_connector
from opsledger.errors import RecordError
from opsledger.ingest import inbound
from opsledger.ingest.inbound import record_entry, record_line
from opsledger.ingest.reader import Entry
from opsledger.ingest.rows import values_digest
from opsledger.records.fast import values_of
from opsledger.records.validation import validate_json_line

PAYLOADS = Path(__file__).parent.parent / "connectors" / "alertmanager" / "payloads"
ALERTMANAGER = get_connector("alertmanager")
assert ALERTMANAGER is not None
WHERE = "alertmanager payload"


def notification(*alerts: dict[str, Any], status: str = "firing") -> bytes:
    return json.dumps({"version": "4", "status": status, "alerts": list(alerts)}).encode()


def alert(fp: str, status: str = "firing", **extra: Any) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": f"Disk{fp}", "service": "db", "severity": "critical",
                   "team": "st\u00f6rage \u2603"},
        "annotations": {"summary": f"disk {fp}", "runbook_url": "https://runbooks/disk"},
        "startsAt": "2026-10-04T13:22:05.123456789Z",  # Go's nanoseconds
        "endsAt": "2026-10-04T16:00:00+02:00" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=up",
        "fingerprint": fp,
        **extra,
    }


def parse(body: bytes) -> list[NativeRecord]:
    assert ALERTMANAGER is not None
    return ALERTMANAGER.parse(body, {})


def connector_records() -> list[NativeRecord]:
    recs: list[NativeRecord] = []
    for path in sorted(PAYLOADS.rglob("*.json")):
        recs += parse(path.read_bytes())
    recs += parse(notification(alert("f1"), alert("f2", annotations={})))
    recs += parse(notification(alert("r1", "resolved"), status="resolved"))
    return recs


def by_pydantic(rec: NativeRecord, location: str) -> Entry:
    text = record_line(rec).decode()
    kind, record = validate_json_line(text, WHERE, location)
    return (kind, values_of(kind, record), "json", text)


def described(entry: Entry) -> tuple[Any, ...]:
    """An entry's values with their types and UTC offsets (True is not 1; pydantic's and
    msgspec's UTC are different objects, equal instants)."""
    kind, values, fmt, _ = entry
    return (kind, fmt, [
        (type(v).__name__, v, v.utcoffset() if hasattr(v, "utcoffset") else None)
        for v in values
    ])


@pytest.fixture
def pydantic_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The lines that record_entry hands to pydantic."""
    calls: list[str] = []
    real = validate_json_line

    def spy(line: str, source: str, location: str, lenient: bool = False) -> Any:
        calls.append(line)
        return real(line, source, location, lenient)

    monkeypatch.setattr(inbound, "validate_json_line", spy)
    return calls


def test_connector_records_take_the_fast_path_with_pydantic_values(
    pydantic_calls: list[str],
) -> None:
    recs = connector_records()
    assert len(recs) > 15
    assert any("resolved_at" in r for r in recs) and any("annotations" in r for r in recs)
    for n, rec in enumerate(recs, 1):
        got = record_entry(rec, WHERE, f"record {n}")
        want = by_pydantic(rec, f"record {n}")
        assert described(got) == described(want), rec
        assert values_digest(got[1]) == values_digest(want[1])  # what is stored and compared
        assert got[3] == record_line(rec)  # the line kept in the raw log
    assert pydantic_calls == []  # none of them needed pydantic


def test_a_nul_in_a_text_field_is_pydantic_s_error(pydantic_calls: list[str]) -> None:
    [rec] = parse(notification(alert("n1")))
    rec["runbook_url"] = "https://runbooks/\x00disk"
    with pytest.raises(RecordError) as fast:
        record_entry(rec, WHERE, "record 3")
    with pytest.raises(RecordError) as reference:
        by_pydantic(rec, "record 3")
    assert str(fast.value) == str(reference.value)
    assert "NUL" in str(fast.value) and "record 3" in str(fast.value)
    assert len(pydantic_calls) == 1


def test_a_nul_in_an_object_is_validated_by_pydantic(pydantic_calls: list[str]) -> None:
    [rec] = parse(notification(alert("n2", labels={"alertname": "Disk", "x": "a\x00b"})))
    got = record_entry(rec, WHERE, "record 1")
    assert described(got) == described(by_pydantic(rec, "record 1"))
    assert len(pydantic_calls) == 1


@pytest.mark.parametrize("stamp", [
    "2026-10-04T13:22:05.123456789Z",  # truncated to .123456 (msgspec rounds: .123457)
    "2026-10-04T15:22:05.999999999+02:00",  # rounding would carry into the next second
    "2026-10-04T13:22:05.1234565Z",
])
def test_a_long_fraction_is_read_as_pydantic_reads_it(
    stamp: str, pydantic_calls: list[str]
) -> None:
    [rec] = parse(notification(alert("t1", "resolved"), status="resolved"))
    rec["fired_at"] = stamp  # as a connector that kept the vendor's text would send it
    rec["resolved_at"] = "2026-10-04T14:00:00Z"
    got = record_entry(rec, WHERE, "record 1")
    want = by_pydantic(rec, "record 1")
    assert described(got) == described(want)
    fired = got[1][5]
    assert fired.microsecond in (123456, 999999)  # cut, not rounded
    assert len(pydantic_calls) == 1


def test_a_long_fraction_out_of_order_is_pydantic_s_error(pydantic_calls: list[str]) -> None:
    """Rounded (msgspec), the two times would be equal and the record valid; cut (pydantic),
    it resolves before it fired."""
    [rec] = parse(notification(alert("t2", "resolved"), status="resolved"))
    rec["fired_at"] = "2026-10-04T14:00:00.0000004Z"  # cut and rounded: 14:00:00
    rec["resolved_at"] = "2026-10-04T13:59:59.9999996Z"  # cut: .999999; rounded: 14:00:00
    with pytest.raises(RecordError) as fast:
        record_entry(rec, WHERE, "record 2")
    with pytest.raises(RecordError) as reference:
        by_pydantic(rec, "record 2")
    assert str(fast.value) == str(reference.value)
    assert "resolved_at" in str(fast.value)
    assert len(pydantic_calls) == 1
