"""A fast path for validating JSON Lines records: msgspec structs, checked against pydantic.

`records.validation` (pydantic) is the reference: it defines what a valid record is and what
an error says. This module accepts a subset of what it accepts, with the same values, at
about a third of the cost: msgspec decodes a line straight into a struct of its kind, and
the struct's values, in the kind's field order, are what the importer stores and digests.
Whenever this path is not sure (any error, a check it does not make, a value it might read
differently), it answers None and the caller validates the line with pydantic, which then
accepts it or raises the exact error. tests/ingest/test_fast_validation.py holds the two to
the same answers on adversarial input.

Where msgspec would read a line differently from pydantic, the line goes to pydantic:
- timestamps with more than six fractional digits (msgspec rounds them, pydantic truncates);
- month fields are matched with `\\Z` (Python's `$` also matches before a final newline);
- integers beyond 64 bits (not storable; pydantic's path reports them);
- in lenient mode, lines that are not valid UTF-8 (msgspec skips unknown fields unread).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal, Union

import msgspec
import orjson
from msgspec import Meta

from opsledger.core.cron import CronError
from opsledger.core.cron import parse as parse_cron
from opsledger.records.spec import KIND_BY_NAME, KINDS, FieldType, Kind
from opsledger.records.spec import Field as SpecField
from opsledger.records.validation import INT64_MAX, INT64_MIN, MONTH_RE

Values = tuple[Any, ...]  # a record's values in its kind's field order, absent ones None

_MONTH = MONTH_RE.removesuffix("$") + r"\Z"  # pydantic's pattern, whose `$` is the end
# a timestamp with 7 or more fractional digits: msgspec rounds, pydantic truncates (the first
# pattern is a quick look at a whole block, the second the exact one for its lines)
SOME_LONG_FRACTION = re.compile(rb"\.[0-9]{7}")
LONG_FRACTION = re.compile(rb"[0-9]:[0-9][0-9]\.[0-9]{7}")
NUL_ESCAPE = b"\\u0000"  # JSON writes a NUL only so; the pydantic path rejects NUL in text


def unsure(line: bytes) -> bool:
    """Whether pydantic must read a line whatever the fast path makes of it: a NUL escape
    (pydantic refuses NUL in text), or a timestamp with over six fractional digits (msgspec
    rounds, pydantic truncates). The quick pattern first: LONG_FRACTION, which starts with a
    digit class, tries every byte of the line (5.6 us for a 731-byte alert line), the quick
    one jumps from dot to dot (0.9 us), and a line it does not match cannot match the other."""
    if NUL_ESCAPE in line:
        return True
    return SOME_LONG_FRACTION.search(line) is not None and LONG_FRACTION.search(line) is not None


def _annotation(f: SpecField) -> Any:
    if f.choices is not None:
        return Literal[f.choices]
    t = f.type
    if t is FieldType.STR:
        return Annotated[str, Meta(min_length=1)] if f.required or f.ref else str
    if t is FieldType.INT:
        low = INT64_MIN if f.minimum is None else max(INT64_MIN, f.minimum)
        high = INT64_MAX if f.maximum is None else min(INT64_MAX, f.maximum)
        return Annotated[int, Meta(ge=low, le=high)]
    if t is FieldType.FLOAT:
        return Annotated[float, Meta(ge=f.minimum, le=f.maximum)]
    if t is FieldType.BOOL:
        return bool
    if t is FieldType.DATETIME:
        return Annotated[datetime, Meta(tz=True)]
    if t is FieldType.DATE:
        return date
    if t is FieldType.MONTH:
        return Annotated[str, Meta(pattern=_MONTH)]
    if t is FieldType.OBJECT:
        return dict[str, Any]
    if t is FieldType.CRON:
        return str  # checked after decoding
    raise AssertionError(t)  # pragma: no cover - exhaustive


@dataclass(frozen=True)
class Plan:
    """What is checked after decoding a struct of one kind (indexes into its values)."""

    times: tuple[int, ...]
    order: tuple[tuple[int, int], ...]  # (later, earlier)
    crons: tuple[int, ...]
    objects: tuple[int, ...]


def _plan(kind: Kind) -> Plan:
    index = {f.name: i for i, f in enumerate(kind.fields)}
    return Plan(
        tuple(i for i, f in enumerate(kind.fields) if f.type is FieldType.DATETIME),
        tuple((index[a], index[b]) for a, b in kind.order),
        tuple(i for i, f in enumerate(kind.fields) if f.type is FieldType.CRON),
        tuple(i for i, f in enumerate(kind.fields) if f.type is FieldType.OBJECT),
    )


def object_text(value: Any) -> str:
    """An object field's value as the ledger holds it: JSON with its keys sorted (so that the
    order of keys in the input changes nothing). Raises orjson.JSONEncodeError for an integer
    beyond 64 bits (validation rejects those)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _to_utc(values: Values, times: tuple[int, ...]) -> Values:
    return tuple(
        v.astimezone(UTC) if i in times and v is not None else v for i, v in enumerate(values)
    )


def _cron_ok(value: str) -> bool:
    try:
        parse_cron(value)
    except CronError:
        return False
    return True


def _checker(plan: Plan) -> Callable[[Values], Values | None] | None:
    """The checks of one kind as straight-line code (no loops over its fields: this runs for
    every record): timestamps with a non-zero offset to UTC, time order, cron expressions,
    objects to their JSON text (an integer beyond 64 bits fails there). It returns the values
    (converted) or None for "ask pydantic"."""
    if not plan.times and not plan.crons and not plan.objects:
        return None
    code = ["def check(values):"]
    if plan.times:
        names = [f"t{i}" for i in plan.times]
        code.append(f"    {', '.join(names)}, = {', '.join(f'values[{i}]' for i in plan.times)},")
        offset = " or ".join(f"({n} is not None and {n}.tzinfo is not UTC)" for n in names)
        code.append(f"    if {offset}:")
        code.append(f"        values = to_utc(values, {plan.times!r})")
        for later, earlier in plan.order:  # aware timestamps compare as instants
            code.append(f"    if t{later} is not None and t{earlier} is not None"
                        f" and t{later} < t{earlier}:")
            code.append("        return None")
    for i in plan.crons:
        code.append(f"    if values[{i}] is not None and not cron_ok(values[{i}]):")
        code.append("        return None")
    if plan.objects:
        names = [f"o{i}" for i in plan.objects]
        code.append(f"    {', '.join(names)}, = {', '.join(f'values[{i}]' for i in plan.objects)},")
        code.append(f"    if {' or '.join(f'{n} is not None' for n in names)}:")
        code.append("        values = list(values)")
        code.append("        try:")
        for i, n in zip(plan.objects, names, strict=True):
            code.append(f"            if {n} is not None:")
            code.append(f"                values[{i}] = text({n})")
        code.append("        except JSONEncodeError:")
        code.append("            return None")
        code.append("        return tuple(values)")
    code.append("    return values")
    scope: dict[str, Any] = {
        "UTC": UTC, "to_utc": _to_utc, "cron_ok": _cron_ok, "text": object_text,
        "JSONEncodeError": orjson.JSONEncodeError,
    }
    exec("\n".join(code), scope)  # noqa: S102 - code built above from the kind's field indexes
    check: Callable[[Values], Values | None] = scope["check"]
    return check


def _struct(kind: Kind, lenient: bool) -> type[msgspec.Struct]:
    fields: list[Any] = []
    for f in kind.fields:
        ann = _annotation(f)
        fields.append((f.name, ann) if f.required else (f.name, ann | None, None))
    return msgspec.defstruct(
        f"Fast{kind.name.title().replace('_', '')}",
        fields,
        kw_only=True,  # the kind's field order, required or not
        tag_field="kind",
        tag=kind.name,
        forbid_unknown_fields=not lenient,
        gc=False,  # decoded JSON holds no reference cycles
    )


Plans = dict[type, tuple[str, Callable[[Values], Values | None] | None]]


@cache
def _decoder(lenient: bool) -> tuple[Callable[[bytes], Any], Plans]:
    plans: Plans = {}
    for k in KINDS:
        plans[_struct(k, lenient)] = (k.name, _checker(_plan(k)))
    union = Union[tuple(plans)]  # type: ignore[valid-type]  # noqa: UP007
    return msgspec.json.Decoder(union).decode, plans


FastEntry = tuple[str, Values, str, bytes]


def decoder(lenient: bool) -> Callable[[bytes], FastEntry | None]:
    """A function from one JSON line as read (bytes, with or without its line break) to the
    entry the importer applies, (kind, values, "json", the line without its break), or None
    when pydantic must validate the line (it may be valid or not)."""
    decode, plans = _decoder(lenient)
    astuple = msgspec.structs.astuple
    errors = (msgspec.ValidationError, msgspec.DecodeError)

    def fast(raw: bytes) -> FastEntry | None:
        line = raw.rstrip(b"\r\n")
        try:
            struct = decode(line)
        except errors:
            return None
        kind, check = plans[type(struct)]
        if check is None:
            return kind, astuple(struct), "json", line
        values = check(astuple(struct))
        if values is None:
            return None
        return kind, values, "json", line

    return fast


@cache
def field_names(kind: str) -> tuple[str, ...]:
    return KIND_BY_NAME[kind].field_names


@cache
def object_fields(kind: str) -> tuple[int, ...]:
    return _plan(KIND_BY_NAME[kind]).objects


def values_of(kind: str, record: dict[str, Any]) -> Values:
    """The values of a validated record (a dict) in its kind's field order, as the fast path
    gives them (objects as their JSON text)."""
    objects = object_fields(kind)
    if not objects:
        return tuple(map(record.get, field_names(kind)))
    values = list(map(record.get, field_names(kind)))
    for i in objects:
        v = values[i]
        if v is not None:
            values[i] = object_text(v)
    return tuple(values)
