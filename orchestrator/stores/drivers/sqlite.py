"""The shared plumbing of the SQLite-backed adapters.

One connection per adapter, used from worker threads one call at a time, so the
event loop never blocks on disk and the connection is never used concurrently.
Schemas evolve through numbered ``.sql`` files (see :mod:`orchestrator.stores.drivers.migrations`).
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from orchestrator.errors import AdapterError, CharonError
from orchestrator.stores.drivers.migrations import Migration, load_migrations

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}",
)
CREATE_MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied TEXT NOT NULL)"
)
SELECT_MIGRATION = "SELECT 1 FROM schema_migrations WHERE version = ?"
INSERT_MIGRATION = "INSERT INTO schema_migrations (version, name, applied) VALUES (?, ?, ?)"
SELECT_MIGRATIONS = "SELECT version, name, applied FROM schema_migrations ORDER BY version"

def iso_ms(moment: datetime) -> str:
    """ISO-8601 in UTC with milliseconds: sorts as text, round-trips exactly."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


def truncate_ms(moment: datetime) -> datetime:
    """The moment as stored: UTC, milliseconds, so returned values equal re-read ones."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def split_statements(script: str) -> Iterator[str]:
    """Complete SQL statements of a script, so each can run inside our own transaction.

    ``executescript`` would commit on its own; splitting keeps a migration and its
    ``schema_migrations`` row in one transaction.
    """
    pending = ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            yield pending.strip()
            pending = ""
    if pending.strip() and not pending.strip().startswith("--"):
        raise CharonError(f"incomplete SQL statement at end of migration: {pending!r}")


@contextmanager
def transaction(connection: sqlite3.Connection, *, immediate: bool = True) -> Iterator[None]:
    """One unit of work: all of it or none of it.

    Alone it is a transaction, and BEGIN IMMEDIATE takes the write lock up front so
    read-then-write cannot race. Inside a batch's transaction it is a savepoint, so a
    failing call undoes only its own work and the batch commits the rest.
    """
    if connection.in_transaction:
        connection.execute("SAVEPOINT unit")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK TO unit")
            connection.execute("RELEASE unit")
            raise
        connection.execute("RELEASE unit")
        return
    connection.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _apply(connection: sqlite3.Connection, migration: Migration) -> None:
    with transaction(connection):
        # Checked inside the transaction: another process may have just applied it.
        if connection.execute(SELECT_MIGRATION, (migration.version,)).fetchone():
            return
        for statement in split_statements(migration.sql):
            connection.execute(statement)
        connection.execute(
            INSERT_MIGRATION, (migration.version, migration.name, iso_ms(datetime.now(UTC)))
        )


def migrate(connection: sqlite3.Connection, name: str) -> None:
    connection.execute(CREATE_MIGRATIONS_TABLE)
    for migration in load_migrations(name):
        _apply(connection, migration)


def _connect(path: Path, migrations: str) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None: we issue BEGIN/COMMIT ourselves, sqlite3 adds nothing.
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        for pragma in PRAGMAS:
            connection.execute(pragma)
        migrate(connection, migrations)
    except BaseException:
        connection.close()
        raise
    return connection


# Bounds how long one batch holds SQLite's write lock against other processes.
MAX_BATCH = 256


class _CallFailed(Exception):
    """Rolls a failed call's savepoint back inside a batch."""


class _Call(Generic[T]):
    """One queued use of the connection and, once run, its outcome."""

    def __init__(self, function: Callable[[sqlite3.Connection], T]) -> None:
        self.function = function
        self.result: T | None = None
        self.error: BaseException | None = None

    def run(self, connection: sqlite3.Connection) -> None:
        try:
            self.result = self.function(connection)
        except Exception as exc:  # handed back to the caller's task
            self.error = exc


class _Batch:
    """Calls that run in one thread hop and one transaction, and are done together."""

    def __init__(self) -> None:
        self.calls: list[_Call[Any]] = []
        self.done = anyio.Event()


class SqliteDatabase:
    """A sqlite3 connection used from worker threads, one call at a time.

    Calls that queue up while the connection is busy run together in one worker-
    thread hop and one transaction (a group commit), each call in a savepoint of its
    own. When many runs become ready at once, thread hops and commits are what cost,
    not the statements. No caller hears of its result before the batch committed,
    and a call that fails is rolled back alone.
    """

    def __init__(self, connection: sqlite3.Connection, error: type[AdapterError]) -> None:
        self._connection = connection
        self._error = error
        self._limiter = anyio.CapacityLimiter(1)
        self._closed = False
        self._queue: list[_Batch] = []
        self._draining = False

    @classmethod
    async def open(
        cls, path: Path, *, migrations: str, error: type[AdapterError]
    ) -> SqliteDatabase:
        """Open (creating if needed) and migrate the database file at ``path``."""
        try:
            connection = await anyio.to_thread.run_sync(_connect, Path(path), migrations)
        except (sqlite3.Error, OSError) as exc:
            raise error(f"cannot open database {path}: {exc}") from exc
        return cls(connection, error)

    async def run(self, function: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``function(connection)`` in a worker thread; vendor errors become ours.

        Like ``anyio.to_thread.run_sync``, a call that was queued runs to completion
        even if its caller is cancelled meanwhile, and its result is returned: the
        cancellation lands at the caller's next checkpoint. A claim or a success
        recorded is then never mistaken by its caller for one that did not happen.
        """
        if self._closed:
            raise self._error("database is closed")
        call = _Call(function)
        batch = self._enqueue(call)
        with anyio.CancelScope(shield=True):
            if not self._draining:
                await self._drain()
            await batch.done.wait()
        if isinstance(call.error, sqlite3.Error):
            raise self._error(f"database error: {call.error}") from call.error
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]  # set by a successful run

    def _enqueue(self, call: _Call[Any]) -> _Batch:
        """Into the last waiting batch, or a new one when that is full."""
        if not self._queue or len(self._queue[-1].calls) >= MAX_BATCH:
            self._queue.append(_Batch())
        batch = self._queue[-1]
        batch.calls.append(call)
        return batch

    async def _drain(self) -> None:
        self._draining = True
        try:
            while self._queue:
                batch = self._queue.pop(0)
                await anyio.to_thread.run_sync(self._run_batch, batch.calls,
                                               limiter=self._limiter)
                batch.done.set()
        finally:
            self._draining = False

    def _run_batch(self, batch: list[_Call[Any]]) -> None:
        if len(batch) == 1:
            batch[0].run(self._connection)
            return
        try:
            with transaction(self._connection):
                for call in batch:
                    # Each call's own transaction() becomes a savepoint; a call
                    # without one gets one here, so its failure undoes its writes.
                    with contextlib.suppress(_CallFailed), transaction(self._connection):
                        call.run(self._connection)
                        if call.error is not None:
                            raise _CallFailed
        except sqlite3.Error as exc:
            # The commit failed: none of the batch happened.
            for call in batch:
                call.result, call.error = None, exc

    async def migrations(self) -> list[tuple[int, str, str]]:
        """The applied migrations: (version, name, applied timestamp)."""

        def select(connection: sqlite3.Connection) -> list[tuple[int, str, str]]:
            return [tuple(row) for row in connection.execute(SELECT_MIGRATIONS)]

        return await self.run(select)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        # Through the limiter, so a call still running in its thread finishes first.
        await anyio.to_thread.run_sync(self._connection.close, limiter=self._limiter)
