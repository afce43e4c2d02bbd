"""Calls that queue up share one transaction; a failing one is undone alone."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import anyio.lowlevel
import anyio.to_thread

from orchestrator.errors import RegistryError
from orchestrator.stores.drivers.sqlite import SqliteDatabase, transaction


class Boom(Exception):
    pass


async def test_a_failing_call_in_a_batch_rolls_back_alone(tmp_path: Path) -> None:
    database = await SqliteDatabase.open(tmp_path / "db.sqlite", migrations="registry/sqlite",
                                         error=RegistryError)
    await database.run(lambda c: c.execute("CREATE TABLE items (n INTEGER PRIMARY KEY)"))
    outcomes: dict[int, str] = {}

    def insert(n: int) -> Callable[[sqlite3.Connection], None]:
        def work(connection: sqlite3.Connection) -> None:
            with transaction(connection):
                connection.execute("INSERT INTO items VALUES (?)", (n,))
                if n % 7 == 0:
                    raise Boom(n)
        return work

    async def call(n: int) -> None:
        try:
            await database.run(insert(n))
            outcomes[n] = "ok"
        except Boom:
            outcomes[n] = "failed"

    async with anyio.create_task_group() as group:
        for n in range(1, 60):
            group.start_soon(call, n)
    rows = await database.run(lambda c: [r[0] for r in c.execute("SELECT n FROM items")])
    await database.aclose()

    assert sorted(rows) == [n for n in range(1, 60) if n % 7]
    assert all(outcomes[n] == ("failed" if n % 7 == 0 else "ok") for n in range(1, 60))
    # Everything is committed: a fresh connection sees it.
    with sqlite3.connect(tmp_path / "db.sqlite") as fresh:
        assert fresh.execute("SELECT count(*) FROM items").fetchone()[0] == len(rows)


async def test_vendor_errors_in_a_batch_become_ours(tmp_path: Path) -> None:
    database = await SqliteDatabase.open(tmp_path / "db.sqlite", migrations="registry/sqlite",
                                         error=RegistryError)

    errors: list[RegistryError] = []

    async def bad() -> None:
        try:
            await database.run(lambda c: c.execute("SELECT * FROM no_such_table"))
        except RegistryError as exc:
            errors.append(exc)

    async def good() -> int:
        return int(await database.run(lambda c: c.execute("SELECT 1").fetchone()[0]))

    async with anyio.create_task_group() as group:
        group.start_soon(good)
        group.start_soon(bad)
    assert [str(e) for e in errors] == ["database error: no such table: no_such_table"]
    assert await good() == 1
    await database.aclose()


async def test_a_caller_cancelled_while_queued_gets_its_result_then_the_cancellation(
    tmp_path: Path,
) -> None:
    """Like anyio.to_thread.run_sync: a queued call runs and its caller gets the result;
    the cancellation lands at the caller's next checkpoint."""
    database = await SqliteDatabase.open(tmp_path / "db.sqlite", migrations="registry/sqlite",
                                         error=RegistryError)
    started, release = threading.Event(), threading.Event()
    results: list[str] = []

    def hold(connection: sqlite3.Connection) -> None:  # keeps the next call queued
        started.set()
        release.wait(10)

    async def caller(scope: anyio.CancelScope) -> None:
        with scope:
            results.append(await database.run(lambda c: "the queued call ran"))
            await anyio.lowlevel.checkpoint()
            results.append("not reached: cancelled at the checkpoint")

    scope = anyio.CancelScope()
    async with anyio.create_task_group() as group:
        group.start_soon(database.run, hold)
        await anyio.to_thread.run_sync(started.wait, 10)
        group.start_soon(caller, scope)
        await anyio.wait_all_tasks_blocked()
        scope.cancel()
        await anyio.wait_all_tasks_blocked()
        assert results == []  # still waiting: its call has not run yet
        release.set()
    await database.aclose()
    assert results == ["the queued call ran"]
    assert scope.cancelled_caught
