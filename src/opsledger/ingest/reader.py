"""Reading native record files: JSON Lines and CSV, streamed, with exact locations."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, NamedTuple

from opsledger.errors import RecordError, UsageError
from opsledger.records.fast import (
    NUL_ESCAPE,
    SOME_LONG_FRACTION,
    Values,
    decoder,
    unsure,
    values_of,
)
from opsledger.records.spec import Kind, kind_for_name
from opsledger.records.validation import Record, validate_csv_row, validate_json_partial

BOM = b"\xef\xbb\xbf"
JSONL_SUFFIXES = (".jsonl", ".ndjson")


KIND_KEY = "kind"  # a CSV row's kind, in its raw-log form (no CSV column may be named so)


class Item(NamedTuple):
    """One validated record and the raw input it came from."""

    kind: str
    record: Record  # every field, or (from the fast JSON path) only those given
    fmt: str  # "json" or "csv"
    payload: str  # the JSON line verbatim, or the CSV row as a JSON object with its kind


# What the importer applies: (kind, values in the kind's field order, form, raw line). The raw
# line is bytes when read from a JSON Lines file (stored as read), else text.
Entry = tuple[str, Values, str, str | bytes]
BLOCK = 5000  # lines read and validated together


def entry(item: Item) -> Entry:
    return (item.kind, values_of(item.kind, item.record), item.fmt, item.payload)


@dataclass(frozen=True)
class Source:
    """A file (or standard input) to import."""

    name: str
    fmt: str
    kind: Kind | None
    opener: Callable[[], IO[bytes]]
    size: int | None


def open_source(path: str, kind_name: str | None = None) -> Source:
    """Work out the form of `path` (`-` is JSON Lines on standard input)."""
    if path == "-":
        return Source("<stdin>", "json", None, lambda: sys.stdin.buffer, None)
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    suffix = p.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        fmt = "json"
    elif suffix == ".csv":
        fmt = "csv"
    else:
        raise UsageError(f"{path}: unknown file type {suffix!r}; use .jsonl, .ndjson or .csv")
    kind: Kind | None = None
    if fmt == "csv":
        name = kind_name or p.stem
        kind = kind_for_name(name)
        if kind is None:
            raise UsageError(
                f"{path}: cannot tell the kind of this CSV file from {name!r}; "
                "name the file after its kind (incidents.csv) or pass --kind"
            )
    elif kind_name is not None:
        raise UsageError(f"{path}: --kind applies to CSV files only (JSON lines carry a kind)")
    return Source(str(path), fmt, kind, lambda: p.open("rb"), p.stat().st_size)


def _check_start(head: bytes, source: str) -> None:
    if head.startswith(BOM):
        raise RecordError(
            source,
            "line 1",
            None,
            "file starts with a UTF-8 byte order mark; save it as UTF-8 without BOM",
        )


def read_items(
    src: Source, lenient: bool, progress: Callable[[int], None] | None = None
) -> Iterator[Item]:
    """Validate and yield every record of `src`; raise RecordError at the first bad one."""
    if src.size is None:
        progress = None  # standard input: no position to tell (a pipe cannot seek)
    stream = src.opener()
    try:
        if src.fmt == "json":
            yield from _read_jsonl(stream, src.name, lenient, progress)
        else:
            assert src.kind is not None
            yield from _read_csv(stream, src.name, src.kind, lenient, progress)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def read_entries(
    src: Source, lenient: bool, progress: Callable[[int], None] | None = None,
    size: int = BLOCK,
) -> Iterator[list[Entry]]:
    """Validate every record of `src`, in blocks of up to BLOCK entries; raise RecordError at
    the first bad one. JSON Lines take the fast path (records.fast), checked by pydantic."""
    if src.size is None:
        progress = None  # standard input: no position to tell (a pipe cannot seek)
    if src.fmt != "json":
        block: list[Entry] = []
        for item in read_items(src, lenient, progress):
            block.append(entry(item))
            if len(block) >= size:
                yield block
                block = []
        if block:
            yield block
        return
    stream = src.opener()
    try:
        yield from _read_jsonl_blocks(stream, src.name, lenient, progress, size)
    finally:
        if stream is not sys.stdin.buffer:
            stream.close()


def _read_jsonl_blocks(
    stream: IO[bytes], source: str, lenient: bool, progress: Callable[[int], None] | None,
    size: int,
) -> Iterator[list[Entry]]:
    fast = decoder(lenient)
    seen = 0
    lineno = 0
    while True:
        raws = stream.readlines(1 << 21)  # about 2 MiB of whole lines
        if not raws:
            break
        if lineno == 0:
            _check_start(raws[0], source)
        first = lineno + 1
        lineno += len(raws)
        block = entries_of_lines(fast, raws, first, source, lenient)
        for start in range(0, len(block), size):
            part = block[start : start + size]
            seen += len(part)
            yield part
        if progress is not None:
            progress(stream.tell())
    if seen == 0:
        raise RecordError(source, "", None, "the file is empty (no records)")


def entries_of_lines(
    fast: Callable[[bytes], Entry | None], raws: list[bytes], first: int, source: str,
    lenient: bool,
) -> list[Entry]:
    """The entries of JSON lines (bytes, with or without their line breaks; `first` is the
    number of the first line, for errors): the fast path where it is sure, pydantic for the
    rest, blank lines skipped. Raises RecordError at the first bad line."""
    got = _fast_entries(fast, raws, lenient)
    if None in got:
        return _complete(got, raws, first, source, lenient)
    return got  # type: ignore[return-value]  # no None in it


def _fast_entries(
    fast: Callable[[bytes], Entry | None], raws: list[bytes], lenient: bool
) -> list[Entry | None]:
    """The fast path's entries of `raws`, None for the lines that pydantic must validate:
    those the fast path declines and those it might read otherwise than pydantic."""
    whole = b"".join(raws)
    nul = NUL_ESCAPE in whole
    fraction = SOME_LONG_FRACTION.search(whole) is not None
    if lenient:
        try:
            whole.decode("utf-8")  # msgspec skips unknown fields without reading them
        except UnicodeDecodeError:
            return [None] * len(raws)
    del whole
    got: list[Entry | None] = list(map(fast, raws))
    if nul or fraction:  # the block holds one: find its lines
        for i, raw in enumerate(raws):
            if unsure(raw):
                got[i] = None
    return got


def _complete(
    got: list[Entry | None], raws: list[bytes], first: int, source: str, lenient: bool
) -> list[Entry]:
    """The entries of a block, pydantic validating the lines the fast path left (in order:
    the first bad line is the one reported); blank lines are skipped."""
    block: list[Entry] = []
    for n, (raw, entry) in enumerate(zip(raws, got, strict=True), first):
        if entry is None:
            read = _pydantic_line(raw, source, n, lenient)
            if read is None:
                continue
            kind, record, line, _ = read
            entry = (kind, values_of(kind, record), "json", line)
        block.append(entry)
    return block


def _pydantic_line(
    raw: bytes, source: str, lineno: int, lenient: bool
) -> tuple[str, Record, bytes, str] | None:
    """One JSON line validated by pydantic: (kind, record, the line without its break, as
    bytes and as text), None for a blank line. Raises RecordError naming the line."""
    line = raw.rstrip(b"\r\n")
    if line[:1] != b"{" and not line.strip():  # a record starts with "{"; skip blank lines
        return None
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(
            source, f"line {lineno}", None, f"not valid UTF-8 (byte {exc.start + 1})"
        ) from None
    kind, record = validate_json_partial(text, source, f"line {lineno}", lenient)
    return kind, record, line, text


def _read_jsonl(
    stream: IO[bytes], source: str, lenient: bool, progress: Callable[[int], None] | None
) -> Iterator[Item]:
    seen = 0
    for lineno, raw in enumerate(stream, 1):
        if lineno == 1:
            _check_start(raw, source)
        if progress is not None and lineno % 2048 == 0:
            progress(stream.tell())
        read = _pydantic_line(raw, source, lineno, lenient)
        if read is None:
            continue
        kind, record, _, text = read
        seen += 1
        yield Item(kind, record, "json", text)
    if seen == 0:
        raise RecordError(source, "", None, "the file is empty (no records)")


def _read_csv(
    stream: IO[bytes],
    source: str,
    kind: Kind,
    lenient: bool,
    progress: Callable[[int], None] | None,
) -> Iterator[Item]:
    buffered: Any = stream if hasattr(stream, "peek") else io.BufferedReader(stream)
    _check_start(buffered.peek(3)[:3], source)
    text = io.TextIOWrapper(buffered, encoding="utf-8", errors="strict", newline="")
    try:
        reader = csv.reader(text, strict=True)
        try:
            header = next(reader, None)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise RecordError(source, "line 1", None, _csv_reason(exc)) from None
        if not header:
            raise RecordError(source, "", None, "the file is empty (no header row)")
        _check_header(header, kind, source, lenient)
        rowno = 0
        while True:
            try:
                cells = next(reader, None)
            except (UnicodeDecodeError, csv.Error) as exc:
                where = f"row {rowno + 1} (line {reader.line_num + 1})"
                raise RecordError(source, where, None, _csv_reason(exc)) from None
            if cells is None:
                break
            rowno += 1
            where = f"row {rowno} (line {reader.line_num})"
            if not cells:
                continue
            if len(cells) != len(header):
                raise RecordError(
                    source, where, None, f"{len(cells)} cells, but the header has {len(header)}"
                )
            row = dict(zip(header, cells, strict=True))
            kind_name, record = validate_csv_row(kind, row, source, where, lenient)
            if progress is not None and rowno % 2048 == 0:
                progress(buffered.tell())
            raw = json.dumps({KIND_KEY: kind_name, **row}, ensure_ascii=False)
            yield Item(kind_name, record, "csv", raw)
        if rowno == 0:
            raise RecordError(source, "", None, "the file has a header but no rows")
    finally:
        text.close()


def _csv_reason(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not valid UTF-8"
    return f"malformed CSV ({exc})"


def _check_header(header: list[str], kind: Kind, source: str, lenient: bool) -> None:
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise RecordError(source, "line 1 (header)", name, "column appears twice")
        seen.add(name)
        if name == KIND_KEY:
            raise RecordError(
                source,
                "line 1 (header)",
                name,
                "CSV files hold one kind: give it by file name or --kind, not as a column",
            )
        if name not in kind.by_name and not lenient:
            raise RecordError(
                source, "line 1 (header)", name, f"unknown field for kind '{kind.name}'"
            )
    if "id" not in seen:
        raise RecordError(source, "line 1 (header)", "id", "required column is missing")
