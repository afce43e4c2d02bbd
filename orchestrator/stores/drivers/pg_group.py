"""Group commit on PostgreSQL: writes queued while earlier ones run share one
connection and one transaction.

When many runs change state at once, what costs is per transaction, not per
statement: a pool checkout (and the reset round trip its return makes) and a commit
that waits for the WAL to reach the disk. Calls that queue up behind a busy lane run
together, each in a savepoint of its own, so a failing call is rolled back alone and
the others commit (one PostgreSQL picked to break a deadlock with another process's
batch runs again, alone, after its batch); no caller hears of its result before its
batch committed. As in the SQLite store's batches (drivers/sqlite.py), a queued call
runs to completion even if its caller is cancelled meanwhile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import asyncpg

from orchestrator.stores.drivers.postgres import Pool

if TYPE_CHECKING:
    Connection = asyncpg.pool.PoolConnectionProxy[asyncpg.Record]

T = TypeVar("T")

MAX_BATCH = 64
"""Bounds how long one batch holds its row and advisory locks against other replicas."""
BATCH_SECONDS = 60.0
"""A batch still running after this is cancelled (rolled back) and its calls fail:
the shield that lets a batch finish for every caller must not outlive a hung server."""


class _Call(Generic[T]):
    def __init__(self, function: Callable[[Connection], Awaitable[T]]) -> None:
        self.function = function
        self.result: T | None = None
        self.error: BaseException | None = None
        self.done = anyio.Event()

    async def run(self, connection: Connection) -> None:
        self.error = None
        try:
            async with connection.transaction():
                self.result = await self.function(connection)
        except Exception as exc:  # handed back to the caller's task
            self.error = exc

    @property
    def to_retry(self) -> bool:
        """Chosen by PostgreSQL to break a deadlock with another process's batch: its
        savepoint undid it, and alone it can go through."""
        return isinstance(self.error, asyncpg.DeadlockDetectedError)


class GroupCommit:
    """Runs write transactions on ``pool``, up to ``lanes`` batches at once."""

    def __init__(self, pool: Pool, *, lanes: int) -> None:
        self._pool = pool
        self._lanes = lanes
        self._busy = 0
        self._waiting: list[_Call[Any]] = []

    async def run(self, function: Callable[[Connection], Awaitable[T]]) -> T:
        """``function(connection)`` in a transaction (or a savepoint of a batch's);
        vendor errors are raised as they are, for the caller to convert."""
        call = _Call(function)
        self._waiting.append(call)
        with anyio.CancelScope(shield=True):
            if self._busy < self._lanes:
                await self._drive()
            # Else a busy lane takes it: a lane stops only when nothing waits.
            await call.done.wait()
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]  # set by a successful run

    async def _drive(self) -> None:
        self._busy += 1
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._run_batch(batch)
        finally:
            self._busy -= 1

    async def _run_batch(self, batch: list[_Call[Any]]) -> None:
        committed = False
        try:
            with anyio.fail_after(BATCH_SECONDS):
                async with self._pool.acquire() as connection:
                    if len(batch) == 1:
                        await batch[0].run(connection)
                    else:
                        # Each call's transaction becomes a savepoint in this one.
                        async with connection.transaction():
                            for call in batch:
                                await call.run(connection)
                        committed = True
                        for call in (call for call in batch if call.to_retry):
                            await call.run(connection)
        except Exception as exc:  # handed to every caller of the batch
            # The batch did not commit (or the pool is closed): none of it happened.
            for call in batch:
                if not committed or call.to_retry:
                    call.result, call.error = None, exc
        finally:
            for call in batch:
                call.done.set()
