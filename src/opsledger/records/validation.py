"""Strict validation of native records, with pydantic models built from `records.spec`.

JSON Lines are validated straight from the line's bytes (`validate_json`); CSV rows are first
turned into JSON by the field types of their kind, then take the same path, so that both forms
obey exactly the same rules.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import cache
from typing import Annotated, Any, Literal, NotRequired, Required, Union

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
)
from typing_extensions import TypedDict

from opsledger.core.cron import CronError
from opsledger.core.cron import parse as parse_cron
from opsledger.errors import RecordError
from opsledger.records.spec import KIND_BY_NAME, KINDS, FieldType, Kind
from opsledger.records.spec import Field as SpecField

Record = dict[str, Any]
_EMPTY: dict[str, Record] = {k.name: dict.fromkeys(k.field_names) for k in KINDS}
MONTH_RE = r"^[0-9]{4}-(0[1-9]|1[0-2])$"


def _cron(value: str) -> str:
    try:
        parse_cron(value)
    except CronError as exc:
        raise ValueError(str(exc)) from exc
    return value


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1  # JSON text in an object may hold it (orjson writes it exactly)


def _storable_numbers(value: Any) -> Any:
    """An object's numbers must be stored as they are: integers within 64 bits, floats finite
    (pydantic reads NaN, Infinity and 1e400 in an object; as JSON text they would become
    null). orjson, in C, refuses larger integers and writes null for a non-finite float, so
    only an object it refuses or whose JSON has a null needs a look in Python."""
    try:
        if b"null" not in orjson.dumps(value):
            return value
    except orjson.JSONEncodeError:
        pass
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
        elif isinstance(v, int) and not isinstance(v, bool) and not INT64_MIN <= v <= UINT64_MAX:
            raise ValueError(f"holds the integer {v}, beyond the 64 bits a number may have here")
        elif isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"holds the number {v}, which is not finite")
    return value


def _member(choices: tuple[str | int, ...]) -> Any:
    def check(value: int) -> int:
        if value not in choices:
            allowed = ", ".join(str(c) for c in choices)
            raise ValueError(f"must be one of {allowed}")
        return value

    return check


# Timestamps must carry an offset; those not in UTC are turned to UTC after validation (see
# _to_utc), which costs nothing for the usual `Z` timestamps.
UTCTime = AwareDatetime
_TIMES: dict[str, tuple[str, ...]] = {
    k.name: tuple(f.name for f in k.fields if f.type is FieldType.DATETIME) for k in KINDS
}


def _annotation(f: SpecField) -> Any:
    if f.choices is not None and isinstance(f.choices[0], int):
        base: Any = Annotated[StrictInt, AfterValidator(_member(f.choices))]
    elif f.choices is not None:
        base = Literal[f.choices]
    elif f.type is FieldType.STR:
        base = Annotated[StrictStr, Field(min_length=1)] if f.required or f.ref else StrictStr
    elif f.type is FieldType.INT:  # a database stores integers of 64 bits
        low = INT64_MIN if f.minimum is None else max(INT64_MIN, f.minimum)
        high = INT64_MAX if f.maximum is None else min(INT64_MAX, f.maximum)
        base = Annotated[StrictInt, Field(ge=low, le=high)]
    elif f.type is FieldType.FLOAT:
        base = Annotated[float, Field(ge=f.minimum, le=f.maximum, allow_inf_nan=False)]
    elif f.type is FieldType.BOOL:
        base = StrictBool
    elif f.type is FieldType.DATETIME:
        base = UTCTime
    elif f.type is FieldType.DATE:
        base = date
    elif f.type is FieldType.MONTH:
        base = Annotated[StrictStr, Field(pattern=MONTH_RE)]
    elif f.type is FieldType.OBJECT:
        base = Annotated[dict[str, Any], AfterValidator(_storable_numbers)]
    elif f.type is FieldType.CRON:
        base = Annotated[StrictStr, AfterValidator(_cron)]
    else:  # pragma: no cover - exhaustive
        raise AssertionError(f.type)
    return base if f.required else base | None


def _order_error(kind: Kind, record: Record) -> tuple[str, str] | None:
    """The first time-order rule of `kind` that `record` breaks: (field, message)."""
    for later, earlier in kind.order:
        a, b = record.get(later), record.get(earlier)
        if a is not None and b is not None and a < b:
            msg = (f"{later} ({plain_value(a)}) is before {earlier} ({plain_value(b)}): "
                   "times must not run backwards")
            return later, msg
    return None


@cache
def schema_for(kind_name: str, lenient: bool) -> Any:
    """The validation schema of one kind: a TypedDict whose absent fields stay absent (pydantic
    builds a plain dict from the JSON, which is much cheaper than a model instance)."""
    kind = KIND_BY_NAME[kind_name]
    fields: dict[str, Any] = {"kind": Required[Literal[kind.name]]}
    for f in kind.fields:
        fields[f.name] = Required[_annotation(f)] if f.required else NotRequired[_annotation(f)]
    make: Any = TypedDict  # the functional form, with a computed name
    td = make(f"{kind.name.title().replace('_', '')}Record", fields)
    td.__pydantic_config__ = ConfigDict(strict=True, extra="ignore" if lenient else "forbid")
    return td


@cache
def _union_adapter(lenient: bool) -> TypeAdapter[Any]:
    schemas = tuple(schema_for(k.name, lenient) for k in KINDS)
    union = Annotated[Union[schemas], Discriminator("kind")]  # type: ignore[valid-type]  # noqa: UP007
    return TypeAdapter(union)


_JSON_VALIDATE: dict[bool, Callable[[bytes | str], Any]] = {}


@cache
def _kind_adapter(kind_name: str, lenient: bool) -> TypeAdapter[Any]:
    return TypeAdapter(schema_for(kind_name, lenient))


def _describe(
    exc: ValidationError, source: str, location: str, tagged: bool = True
) -> RecordError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"]]
    etype = err["type"]
    if etype == "json_invalid":
        return RecordError(source, location, None, f"invalid JSON ({err['msg']})")
    if etype == "union_tag_invalid":
        known = ", ".join(k.name for k in KINDS)
        tag = err.get("ctx", {}).get("tag", "?")
        return RecordError(source, location, "kind", f"unknown kind '{tag}' (known: {known})")
    if etype == "union_tag_not_found":
        return RecordError(source, location, "kind", "missing (every JSON line needs a kind)")
    if etype in ("model_type", "model_attributes_type", "dict_type"):
        return RecordError(source, location, None, "a record must be a JSON object")
    # drop the union tag from the location
    if tagged and loc and loc[0] in KIND_BY_NAME:
        loc = loc[1:]
    field = ".".join(p for p in loc if not p.startswith("function-")) or None
    if etype == "time_order":
        return RecordError(source, location, str(err["ctx"]["later"]), err["msg"])
    msg = err["msg"]
    if etype == "extra_forbidden":
        msg = "unknown field (pass --lenient to keep unknown fields in the raw event only)"
    elif etype == "missing":
        msg = "required field is missing"
    elif etype == "timezone_aware":
        msg = "timestamp has no UTC offset (write e.g. 2026-10-04T13:22:05Z); it is never guessed"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    if "input" in err and etype not in ("missing", "extra_forbidden"):
        shown = json.dumps(err["input"], default=str)
        if len(shown) > 60:
            shown = shown[:57] + "..."
        msg = f"{msg} (got {shown})"
    return RecordError(source, location, field, msg)


def _storable(line: bytes | str, record: Record, source: str, location: str) -> None:
    """PostgreSQL text cannot hold NUL. In JSON a NUL is always written \\u0000, so only a
    line with that escape needs a look at its text fields."""
    if isinstance(line, bytes):
        if b"\\u0000" not in line:
            return
    elif "\\u0000" not in line:
        return
    for name, value in record.items():
        if isinstance(value, str) and "\x00" in value:
            reason = "contains a NUL character, which a database cannot store"
            raise RecordError(source, location, name, reason)


def _finish(
    kind: str, record: Record, line: bytes | str, source: str, location: str
) -> None:
    """What the schema does not say: timestamps to UTC (a non-zero offset is turned into the
    same instant in UTC), time order, and no NUL characters."""
    for name in _TIMES[kind]:
        value = record.get(name)
        if value is not None and value.utcoffset():
            record[name] = value.astimezone(UTC)
    spec = KIND_BY_NAME[kind]
    if spec.order:
        broken = _order_error(spec, record)
        if broken is not None:
            raise RecordError(source, location, broken[0], broken[1])
    _storable(line, record, source, location)


def validate_json_partial(
    line: bytes | str, source: str, location: str, lenient: bool = False
) -> tuple[str, Record]:
    """Validate one JSON Lines record. Returns (kind, record) where the record holds only the
    fields the line gave (absent fields are absent, not None): the importer's fast path."""
    validate = _JSON_VALIDATE.get(lenient)
    if validate is None:  # the schema validator itself: no wrapper call a line
        validate = _JSON_VALIDATE[lenient] = _union_adapter(lenient).validator.validate_json
    try:
        record: Record = validate(line)
    except ValidationError as exc:
        raise _describe(exc, source, location) from None
    kind: str = record.pop("kind")
    _finish(kind, record, line, source, location)
    return kind, record


def complete(kind: str, record: Record) -> Record:
    """A record with every field of its kind (absent ones None), in the kind's field order."""
    return {**_EMPTY[kind], **record}


def validate_json_line(
    line: bytes | str, source: str, location: str, lenient: bool = False
) -> tuple[str, Record]:
    """Validate one JSON Lines record. Returns (kind, normalised record with every field)."""
    kind, record = validate_json_partial(line, source, location, lenient)
    return kind, complete(kind, record)


def _cell(f: SpecField, raw: str, source: str, location: str) -> Any:
    t = f.type
    try:
        if t is FieldType.INT or (f.choices and isinstance(f.choices[0], int)):
            if not re.fullmatch(r"[+-]?[0-9]+", raw.strip()):
                raise ValueError("not an integer")
            return int(raw)
        if t is FieldType.FLOAT:
            return float(raw)
        if t is FieldType.BOOL:
            if raw in ("true", "false"):
                return raw == "true"
            raise ValueError("a boolean cell is 'true' or 'false'")
        if t is FieldType.OBJECT:
            value = json.loads(raw)
            if not isinstance(value, dict):
                raise ValueError("an object cell holds a JSON object")
            return value
    except (ValueError, json.JSONDecodeError) as exc:
        raise RecordError(source, location, f.name, f"{exc} (got {raw!r})") from None
    return raw


def validate_csv_row(
    kind: Kind, row: dict[str, str], source: str, location: str, lenient: bool = False
) -> tuple[str, Record]:
    """Validate one CSV row of `kind` (header -> cell). Empty cells are absent."""
    obj: dict[str, Any] = {"kind": kind.name}
    for name, raw in row.items():
        if raw == "" or raw is None:
            continue
        f = kind.by_name.get(name)
        if f is None:
            if lenient:
                continue
            raise RecordError(source, location, name, "unknown field (column)")
        obj[name] = _cell(f, raw, source, location)
    line = json.dumps(obj)
    try:
        record: Record = _kind_adapter(kind.name, lenient).validate_json(line)
    except ValidationError as exc:
        raise _describe(exc, source, location, tagged=False) from None
    got: str = record.pop("kind")
    _finish(got, record, line, source, location)
    return got, complete(got, record)


def canonical(record: Record) -> str:
    """Canonical JSON of a normalised record (absent fields left out), for digests and export."""
    return json.dumps(
        {k: plain_value(v) for k, v in record.items() if v is not None},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )


def plain_value(value: Any) -> Any:
    """A record value as JSON has it: timestamps RFC 3339 UTC with Z, dates ISO."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
