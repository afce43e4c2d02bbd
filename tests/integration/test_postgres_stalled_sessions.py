"""A charon process paused in the middle of a statement, inside a transaction, holds
that transaction's locks: the server's idle-in-transaction timeout never ends such a
session, since it waits for the rest of the statement, not for the next one. A daemon
replica's heartbeat ends it, and so does the process kept waiting for its lock, with no
heartbeat running: a publisher for the registry's publish lock (a registry may have a
database of its own), a claim for its task's (tests/support/stalled_in_statement.py
pauses a real process so, holding one or the other)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import asyncpg
import structlog

from orchestrator import procfs
from orchestrator.model import RunState
from orchestrator.stores.drivers.postgres import IDLE_IN_TRANSACTION_TIMEOUT_MS
from orchestrator.stores.registry.postgres import PUBLISH_LOCK, PostgresRegistry
from orchestrator.stores.state.postgres import PostgresStateStore
from tests.support.stalled_in_statement import TASK_ID

ROOT = Path(__file__).resolve().parents[2]
IDLE_SECONDS = IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000
SESSIONS_OF = (
    "SELECT state, wait_event, EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid"
    " AND l.locktype = 'advisory' AND l.granted) AS locking"
    " FROM pg_stat_activity a WHERE application_name = $1"
)


@contextmanager
def stalled_in_statement(dsn: str, doing: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.support.stalled_in_statement", dsn, doing],
        cwd=ROOT, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.kill()
        process.send_signal(signal.SIGCONT)  # a stopped process dies of SIGKILL; reaped below
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()


@asynccontextmanager
async def paused_holding_a_lock(dsn: str, doing: str) -> AsyncIterator[Paused]:
    """A real process paused in a statement, holding the lock ``doing`` takes."""
    observer = await asyncpg.connect(dsn)
    try:
        with stalled_in_statement(dsn, doing) as process:
            with anyio.fail_after(30):
                while not stopped(process.pid):
                    await anyio.sleep(0.1)
            paused = Paused(f"charon[{process.pid}]", observer)
            [session] = await paused.sessions()
            assert (session["state"], session["wait_event"], session["locking"]) == (
                "active", "ClientRead", True)
            yield paused
    finally:
        await observer.close()


@dataclass(frozen=True)
class Paused:
    name: str
    """Its sessions' application_name."""
    observer: asyncpg.Connection

    async def sessions(self) -> list[asyncpg.Record]:
        return await self.observer.fetch(SESSIONS_OF, self.name)

    async def assert_ended_once(self, logs: list[MutableMapping[str, Any]]) -> None:
        assert await self.sessions() == []
        assert [(entry["event"], entry["sessions"]) for entry in logs] == [
            ("ended sessions of charon processes paused in a statement", 1)]


def stopped(pid: int) -> bool:
    return (found := procfs.stat(pid)) is not None and found.state == "T"


async def test_a_heartbeat_ends_a_session_stalled_in_a_statement_and_frees_its_locks(
    postgres_dsn: str,
) -> None:
    registry = await PostgresRegistry.open(postgres_dsn)
    store = await PostgresStateStore.open(postgres_dsn)
    try:
        async with paused_holding_a_lock(postgres_dsn, "publish") as paused:
            # Past the server's own timeout for a session idle in a transaction, the
            # paused one is still there; blocking no one, a heartbeat leaves it alone.
            await anyio.sleep(IDLE_SECONDS + 1)
            await store.heartbeat("replica-1", ["daily"], timedelta(seconds=30))
            assert len(await paused.sessions()) == 1
            with structlog.testing.capture_logs() as logs:
                async with anyio.create_task_group() as group:
                    published = anyio.Event()

                    async def publish() -> None:
                        await registry.publish("other.output", "2018-10-31", "/data/other")
                        published.set()

                    group.start_soon(publish)
                    await anyio.sleep(1)
                    assert not published.is_set()  # it waits for the paused one's lock
                    await store.heartbeat("replica-1", ["daily"], timedelta(seconds=30))
                    with anyio.fail_after(10):
                        await published.wait()
            await paused.assert_ended_once(logs)
    finally:
        await store.aclose()
        await registry.aclose()


async def test_a_publisher_kept_waiting_ends_a_session_stalled_holding_the_publish_lock(
    postgres_dsn: str,
) -> None:
    """No daemon heartbeat looks at a registry in a database of its own (none runs
    here): the publisher waiting for the lock ends the paused session itself."""
    registry = await PostgresRegistry.open(postgres_dsn)
    try:
        async with paused_holding_a_lock(postgres_dsn, "publish") as paused:
            with structlog.testing.capture_logs() as logs, anyio.fail_after(IDLE_SECONDS + 10):
                published = await registry.publish("other.output", "2018-10-31", "/data/other")
            assert published.seq is not None
            await paused.assert_ended_once(logs)
    finally:
        await registry.aclose()


async def test_a_claim_kept_waiting_ends_a_session_stalled_holding_its_task_s_lock(
    postgres_dsn: str,
) -> None:
    """One-shot runs on a shared state store have no heartbeat between them."""
    store = await PostgresStateStore.open(postgres_dsn)
    try:
        async with paused_holding_a_lock(postgres_dsn, "claim") as paused:
            with structlog.testing.capture_logs() as logs, anyio.fail_after(IDLE_SECONDS + 10):
                run = await store.claim(task_id=TASK_ID, family="Stalled", partition="2018-10-31",
                                        fingerprint="stalled", inputs=(), owner="replica-1",
                                        lease=timedelta(minutes=1))
            assert (run.state, run.lease_owner) == (RunState.RUNNING, "replica-1")
            await paused.assert_ended_once(logs)
    finally:
        await store.aclose()


async def test_a_publisher_waits_out_a_live_holder_of_the_publish_lock(
    postgres_dsn: str,
) -> None:
    """A holder busy in a statement past the publisher's wait is slow, not paused: it is
    left alone, and the publisher waits on until the lock is free."""
    registry = await PostgresRegistry.open(postgres_dsn)
    holder = await asyncpg.connect(postgres_dsn, server_settings={"application_name": "charon[1]"})
    try:
        with structlog.testing.capture_logs() as logs:
            async with anyio.create_task_group() as group:
                taken = anyio.Event()

                async def hold() -> None:
                    async with holder.transaction():
                        await holder.execute("SELECT pg_advisory_xact_lock($1)", PUBLISH_LOCK)
                        taken.set()
                        await holder.execute("SELECT pg_sleep($1)", IDLE_SECONDS + 2)

                group.start_soon(hold)
                await taken.wait()
                started = time.monotonic()
                with anyio.fail_after(IDLE_SECONDS + 15):
                    await registry.publish("other.output", "2018-10-31", "/data/other")
                waited = time.monotonic() - started
        assert waited > IDLE_SECONDS + 1  # past one try's wait, it tried again
        assert await holder.fetchval("SELECT 1") == 1  # its session was not ended
        assert logs == []
    finally:
        await holder.close()
        await registry.aclose()


async def test_a_heartbeat_leaves_a_load_waiting_for_its_rows_alone(postgres_dsn: str) -> None:
    """A COPY's client may take its time to send a user's rows: its session, active and
    waiting for the client with a lock another session waits for, is a load going on."""
    store = await PostgresStateStore.open(postgres_dsn)
    loader = await asyncpg.connect(postgres_dsn, server_settings={"application_name": "charon[1]"})
    waiter = await asyncpg.connect(postgres_dsn)
    more_rows = anyio.Event()

    async def rows() -> AsyncIterator[tuple[int]]:
        yield (1,)
        await more_rows.wait()
        yield (2,)

    try:
        await loader.execute("CREATE TABLE loaded (n INT)")
        async with anyio.create_task_group() as group:

            async def load() -> None:
                async with loader.transaction():
                    await loader.execute("SELECT pg_advisory_xact_lock(7)")
                    await loader.copy_records_to_table("loaded", records=rows())

            group.start_soon(load)
            group.start_soon(waiter.execute, "SELECT pg_advisory_xact_lock(7)")
            await anyio.sleep(IDLE_SECONDS + 1)
            await store.heartbeat("replica-1", ["daily"], timedelta(seconds=30))
            more_rows.set()
        assert await loader.fetchval("SELECT count(*) FROM loaded") == 2
    finally:
        await waiter.close()
        await loader.close()
        await store.aclose()
