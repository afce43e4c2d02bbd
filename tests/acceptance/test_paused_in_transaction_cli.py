"""A `charon daemon` SIGSTOPped in the middle of one of its PostgreSQL transactions
holds that transaction's locks for as long as it stays stopped: a task's claim lock, or
the registry's publish lock, which every publisher takes. The server ends a charon
session idle in a transaction after a few seconds, so another replica takes the paused
one's days over and publishes each once; woken, the paused one finds its transaction
gone and carries on."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from contextlib import suppress
from datetime import date, timedelta
from pathlib import Path

import anyio
import asyncpg
import pytest

from orchestrator.stores.drivers.postgres import IDLE_IN_TRANSACTION_TIMEOUT_MS
from orchestrator.stores.registry.postgres import PostgresRegistry
from tests.support.replicas import Replicas, replicas_on

pytestmark = pytest.mark.slow

FIRST = date(2021, 1, 1)
DAYS = [(FIRST + timedelta(days=n)).isoformat() for n in range(400)]
CATCH_SECONDS = 60.0
# A charon session idle in a transaction, holding a lock another session could wait for.
HOLDING_A_LOCK = (
    "SELECT a.pid, a.xact_start, array_agg(DISTINCT l.locktype) AS locks"
    " FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid AND l.granted"
    " WHERE a.client_port = ANY($1::int[]) AND a.state = 'idle in transaction'"
    " AND l.locktype IN ('advisory', 'transactionid', 'tuple')"
    " GROUP BY a.pid, a.xact_start"
)
SESSION_ALIVE = "SELECT count(*) FROM pg_stat_activity WHERE pid = $1"


@pytest.fixture
def replicas(tmp_path: Path, postgres_dsn: str) -> Iterator[Replicas]:
    with replicas_on(tmp_path, postgres_dsn, DAYS, replica_timeout_seconds=3,
                     lease_seconds=10) as found:
        yield found


def client_ports(pid: int) -> list[int]:
    """The local ports of ``pid``'s TCP connections: its PostgreSQL sessions among them."""
    sockets = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with suppress(FileNotFoundError):  # closed since it was listed
            target = os.readlink(fd)
            if target.startswith("socket:["):
                sockets.add(target.removeprefix("socket:[").removesuffix("]"))
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in sockets:
                ports.append(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


async def pause_in_a_transaction(pid: int, observer: asyncpg.Connection) -> asyncpg.Record:
    """SIGSTOP ``pid`` while one of its sessions sits in a transaction holding a lock;
    the session as pg_stat_activity showed it. A transaction that ended between the
    look and the signal does not count: the process is woken and watched again."""
    deadline = time.monotonic() + CATCH_SECONDS
    while time.monotonic() < deadline:
        ports = client_ports(pid)
        seen = await observer.fetch(HOLDING_A_LOCK, ports)
        if not seen:
            continue
        os.kill(pid, signal.SIGSTOP)
        still = {(row["pid"], row["xact_start"]): row
                 for row in await observer.fetch(HOLDING_A_LOCK, ports)}
        for row in seen:
            if (row["pid"], row["xact_start"]) in still:
                return row
        os.kill(pid, signal.SIGCONT)
    pytest.fail(f"process {pid} was never seen in a transaction holding a lock")


async def sessions(observer: asyncpg.Connection) -> str:
    """What every session of the database does, and the locks it waits for."""
    rows = await observer.fetch(
        "SELECT pid, application_name, state, wait_event_type, wait_event,"
        " left(query, 100) AS query FROM pg_stat_activity WHERE datname = current_database()")
    return "\n".join(str(dict(row)) for row in rows)


@pytest.mark.timeout(240)
async def test_a_replica_paused_inside_a_transaction_does_not_stop_the_others(
    replicas: Replicas, postgres_dsn: str,
) -> None:
    registry = await PostgresRegistry.open(postgres_dsn)
    observer = await asyncpg.connect(postgres_dsn)

    try:
        replicas.start("a")
        await replicas.publish_inputs(registry, DAYS)
        paused = replicas.processes["a"]
        held = await pause_in_a_transaction(paused.pid, observer)
        replicas.start("b")

        # The server ends the paused session, and with it the locks it held.
        deadline = time.monotonic() + IDLE_IN_TRANSACTION_TIMEOUT_MS / 1000 + 10
        while await observer.fetchval(SESSION_ALIVE, held["pid"]):
            assert time.monotonic() < deadline, (
                f"the paused session still holds its {held['locks']} locks\n{replicas.logs()}")
            await anyio.sleep(0.2)
        deadline = time.monotonic() + 120
        while len(await replicas.published(registry)) < len(DAYS):
            if time.monotonic() > deadline:
                pytest.fail(f"not every day published while a replica is paused (caught"
                            f" {dict(held)}); sessions:\n{await sessions(observer)}\n"
                            f"{replicas.logs()}")
            await anyio.sleep(0.5)

        paused.send_signal(signal.SIGCONT)
        await replicas.wait(lambda: len(replicas.replicas("b")) == 2, 30, "the paused one back")
        await anyio.sleep(1)  # the woken replica's stale evaluations, had they run again
        assert paused.poll() is None, replicas.logs()
        assert await replicas.published(registry) == dict.fromkeys(DAYS, 1), replicas.logs()
        states = await observer.fetch("SELECT DISTINCT state FROM charon_state.runs")
        assert [row["state"] for row in states] == ["succeeded"]
    finally:
        await observer.close()
        await registry.aclose()
