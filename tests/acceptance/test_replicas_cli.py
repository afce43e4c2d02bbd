"""Two `charon daemon` replicas on one PostgreSQL share the watched days: each day's new
input is run by the replica that owns the day. One replica SIGKILLed, later the other
SIGSTOPped past its heartbeat: the survivor takes their days over, and every day is
still published exactly once."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import anyio.from_thread
import asyncpg
import pytest

from orchestrator.stores.registry.postgres import PostgresRegistry
from tests.support.replicas import Replicas, replicas_on

pytestmark = pytest.mark.slow

FIRST = date(2020, 1, 1)
DAYS = [(FIRST + timedelta(days=n)).isoformat() for n in range(24)]
TIMEOUT_SECONDS = 3
"""A replica silent this long is dead (daemon.replica_timeout_seconds)."""


@pytest.fixture
def replicas(tmp_path: Path, postgres_dsn: str) -> Iterator[Replicas]:
    with replicas_on(tmp_path, postgres_dsn, DAYS, replica_timeout_seconds=TIMEOUT_SECONDS,
                     lease_seconds=10) as found:
        yield found


@pytest.mark.timeout(180)
async def test_replicas_share_days_and_take_over_a_killed_or_paused_ones(
    replicas: Replicas, postgres_dsn: str,
) -> None:
    registry = await PostgresRegistry.open(postgres_dsn)

    def published() -> dict[str, int]:
        return anyio.from_thread.run(replicas.published, registry)

    try:
        replicas.start("a")
        replicas.start("b")
        await replicas.wait(lambda: len(replicas.replicas("a")) == 2 == len(replicas.replicas("b")),
                            30, "two replicas")
        owners = replicas.owners("a")
        assert owners == replicas.owners("b")
        assert set(owners.values()) == set(replicas.replicas("a"))  # both own days

        # Shared: each replica runs the new inputs of its own days, no other.
        first = DAYS[:8]
        await replicas.publish_inputs(registry, first)
        await replicas.wait(lambda: published().keys() == set(first), 60,
                            "the first days published")
        for name in ("a", "b"):
            own = sum(owners[day] == replicas.own_id(name) for day in first)
            assert replicas.launches(name) == own, replicas.logs()

        # SIGKILL: the killed replica's days are run by the other once it is dead.
        replicas.processes["b"].kill()
        second = DAYS[8:16]
        await replicas.publish_inputs(registry, second)
        await replicas.wait(lambda: published().keys() == set(first + second), 30,
                            "the killed replica's days taken over")
        assert replicas.replicas("a") == [replicas.own_id("a")]

        # SIGSTOP: a replica paused past its heartbeat is dropped; it rejoins on waking.
        replicas.start("c")
        await replicas.wait(lambda: len(replicas.replicas("a")) == 2, 30, "a third replica")
        replicas.processes["a"].send_signal(signal.SIGSTOP)
        third = DAYS[16:]
        await replicas.publish_inputs(registry, third)
        await replicas.wait(lambda: len(published()) == len(DAYS), 30,
                            "the paused replica's days taken over")
        replicas.processes["a"].send_signal(signal.SIGCONT)
        await replicas.wait(lambda: len(replicas.replicas("c")) == 2, 30, "the paused one back")
        await anyio.sleep(1)  # the woken replica's stale evaluations, had they run again

        assert await replicas.published(registry) == dict.fromkeys(DAYS, 1), replicas.logs()
        connection = await asyncpg.connect(postgres_dsn)
        try:
            runs = await connection.fetch("SELECT partition, state FROM charon_state.runs")
        finally:
            await connection.close()
        assert sorted(row["partition"] for row in runs) == DAYS
        assert {row["state"] for row in runs} == {"succeeded"}
    finally:
        await registry.aclose()

