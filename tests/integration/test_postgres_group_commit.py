"""Writes to the PostgreSQL state store that queue up share a transaction: each call's
outcome is its own, a failing one is undone alone, and none is heard before commit."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import anyio
import asyncpg
import pytest

from orchestrator.errors import LeaseLost, StateStoreError
from orchestrator.model import Run, RunState
from orchestrator.stores.drivers import postgres as pg
from orchestrator.stores.drivers.pg_group import GroupCommit
from orchestrator.stores.state.postgres import PostgresStateStore
from tests.contracts.state import INPUTS, LEASE

if TYPE_CHECKING:
    from orchestrator.stores.drivers.pg_group import Connection


class Boom(Exception):
    pass


@pytest.fixture
async def pool(postgres_dsn: str) -> AsyncIterator[pg.Pool]:
    opened = await pg.Pool.open(postgres_dsn, error=StateStoreError, name="test",
                                min_size=1, max_size=2)
    async with opened.acquire() as connection:
        await connection.execute("CREATE TABLE items (n INTEGER PRIMARY KEY)")
    yield opened
    await opened.aclose()


async def test_a_failing_call_in_a_batch_rolls_back_alone(pool: pg.Pool) -> None:
    writes = GroupCommit(pool, lanes=1)
    outcomes: dict[int, str] = {}

    async def call(n: int) -> None:
        async def insert(connection: Connection) -> None:
            await connection.execute("INSERT INTO items VALUES ($1)", n)
            if n % 7 == 0:
                raise Boom(n)
            if n % 11 == 0:  # a vendor error aborts only this call's savepoint
                await connection.execute("INSERT INTO items VALUES ($1)", n)

        try:
            await writes.run(insert)
            outcomes[n] = "ok"
        except (Boom, asyncpg.UniqueViolationError):
            outcomes[n] = "failed"

    async with anyio.create_task_group() as group:
        for n in range(1, 60):
            group.start_soon(call, n)
    async with pool.acquire() as connection:
        rows = [r["n"] for r in await connection.fetch("SELECT n FROM items")]

    kept = [n for n in range(1, 60) if n % 7 and n % 11]
    assert sorted(rows) == kept
    assert all(outcomes[n] == ("ok" if n in kept else "failed") for n in range(1, 60))


async def test_a_batch_that_cannot_commit_fails_every_call(pool: pg.Pool) -> None:
    writes = GroupCommit(pool, lanes=1)
    failed: list[int] = []

    async def call(n: int) -> None:
        async def insert(connection: Connection) -> None:
            await connection.execute("INSERT INTO items VALUES ($1)", n)

        try:
            await writes.run(insert)
        except StateStoreError:
            failed.append(n)

    await pool.aclose()
    async with anyio.create_task_group() as group:
        for n in range(5):
            group.start_soon(call, n)
    assert sorted(failed) == list(range(5))


async def test_concurrent_runs_of_one_store_each_get_their_own_outcome(
    postgres_dsn: str,
) -> None:
    store = await PostgresStateStore.open(postgres_dsn)
    claimed: list[Run] = []

    async def launch(n: int) -> None:
        claimed.append(await store.claim(task_id=f"task-{n}", family="F", partition=str(n),
                                         fingerprint="f", inputs=INPUTS, owner="me",
                                         lease=LEASE))

    async with anyio.create_task_group() as group:
        for n in range(40):
            group.start_soon(launch, n)
    finished: dict[str, str] = {}

    async def finish(run: Run) -> None:
        attempt = run.attempt - 1 if int(run.partition) % 5 == 0 else run.attempt
        try:
            await store.succeed(run.id, attempt, {"out": run.partition})
            finished[run.partition] = "succeeded"
        except LeaseLost:
            finished[run.partition] = "fenced"

    async with anyio.create_task_group() as group:
        for run in claimed:
            group.start_soon(finish, run)
    states = {run.partition: (await store.latest(run.task_id)) for run in claimed}
    await store.aclose()

    assert len(finished) == 40
    for partition, outcome in finished.items():
        state = states[partition]
        assert state is not None
        assert outcome == ("fenced" if int(partition) % 5 == 0 else "succeeded")
        assert state.state is (RunState.RUNNING if outcome == "fenced" else RunState.SUCCEEDED)
