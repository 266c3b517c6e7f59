"""The webhook writer: one thread owns the database connection that stores webhook payloads,
and applies every payload that is waiting in ONE transaction (group commit).

A request hands its parsed payload to the writer and waits; the writer takes all the payloads
that arrived while it was busy (up to MAX_BATCH), applies each inside a SAVEPOINT of one
transaction, commits, and only then answers each request. So:

* nothing acknowledged is lost: a 202 is sent after the commit that stored the payload;
* each payload is all-or-nothing on its own: one that fails (a record that does not
  validate once merged with what is stored, a refusal of a connector's `prepare`) is rolled
  back to its savepoint and refused alone, logged in the rejected-payload log in the same
  transaction, while the others of the batch are stored;
* the token of every payload is checked again against the database in that transaction
  (one query for the batch), so a revoked token stores nothing, whatever the token cache
  of the request path still believes;
* on SQLite there is one writer per process, so requests no longer wait for each other's
  write lock; a batch costs one transaction and one commit however many payloads it holds.

Refusals decided before the writer (401, 413, 400, ...) are logged through it as well, so
that every write of the webhook path goes through the one connection.

The thread starts with the first payload and ends after IDLE_SECONDS without work (it is
started again when needed), so an app that is never served holds no thread or connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import queue
import sqlite3
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Engine, event

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: one server process a database there
    fcntl = None  # type: ignore[assignment]

from opsledger.access import TokenCache, active_token_hashes
from opsledger.api.batch import (
    Loading,
    Payload,
    apply_batch,
    batchable,
    imports_needed,
    payload_keys,
)
from opsledger.api.problems import Problem
from opsledger.connectors.base import Connector, NativeRecord, PayloadError
from opsledger.core.db import make_engine
from opsledger.core.sql import driver, pipeline, queue_commit
from opsledger.errors import RecordError
from opsledger.ingest.importer import RESERVE_IDS, ImportResult, Reservation
from opsledger.ingest.inbound import ingest_records, log_rejected
from opsledger.kpis.policy import Policy

MAX_BATCH = 256  # payloads in one transaction
MAX_BATCH_BYTES = 8 * 1024 * 1024  # bodies in one transaction
IDLE_SECONDS = 5.0


class Logged(Problem):
    """A refusal that the writer has logged in the rejected-payload log already."""


class _Redo(Exception):
    """The batch path failed part-way: roll the transaction back, do it again without it."""


@dataclass(eq=False)
class Job:
    """One payload to store (connector set) or one refusal to log (connector None)."""

    name: str
    body: bytes
    remote: str | None
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    connector: Connector | None = None
    records: list[NativeRecord] = field(default_factory=list)
    token_hash: str | None = None
    status: int = 0
    reason: str = ""
    outcome: Any = None


_STOP = object()


def writer_engine(engine: Engine) -> Engine:
    """The engine the writer uses. PostgreSQL: the app's. SQLite: one of its own whose
    transactions start with BEGIN IMMEDIATE (the write lock is taken at once, and pysqlite's
    implicit transaction handling, which breaks SAVEPOINT, is off), with the settings of
    `_writer_pragmas`."""
    if engine.dialect.name != "sqlite":
        return engine
    writer = make_engine(engine.url.render_as_string(hide_password=False), "BEGIN IMMEDIATE")
    event.listen(writer, "connect", _writer_pragmas)
    return writer


def sqlite_file(engine: Engine) -> str | None:
    """The absolute path of the SQLite database file of `engine`; None on PostgreSQL, for an
    in-memory database and for a `file:` URI."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return None
    return None if database.startswith("file:") else os.path.abspath(database)


# SQLite: the writer's own connection leaves the copying of its WAL back into the database to
# a Checkpointer, and checkpoints itself only once the WAL holds this many pages (a backstop:
# see Checkpointer).
BACKSTOP_PAGES = 2000


def _writer_pragmas(dbapi_conn: Any, _record: Any) -> None:
    """The writer's SQLite connection. `temp_store=MEMORY`: its statement journals stay in
    memory. SQLite keeps one for a statement that changes several rows inside a transaction
    (the upserts of a batch), and writes it to a temporary file beyond 64 KiB, four pages of
    16 KiB: 22 of the 60 writes to files of a transaction of 4 payloads of 10 alerts went
    there (strace). The writer's statements are small, so this costs little memory.
    `wal_autocheckpoint`: the backstop of Checkpointer."""
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA temp_store=MEMORY")
    cur.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
    cur.close()


class Checkpointer:
    """SQLite: copies the WAL back into the database file (a PASSIVE checkpoint) in a thread
    of its own, every CHECKPOINT_EVERY commits of the writer, so that the writer's commits do
    not do it. A checkpoint writes every page the WAL holds into the database and flushes both
    files to disk: SQLite runs one in the commit that takes the WAL over 1,000 pages (its
    default), and that commit then waits for two flushes, a fifth of the writer's time a
    payload (docs/benchmarks.md). The thread runs SQLite's C code without the GIL.

    A PASSIVE checkpoint never blocks the writer, but the WAL starts again from its beginning
    only when every page of it has been copied when the writer begins a transaction; under
    steady load the writer adds pages while the thread copies, and the WAL could grow without
    end. So the writer's connection still checkpoints itself once the WAL holds
    BACKSTOP_PAGES (`wal_autocheckpoint`): by then the thread has copied most of it, and
    the WAL starts again. Each server process (`serve --workers N`) has its own; SQLite lets
    one checkpoint run at a time and the others give up at once (PASSIVE).

    The thread starts with the first signal and ends after IDLE_SECONDS without one, after a
    last checkpoint."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.frames = 0  # WAL frames copied by this thread's checkpoints (for tests)
        self.runs = 0
        self._commits = 0
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = False

    @classmethod
    def of(cls, engine: Engine) -> Checkpointer | None:
        path = sqlite_file(engine)
        return cls(path) if path is not None else None

    def committed(self) -> None:
        """The writer committed a transaction (called by the writer's thread)."""
        self._commits += 1
        if self._commits < CHECKPOINT_EVERY:
            return
        self._commits = 0
        with self._lock:
            self._wake.set()
            if self._thread is None:
                self._stop = False
                self._thread = threading.Thread(
                    target=self._run, name="opsledger-checkpointer", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None)
        except sqlite3.Error:  # the writer's own checkpoints (the backstop) go on
            with self._lock:
                self._thread = None  # tried again at the next signal
            return
        try:
            while True:
                woken = self._wake.wait(IDLE_SECONDS)
                with self._lock:
                    self._wake.clear()
                    ending = self._stop or not woken
                    if ending:
                        self._thread = None
                self._checkpoint(conn)
                if ending:
                    return
        finally:
            conn.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        with contextlib.suppress(sqlite3.Error):  # busy, or the file is gone: next time
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            if row is not None and row[2] > 0:
                self.frames += int(row[2])
            self.runs += 1

    def close(self) -> None:
        """Stop the thread after a last checkpoint (the server's shutdown)."""
        with self._lock:
            thread = self._thread
            self._stop = True
            self._wake.set()
        if thread is not None:
            thread.join()


CHECKPOINT_EVERY = 32


# The PostgreSQL advisory lock a webhook writer holds for its transaction (a constant of
# opsledger's own: "opsl" "wrtr" in ASCII).
WRITER_LOCK = 0x6F70736C_77727472


class WriteTurn:
    """The writers of several server processes (`serve --workers N`) on one SQLite file take
    turns at its write lock through an exclusive `flock` on a file next to the database
    (`<database>-writer`): a writer that waits is woken the moment the other one's
    transaction ends. Without it, the one that finds SQLite's lock taken sleeps in SQLite's
    busy handler, 1, 2, 5, ... up to 100 ms between looks (p99 of 0.7-1.1 s measured with
    two workers). Other programs on the database (an import) still meet SQLite's lock and
    its busy timeout, as before."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    @classmethod
    def of(cls, engine: Engine) -> contextlib.AbstractContextManager[Any]:
        path = sqlite_file(engine)
        if path is None or fcntl is None:
            return contextlib.nullcontext()
        return cls(f"{path}-writer")

    def __enter__(self) -> None:
        assert fcntl is not None
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)  # waits without holding the GIL

    def __exit__(self, *exc: object) -> None:
        assert fcntl is not None and self._fd is not None
        fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def writer_threads(engine: Engine) -> int:
    """How many writer threads (each with its connection) a server process runs: one on
    SQLite, whose write lock lets one transaction write at a time; PG_WRITERS on PostgreSQL,
    so that one transaction is built in Python while another is on the server (round trips
    and the server's work)."""
    return PG_WRITERS if engine.dialect.name == "postgresql" else 1


PG_WRITERS = 2


class Writer:
    def __init__(
        self, engine: Engine, policy: Policy | None, tokens: TokenCache, threads: int = 1
    ) -> None:
        self._app_engine = engine
        self._engine: Engine | None = None
        self.policy = policy
        self.tokens = tokens
        self._queue: queue.SimpleQueue[Job | object] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._size = threads
        self._threads: list[threading.Thread] = []
        self._turn: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self.checkpointer: Checkpointer | None = None
        self.batches = 0  # transactions committed (for tests and benchmarks)

    # ------------------------------------------------------------------ the request side

    async def ingest(
        self,
        connector: Connector,
        records: list[NativeRecord],
        body: bytes,
        token_hash: str | None,
        remote: str | None,
    ) -> ImportResult:
        """Store a parsed payload; returns after the commit. Raises Logged (a refusal,
        logged) or the error that kept the payload from being stored."""
        loop = asyncio.get_running_loop()
        job = Job(connector.name, body, remote, loop, loop.create_future(), connector,
                  records, token_hash)
        self._submit(job)
        result: ImportResult = await job.future
        return result

    async def reject(
        self, name: str, status: int, reason: str, body: bytes, remote: str | None
    ) -> None:
        """Log a refusal in the rejected-payload log; returns after the commit."""
        loop = asyncio.get_running_loop()
        job = Job(name, body, remote, loop, loop.create_future(), status=status, reason=reason)
        self._submit(job)
        await job.future

    def _submit(self, job: Job) -> None:
        with self._lock:
            self._queue.put(job)
            if not self._threads:
                self._start()

    def _start(self) -> None:
        """Start the writer threads (with self._lock held)."""
        for _ in range(self._size):
            thread = threading.Thread(
                target=self._run, name="opsledger-webhook-writer", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def close(self) -> None:
        """Finish what is queued, then stop the threads (the server's shutdown). A payload
        that comes later starts them again."""
        with self._lock:
            threads = list(self._threads)
            for _ in threads:
                self._queue.put(_STOP)
        for thread in threads:
            thread.join()
        if isinstance(self._turn, WriteTurn):
            self._turn.close()
        if self.checkpointer is not None:
            self.checkpointer.close()
        if self._engine is not None and self._engine is not self._app_engine:
            self._engine.dispose()

    # ------------------------------------------------------------------ the writer thread

    def _run(self) -> None:
        conn: Connection | None = None
        me = threading.current_thread()
        try:
            while True:
                try:
                    first = self._queue.get(timeout=IDLE_SECONDS)
                    idle = False
                except queue.Empty:
                    first, idle = _STOP, True  # end the thread, unless work came in meanwhile
                batch, stop = self._drain(first)
                if batch:
                    conn = self._apply(conn, batch)
                if stop:
                    with self._lock:
                        if idle and not self._queue.empty():
                            continue
                        # idle, or close()'s stop (one for each thread): this thread ends; a
                        # payload queued since, with no thread left, starts them again
                        self._threads.remove(me)
                        if not self._threads and not self._queue.empty():
                            self._start()
                        return
        finally:
            if conn is not None:
                _discard(conn)

    def _drain(self, first: Job | object) -> tuple[list[Job], bool]:
        """The first job and every job waiting behind it, within the batch limits."""
        if first is _STOP:
            return [], True
        assert isinstance(first, Job)
        batch, size = [first], len(first.body)
        while len(batch) < MAX_BATCH and size < MAX_BATCH_BYTES:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            assert isinstance(job, Job)
            batch.append(job)
            size += len(job.body)
        return batch, False

    def _connect(self) -> Connection:
        if self._engine is None:
            self._engine = writer_engine(self._app_engine)
            self._turn = WriteTurn.of(self._engine)
            self.checkpointer = Checkpointer.of(self._engine)
        return self._engine.connect()

    def _apply(self, conn: Connection | None, batch: list[Job]) -> Connection | None:
        """One transaction for the batch; if it fails as a whole (the connection, the
        commit), each payload is tried again alone, so that one cannot sink the others."""
        conn, done = self._commit(conn, batch)
        if not done:
            for job in batch:
                conn, _ = self._commit(conn, [job])
        return conn

    def _commit(
        self, conn: Connection | None, jobs: list[Job], fast: bool = True
    ) -> tuple[Connection | None, bool]:
        """Apply `jobs` in one transaction and answer them; a batch of several that fails
        is not answered (its jobs are tried again alone). `fast`: payloads may take the
        batch path (api/batch.py); when it fails, the transaction is rolled back and done
        again without it."""
        try:
            if conn is None:
                conn = self._connect()
            with self._turn, conn.begin():
                self._transaction(conn, jobs, fast)
        except _Redo:
            return self._commit(conn, jobs, fast=False)
        except Exception as exc:  # noqa: BLE001 - answered to the request as a 500
            if conn is not None:
                _discard(conn)
            if len(jobs) > 1:
                return None, False
            jobs[0].outcome = exc
            _answer(jobs)
            return None, True
        self.batches += 1
        _answer(jobs)
        if self.checkpointer is not None:
            self.checkpointer.committed()
        return conn, True

    def _transaction(self, conn: Connection, jobs: list[Job], fast: bool = True) -> None:
        hashes = [j.token_hash for j in jobs if j.token_hash]
        quick = {  # the payloads that take the batch path (api/batch.py)
            j for j in jobs
            if fast and j.connector is not None and batchable(j.connector, self.policy)
        }
        keys: set[tuple[str, str]] = set()
        for job in quick:
            keys |= payload_keys(job.records)
        # no payload takes the general path (ingest.inbound, through SQLAlchemy)
        whole = all(j.connector is None for j in jobs if j not in quick)
        # PostgreSQL: the locks, the lookup of the records the batch path will merge with and
        # the token check go in one round trip (pipeline mode)
        postgres = conn.dialect.name == "postgresql"
        with pipeline(conn):
            reservation = None
            if postgres:
                # the ids of the imports the batch path makes, taken after the locks
                parts = [(j.connector, j.records) for j in jobs if j in quick and j.connector]
                reservation = _lock(conn, keys if whole else None, imports_needed(parts))
            loading = Loading(conn, keys, reservation) if keys else None
            active = active_token_hashes(conn, hashes)
        # When no payload takes the general path (SQLAlchemy's execution cannot run in
        # pipeline mode), the rest of the transaction and its COMMIT go in one pipeline block,
        # one round trip (core.sql.queue_commit): the ids of its imports and raw chunks, which
        # the rows carry, were reserved in the first.
        with pipeline(conn) if whole else contextlib.nullcontext():
            batch: list[Job] = []  # consecutive payloads for the batch path, applied together
            for job in jobs:
                if job.connector is None:
                    log_rejected(conn, job.name, job.status, job.reason, job.body, job.remote)
                    job.outcome = None
                elif job.token_hash is not None and job.token_hash not in active:
                    self.tokens.forget(job.token_hash)
                    self._refuse(conn, job, 401, "invalid or revoked token")
                elif job in quick:
                    batch.append(job)
                else:
                    self._store_batch(conn, batch, loading)
                    batch, loading = [], None  # records may change from here on
                    self._store(conn, job)
            self._store_batch(conn, batch, loading)
            if whole:
                queue_commit(conn)

    def _store_batch(self, conn: Connection, jobs: list[Job], loading: Loading | None) -> None:
        """Payloads of patch connectors, together (api/batch.py), with no SAVEPOINT of their
        own (two statements a transaction saved): if the batch path fails, _Redo rolls the
        whole transaction back and _commit does it again with every payload the general
        way. `loading`: the lookup of the stored records, sent with the token check."""
        if not jobs:
            return
        payloads = [Payload(j.connector, j.records, j.body) for j in jobs if j.connector]
        try:
            apply_batch(conn, payloads, loading)
        except Exception as exc:
            raise _Redo from exc
        for job, payload in zip(jobs, payloads, strict=True):
            if payload.error is not None:
                self._refuse(conn, job, 422, str(payload.error))
            else:
                job.outcome = payload.result

    def _store(self, conn: Connection, job: Job) -> None:
        assert job.connector is not None
        try:
            with conn.begin_nested():
                job.outcome = ingest_records(
                    conn, job.connector, job.records, job.body, "webhook", self.policy
                )
        except PayloadError as exc:
            self._refuse(conn, job, exc.status, str(exc))
        except RecordError as exc:
            self._refuse(conn, job, 422, str(exc))

    @staticmethod
    def _refuse(conn: Connection, job: Job, status: int, reason: str) -> None:
        log_rejected(conn, job.name, status, reason, job.body, job.remote)
        job.outcome = Logged(status, reason)


def _lock(
    conn: Connection, keys: set[tuple[str, str]] | None, imports: int = 0
) -> Reservation | None:
    """PostgreSQL: the locks a writer's transaction holds until it ends, so that writers
    (the threads of a process, the processes of `serve --workers N`) never merge a patch
    against a record another one has changed but not committed (its fields would be lost);
    and, after them, the ids of `imports` imports (importer.Reservation), in the statement
    of the record locks.

    `keys`: the (kind, id) of every record the transaction's payloads name, all of them
    taking the batch path. The transaction takes WRITER_LOCK shared, then a lock for each
    record (a 64-bit hash of kind and id; a collision only makes two writers take turns),
    in ascending order, so that two writers never wait for each other in a cycle; writers
    on different records go at once. None: some payload takes the general path (connectors
    with a `prepare` step, incidents opened by policy, which read more than the records they
    name), so the transaction takes WRITER_LOCK exclusive and runs alone. All are queued in
    the caller's pipeline block: the lookup after them sees what the writers before
    committed."""
    run = driver(conn)
    if keys is None:
        run.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK,))
        return Reservation.ahead(conn, imports) if imports else None
    run.execute("SELECT pg_advisory_xact_lock_shared(%s)", (WRITER_LOCK,))
    locks = sorted(record_lock(kind, rid) for kind, rid in keys)
    if imports:
        return Reservation(run.execute(_LOCKS_THEN_IDS, (locks, imports)))
    if locks:
        run.execute(_RECORD_LOCKS, (locks,))
    return None


def record_lock(kind: str, rid: str) -> int:
    """The advisory lock key of one record (a signed 64-bit integer)."""
    digest = hashlib.blake2b(f"{kind}\0{rid}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


# one lock after the other in the array's order (unnest yields its elements in order)
_RECORD_LOCKS = "SELECT pg_advisory_xact_lock(k) FROM unnest(%b::int8[]) AS k"
# the same, then the reserved ids: a row of the join needs the aggregate, which takes every
# lock first (an aggregate subquery is not flattened into the query around it)
_LOCKS_THEN_IDS = (
    f"SELECT {RESERVE_IDS} FROM (SELECT count(pg_advisory_xact_lock(k)) "
    "FROM unnest(%b::int8[]) AS k) AS locked, generate_series(1, %s)"
)


def _discard(conn: Connection) -> None:
    """Close the writer's connection for good, not back into the pool: the pool may have
    been disposed of meanwhile (an app's engine at the end of a test), and a connection left
    in a dropped pool is only closed by the garbage collector."""
    with contextlib.suppress(Exception):
        conn.invalidate()
    with contextlib.suppress(Exception):
        conn.close()


def _answer(jobs: list[Job]) -> None:
    """Hand each job's outcome to the event loop its request waits on (one wake-up each)."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Job]] = {}
    for job in jobs:
        by_loop.setdefault(job.loop, []).append(job)
    for loop, mine in by_loop.items():
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            loop.call_soon_threadsafe(_settle, mine)


def _settle(jobs: list[Job]) -> None:
    for job in jobs:
        if job.future.done():  # the request was cancelled (the client went away)
            continue
        if isinstance(job.outcome, BaseException):
            job.future.set_exception(job.outcome)
        else:
            job.future.set_result(job.outcome)

