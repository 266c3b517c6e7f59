"""The raw input log: every accepted input line, kept append-only in compressed chunks.

An import writes the lines that changed the ledger in chunks (`raw_chunks`: one row per batch
of up to a few thousand lines, Zstandard-compressed, with the import, the form of the lines and the
vendor payload they came from). A record row points at the line of its current version
(`_raw`, `_line`); `record_versions` points at the lines of the versions that later imports
replaced. Replaying every chunk in order re-derives all of it (`opsledger rebuild`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import zstandard
from sqlalchemy import Connection, select

from opsledger.core.sql import driver, placeholder, returning_id
from opsledger.errors import NotFoundError
from opsledger.records.spec import KIND_BY_NAME
from opsledger.records.tables import (
    DIGEST,
    IMPORT,
    LINE,
    RAW,
    RECORD_TABLES,
    imports,
    raw_chunks,
    record_versions,
)

# Chunks are Zstandard frames, level 1: a third of zlib's time (level 1) for smaller output
# (91 MB of benchmark JSON Lines in 9.6 MB). A compressor or decompressor object must not be
# used by two threads at once (python-zstandard's rule; the server's writer threads did, and
# crashed the process in its C code): each thread has its own.
_CODECS = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    found: zstandard.ZstdCompressor | None = getattr(_CODECS, "compress", None)
    if found is None:
        found = _CODECS.compress = zstandard.ZstdCompressor(level=1)
    return found


def _decompressor() -> zstandard.ZstdDecompressor:
    found: zstandard.ZstdDecompressor | None = getattr(_CODECS, "decompress", None)
    if found is None:
        found = _CODECS.decompress = zstandard.ZstdDecompressor()
    return found


def encode(lines: list[str | bytes]) -> bytes:
    """Lines as UTF-8 text (str) or as read from a file (bytes, valid UTF-8: validated)."""
    data = [line.encode("utf-8") if isinstance(line, str) else line for line in lines]
    for line in data:
        if b"\n" in line:  # cannot happen for input read line by line; guard the format
            raise ValueError("a raw input line cannot hold a line break")
    return _compressor().compress(b"\n".join(data))


def decode(body: bytes) -> list[str]:
    return _decompressor().decompress(body).decode("utf-8").split("\n")


def new_chunk(
    conn: Connection, import_id: int, fmt: str, lenient: bool, inbound_id: int | None = None
) -> int:
    """Start a chunk (its seq is known before its lines are: records point at them)."""
    return returning_id(
        conn, _NEW_CHUNK.format(mark=placeholder(conn)), (import_id, fmt, lenient, b"", inbound_id)
    )


def fill_chunk(conn: Connection, seq: int, lines: list[str | bytes]) -> None:
    driver(conn).execute(
        _FILL_CHUNK.format(mark=placeholder(conn)), (len(lines), encode(lines), seq)
    )


def write_chunk(
    conn: Connection,
    seq: int,
    import_id: int,
    fmt: str,
    lenient: bool,
    inbound_id: int | None,
    lines: list[str | bytes],
) -> None:
    """A chunk whose seq was reserved ahead (importer.Reservation), written whole."""
    driver(conn).execute(
        _WRITE_CHUNK.format(mark=placeholder(conn)),
        (seq, import_id, fmt, lenient, len(lines), encode(lines), inbound_id),
    )


# on the driver (core.sql.driver): the webhook writer starts and fills a chunk for every
# transaction of a few payloads
_NEW_CHUNK = (
    f'INSERT INTO "{raw_chunks.name}" ("import_id", "format", "lenient", "lines", "body", '
    '"inbound_id") VALUES ({mark}, {mark}, {mark}, 0, {mark}, {mark}) RETURNING "seq"'
)
_WRITE_CHUNK = (
    f'INSERT INTO "{raw_chunks.name}" ("seq", "import_id", "format", "lenient", "lines", '
    '"body", "inbound_id") VALUES ({mark}, {mark}, {mark}, {mark}, {mark}, {mark}, {mark})'
)
_FILL_CHUNK = (
    f'UPDATE "{raw_chunks.name}" SET "lines" = {{mark}}, "body" = {{mark}} '
    'WHERE "seq" = {mark}'
)


@dataclass(frozen=True)
class RawLine:
    """One line of the raw log and where it came from."""

    seq: int  # raw_chunks.seq
    line: int  # position in the chunk
    import_id: int
    format: str
    lenient: bool
    inbound_id: int | None
    payload: str


# the columns a RawLine is made of, in the order _lines takes them
_CHUNK = (
    raw_chunks.c.seq,
    raw_chunks.c.import_id,
    raw_chunks.c.format,
    raw_chunks.c.lenient,
    raw_chunks.c.inbound_id,
    raw_chunks.c.body,
)


def iter_lines(conn: Connection) -> Iterator[RawLine]:
    """Every line of the log, in the order it was stored."""
    query = select(*_CHUNK).order_by(raw_chunks.c.seq)
    for seq, import_id, fmt, lenient, inbound_id, body in conn.execute(
        query, execution_options={"yield_per": 50}
    ):
        for n, payload in enumerate(decode(body)):
            yield RawLine(seq, n, import_id, fmt, bool(lenient), inbound_id, payload)


def read_lines(
    conn: Connection, pointers: Iterable[tuple[int, int]]
) -> dict[tuple[int, int], RawLine]:
    """The raw lines at (seq, line) pointers."""
    wanted: dict[int, set[int]] = {}
    for seq, line in pointers:
        wanted.setdefault(seq, set()).add(line)
    out: dict[tuple[int, int], RawLine] = {}
    seqs = sorted(wanted)
    for start in range(0, len(seqs), 500):
        rows = conn.execute(select(*_CHUNK).where(raw_chunks.c.seq.in_(seqs[start : start + 500])))
        for seq, import_id, fmt, lenient, inbound_id, body in rows:
            lines = decode(body)
            for n in wanted[seq]:
                out[(seq, n)] = RawLine(seq, n, import_id, fmt, bool(lenient), inbound_id, lines[n])
    return out


@dataclass(frozen=True)
class Version:
    """One stored version of a record: its raw line and the import that brought it."""

    import_id: int
    digest: str
    raw: RawLine
    current: bool
    source: str  # the import's source (file name, or connector and how)
    imported_at: object  # datetime of the import


def versions(conn: Connection, kind: str, record_id: str) -> list[Version]:
    """Every version of a record that the log holds, oldest first, the current one last.
    Raises NotFoundError when no record of that kind and id is stored."""
    if kind not in KIND_BY_NAME:
        raise NotFoundError(f"unknown kind {kind!r}")
    table = RECORD_TABLES[kind]
    current = conn.execute(
        select(table.c[IMPORT], table.c[DIGEST], table.c[RAW], table.c[LINE]).where(
            table.c.id == record_id
        )
    ).first()
    if current is None:
        raise NotFoundError(f"no {kind} with id {record_id!r}")
    rows: list[tuple[int, str, int, int, bool]] = [
        (imp, dig, raw, line, False)
        for imp, dig, raw, line in conn.execute(
            select(
                record_versions.c.import_id,
                record_versions.c.digest,
                record_versions.c.raw,
                record_versions.c.line,
            )
            .where(record_versions.c.kind == kind, record_versions.c.record_id == record_id)
            .order_by(record_versions.c.raw, record_versions.c.line)
        )
    ]
    rows.append((current[0], current[1], current[2], current[3], True))
    lines = read_lines(conn, [(r[2], r[3]) for r in rows])
    sources = {
        i: (s, t)
        for i, s, t in conn.execute(
            select(imports.c.id, imports.c.source, imports.c.imported_at).where(
                imports.c.id.in_({r[0] for r in rows})
            )
        )
    }
    return [
        Version(imp, dig, lines[(raw, line)], cur, *sources.get(imp, ("?", None)))
        for imp, dig, raw, line, cur in rows
    ]
