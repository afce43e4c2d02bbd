"""A charon process paused in the middle of a statement, inside a transaction, holds
that transaction's locks: the server's idle-in-transaction timeout never ends such a
session, since it waits for the rest of the statement, not for the next one. A daemon
replica's heartbeat ends it (tests/support/stalled_publisher.py pauses a real process
so, holding the registry's publish lock, which every publisher takes)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import asyncpg
import structlog

from orchestrator import procfs
from orchestrator.stores.drivers.postgres import IDLE_IN_TRANSACTION_TIMEOUT_MS
from orchestrator.stores.registry.postgres import PostgresRegistry
from orchestrator.stores.state.postgres import PostgresStateStore

ROOT = Path(__file__).resolve().parents[2]
IDLE_SECONDS = IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000
SESSIONS_OF = (
    "SELECT state, wait_event, EXISTS (SELECT FROM pg_locks l WHERE l.pid = a.pid"
    " AND l.locktype = 'advisory' AND l.granted) AS locking"
    " FROM pg_stat_activity a WHERE application_name = $1"
)


@contextmanager
def stalled_publisher(dsn: str) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-m", "tests.support.stalled_publisher", dsn],
                               cwd=ROOT, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        process.kill()
        process.send_signal(signal.SIGCONT)  # a stopped process dies of SIGKILL; reaped below
        process.wait(timeout=30)
        assert process.stderr is not None
        process.stderr.close()


def stopped(pid: int) -> bool:
    return (found := procfs.stat(pid)) is not None and found.state == "T"


async def test_a_heartbeat_ends_a_session_stalled_in_a_statement_and_frees_its_locks(
    postgres_dsn: str,
) -> None:
    registry = await PostgresRegistry.open(postgres_dsn)
    store = await PostgresStateStore.open(postgres_dsn)
    observer = await asyncpg.connect(postgres_dsn)
    try:
        with stalled_publisher(postgres_dsn) as paused:
            with anyio.fail_after(30):
                while not stopped(paused.pid):
                    await anyio.sleep(0.1)
            [session] = await observer.fetch(SESSIONS_OF, f"charon[{paused.pid}]")
            assert (session["state"], session["wait_event"], session["locking"]) == (
                "active", "ClientRead", True)
            # Past the server's own timeout for a session idle in a transaction, the
            # paused one is still there; blocking no one, a heartbeat leaves it alone.
            await anyio.sleep(IDLE_SECONDS + 1)
            await store.heartbeat("replica-1", ["daily"], timedelta(seconds=30))
            assert len(await observer.fetch(SESSIONS_OF, f"charon[{paused.pid}]")) == 1
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
            assert await observer.fetch(SESSIONS_OF, f"charon[{paused.pid}]") == []
            assert [(entry["event"], entry["sessions"]) for entry in logs] == [
                ("ended sessions of charon processes paused in a statement", 1)]
    finally:
        await observer.close()
        await store.aclose()
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
