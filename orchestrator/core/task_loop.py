"""In-process task code (``Task.run``) runs on an event loop of its own, in a thread.

A task's ``run()`` is user code: it may compute for seconds between two awaits. On
the process's event loop that would stall the lease keeper (a busy task would lose
its lease), the daemon's sensors and its HTTP server. So ``run()`` runs on a second
event loop in a thread of its own, and the adapters its RunContext hands out are
bridges that carry each call back to the main loop, where the real adapters live: their
connections and pools belong to that loop.

Both loops are asyncio's (charon's drivers, asyncpg and aiohttp, need it), so a call
crosses over with ``run_coroutine_threadsafe`` and is awaited where it was made, with
no thread blocked on either side; cancelling the awaiting side cancels the other.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import dataclasses
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from orchestrator.errors import JobFailed
from orchestrator.model import TableInfo
from orchestrator.stores.database.base import Database, PgColumn
from orchestrator.stores.storage.base import ObjectInfo, Storage
from orchestrator.stores.warehouse.base import Column, Warehouse
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.runcontext import RunContext

T = TypeVar("T")
LINES_PER_CALL = 1024  # lines carried across per call when a task streams a file


class _Caller:
    """Runs coroutines on ``loop`` from another loop, awaiting them without blocking."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    async def __call__(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        return await asyncio.wrap_future(future)


class TaskLoop(AbstractAsyncContextManager["TaskLoop"]):
    """A second event loop, in a thread, for the in-process tasks of one evaluation.

    Started on first use and stopped when the evaluation ends.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def serve() -> None:
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()
                loop.run_until_complete(loop.shutdown_asyncgens())
                loop.close()

            # A daemon thread: a process that exits without stopping it is not held up.
            self._thread = threading.Thread(target=serve, name="charon-task-loop", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
        return self._loop

    async def run(self, task_run: Callable[[RunContext], Awaitable[None]],
                  context: RunContext) -> None:
        """``task_run(context)`` on the task loop, its adapters bridged back to this loop.

        Cancelled, it cancels the task code and waits for it to stop: nothing the task
        writes lands after this returns.
        """
        loop = self._start()
        main = asyncio.get_running_loop()
        bridged = bridge(context, _Caller(main))
        ending = _Ending(main)

        async def on_task_loop() -> None:
            try:
                await task_run(bridged)
            except (SystemExit, KeyboardInterrupt) as exc:
                # The task's own sys.exit() (or a KeyboardInterrupt of its own: signals
                # reach the main thread only) went out of the task loop and ended its
                # thread, and the run's future never ended: charon hung for good. It
                # fails the run, as any other error of the task's code.
                raise JobFailed(f"the task's run() raised {exc!r}") from exc
            finally:
                ending.finished()

        future = asyncio.run_coroutine_threadsafe(on_task_loop(), loop)
        try:
            await asyncio.wrap_future(future)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await ending.cancel(future)
            raise

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        traceback: TracebackType | None) -> None:
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        self._loop = self._thread = None
        loop.call_soon_threadsafe(loop.stop)
        await anyio.to_thread.run_sync(thread.join)


class _Ending:
    """How the main loop learns that cancelled task code has really stopped.

    A cancelled future is done at once, while the task code may still be running until
    its next await; so a cancelling caller waits for a signal from the code's own
    ``finally``. Only a cancelled run asks for it: a run that ends by itself costs no
    second wake-up of the main loop.
    """

    def __init__(self, main: asyncio.AbstractEventLoop) -> None:
        self._main = main
        self._lock = threading.Lock()
        self._done = False
        self._cancelling = False
        self._stopped = anyio.Event()

    def finished(self) -> None:
        """On the task loop, when the task code has returned or raised."""
        with self._lock:
            self._done = True
            notify = self._cancelling
        if notify:
            self._main.call_soon_threadsafe(self._stopped.set)

    async def cancel(self, future: concurrent.futures.Future[None]) -> None:
        """On the main loop: cancel the task code and wait until it has stopped."""
        with self._lock:
            self._cancelling = True
            done = self._done
        future.cancel()
        if not done:
            await self._stopped.wait()


def bridge(context: RunContext, call: _Caller) -> RunContext:
    """``context`` with every adapter call carried to the loop ``call`` runs on."""
    fence = context.fence

    async def bridged_fence() -> object:
        assert fence is not None  # only bridged when there is one
        return await call(_awaited(fence))

    return dataclasses.replace(
        context,
        storage=BridgedStorage(context.storage, call),
        warehouse=BridgedWarehouse(context.warehouse, call),
        database=None if context.database is None else BridgedDatabase(context.database, call),
        fence=None if fence is None else bridged_fence,
    )


async def _awaited(function: Callable[[], Awaitable[T]]) -> T:
    return await function()


async def _next_lines(lines: AsyncIterator[str]) -> tuple[list[str], bool]:
    """Up to LINES_PER_CALL lines, and whether more may follow: a short batch means the
    generator has ended, so neither another call nor a close has to cross over for it."""
    batch: list[str] = []
    async for line in lines:
        batch.append(line)
        if len(batch) == LINES_PER_CALL:
            return batch, True
    return batch, False


class BridgedStorage:
    def __init__(self, storage: Storage, call: _Caller) -> None:
        self._storage, self._call = storage, call

    async def exists(self, uri: str) -> bool:
        return await self._call(self._storage.exists(uri))

    async def list(self, prefix: str) -> list[ObjectInfo]:
        return await self._call(self._storage.list(prefix))

    async def objects(self, uris: Sequence[str]) -> dict[str, ObjectInfo]:
        return await self._call(self._storage.objects(uris))

    async def read(self, uri: str) -> bytes:
        return await self._call(self._storage.read(uri))

    async def read_lines(self, uri: str) -> AsyncIterator[str]:
        # The generator lives on the main loop; it is driven (and closed) from there.
        lines = self._storage.read_lines(uri)
        more = True
        try:
            while more:
                batch, more = await self._call(_next_lines(lines))
                for line in batch:
                    yield line
        finally:
            closing = getattr(lines, "aclose", None)
            if more and closing is not None:
                with anyio.CancelScope(shield=True):
                    await self._call(closing())

    async def write(self, uri: str, data: bytes) -> None:
        await self._call(self._storage.write(uri, data))

    async def delete_prefix(self, prefix: str) -> int:
        return await self._call(self._storage.delete_prefix(prefix))

    async def empty_folders(self, prefix: str) -> builtins.list[ObjectInfo]:
        return await self._call(self._storage.empty_folders(prefix))

    async def aclose(self) -> None:
        """The real storage belongs to the engine, which closes it."""


class BridgedWarehouse:
    def __init__(self, warehouse: Warehouse, call: _Caller) -> None:
        self._warehouse, self._call = warehouse, call

    async def table_info(self, spec: TableSpec) -> TableInfo | None:
        return await self._call(self._warehouse.table_info(spec))

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        return await self._call(self._warehouse.list_tables(project, dataset))

    async def create_table(
        self, spec: TableSpec, columns: Sequence[Column], rows: Iterable[Sequence[object]]
    ) -> TableInfo:
        # Rows are produced here, on the task's loop: a generator computing them must
        # not run on the main loop.
        return await self._call(self._warehouse.create_table(spec, columns, list(rows)))

    async def read_rows(
        self, spec: TableSpec, limit: int | None = None
    ) -> list[dict[str, object]]:
        return await self._call(self._warehouse.read_rows(spec, limit))

    async def staging_table(self, final: TableSpec) -> TableSpec:
        return await self._call(self._warehouse.staging_table(final))

    async def replace_from_staging(
        self, staging: TableSpec, final: TableSpec, job_key: str
    ) -> TableInfo:
        return await self._call(self._warehouse.replace_from_staging(staging, final, job_key))

    async def drop_table(self, spec: TableSpec) -> None:
        await self._call(self._warehouse.drop_table(spec))

    def job_options(self) -> list[str]:
        return self._warehouse.job_options()

    async def aclose(self) -> None:
        """The real warehouse belongs to the engine, which closes it."""


class BridgedDatabase:
    def __init__(self, database: Database, call: _Caller) -> None:
        self._database, self._call = database, call

    async def marker(self, table: str, key: str) -> datetime | None:
        return await self._call(self._database.marker(table, key))

    async def copy_with_marker(
        self, table: str, columns: Sequence[PgColumn],
        rows: Iterable[Sequence[object]], key: str,
    ) -> bool:
        return await self._call(
            self._database.copy_with_marker(table, columns, list(rows), key)
        )

    async def read_rows(self, table: str, limit: int | None = None) -> list[dict[str, object]]:
        return await self._call(self._database.read_rows(table, limit))

    async def aclose(self) -> None:
        """The real database belongs to the engine, which closes it."""
