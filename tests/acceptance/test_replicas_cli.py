"""Two `charon daemon` replicas on one PostgreSQL share the watched days: each day's new
input is run by the replica that owns the day. One replica SIGKILLed, later the other
SIGSTOPped past its heartbeat: the survivor takes their days over, and every day is
still published exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio.from_thread
import anyio.to_thread
import asyncpg
import pytest

from bench.noop_tasks import INPUT_ENDPOINT, OUTPUT_ENDPOINT
from orchestrator.stores.registry.postgres import PostgresRegistry
from tests.acceptance.conftest import CHARON, daily_daemon, start

pytestmark = pytest.mark.slow

FIRST = date(2020, 1, 1)
DAYS = [(FIRST + timedelta(days=n)).isoformat() for n in range(24)]
TIMEOUT_SECONDS = 3
"""A replica silent this long is dead (daemon.replica_timeout_seconds)."""


@dataclass
class Replicas:
    tmp: Path
    env: dict[str, str]
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    def start(self, name: str) -> None:
        process, url = start([CHARON, "daemon", "--port", "0"], self.env,
                             self.tmp / f"{name}.log", "daemon listening on ")
        self.processes[name], self.urls[name] = process, url

    def get(self, name: str, path: str) -> Any:
        with urllib.request.urlopen(f"{self.urls[name]}{path}", timeout=10) as response:  # noqa: S310  # loopback
            return json.load(response) if path.startswith("/status") else response.read()

    def replicas(self, name: str) -> list[str]:
        return list(self.get(name, "/status?limit=1")["replicas"])

    def owners(self, name: str) -> dict[str, str]:
        """Each watched day's replica, as ``name`` shares them."""
        partitions = self.get(name, f"/status?limit={len(DAYS)}")["partitions"]
        return {p["partition"]: p["evaluated_by"] for p in partitions}

    def launches(self, name: str) -> int:
        for line in self.get(name, "/metrics").decode().splitlines():
            if line.startswith("charon_launches_total{"):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}"
                         for log in sorted(self.tmp.glob("*.log")))


@pytest.fixture
def replicas(tmp_path: Path, postgres_dsn: str) -> Iterator[Replicas]:
    env = {**daily_daemon(tmp_path, DAYS[0], DAYS[-1], postgres_dsn,
                          "max_concurrent_runs = 8\n"),
           "CHARON_STATE__KIND": "postgres", "CHARON_STATE__DSN": postgres_dsn,
           "CHARON_DAEMON__POLL_INTERVAL_MS": "200",
           "CHARON_DAEMON__REPLICA_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
           "CHARON_ENGINE__LEASE_SECONDS": "10"}
    found = Replicas(tmp_path, env)
    try:
        yield found
    finally:
        for process in found.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.kill()
                process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


async def wait(condition: Callable[[], bool], timeout: float, what: str,
               replicas: Replicas) -> None:
    def poll() -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                pytest.fail(f"timed out waiting for {what}\n{replicas.logs()}")
            time.sleep(0.2)

    await anyio.to_thread.run_sync(poll)


async def publish_inputs(registry: PostgresRegistry, home: Path, days: list[str]) -> None:
    for day in days:
        folder = home / "storage" / "inputs" / day
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part").write_text("input\n")
        await registry.publish(INPUT_ENDPOINT, day, str(folder))


async def published(registry: PostgresRegistry) -> dict[str, int]:
    """The days with an output, and how many revisions each has."""
    counts = {day: len(await registry.list(OUTPUT_ENDPOINT, day)) for day in DAYS}
    return {day: count for day, count in counts.items() if count}


@pytest.mark.timeout(180)
async def test_replicas_share_days_and_take_over_a_killed_or_paused_ones(
    replicas: Replicas, postgres_dsn: str,
) -> None:
    home = replicas.tmp / "home"
    registry = await PostgresRegistry.open(postgres_dsn)
    try:
        replicas.start("a")
        replicas.start("b")
        await wait(lambda: len(replicas.replicas("a")) == len(replicas.replicas("b")) == 2,
                   30, "two replicas", replicas)
        owners = replicas.owners("a")
        assert owners == replicas.owners("b")
        assert set(owners.values()) == set(replicas.replicas("a"))  # both own days

        # Shared: each replica runs the new inputs of its own days, no other.
        first = DAYS[:8]
        await publish_inputs(registry, home, first)
        await wait(lambda: anyio.from_thread.run(published, registry).keys() == set(first),
                   60, "the first days published", replicas)
        for name in ("a", "b"):
            own = sum(owners[day] == _own_id(replicas, name) for day in first)
            assert replicas.launches(name) == own, replicas.logs()

        # SIGKILL: the killed replica's days are run by the other once it is dead.
        replicas.processes["b"].kill()
        second = DAYS[8:16]
        await publish_inputs(registry, home, second)
        await wait(lambda: anyio.from_thread.run(published, registry).keys() ==
                   set(first + second), 30, "the killed replica's days taken over", replicas)
        assert replicas.replicas("a") == [_own_id(replicas, "a")]

        # SIGSTOP: a replica paused past its heartbeat is dropped; it rejoins on waking.
        replicas.start("c")
        await wait(lambda: len(replicas.replicas("a")) == 2, 30, "a third replica", replicas)
        replicas.processes["a"].send_signal(signal.SIGSTOP)
        third = DAYS[16:]
        await publish_inputs(registry, home, third)
        await wait(lambda: len(anyio.from_thread.run(published, registry)) == len(DAYS),
                   30, "the paused replica's days taken over", replicas)
        replicas.processes["a"].send_signal(signal.SIGCONT)
        await wait(lambda: len(replicas.replicas("c")) == 2, 30, "the paused one back",
                   replicas)
        await anyio.sleep(1)  # the woken replica's stale evaluations, had they run again

        assert await published(registry) == dict.fromkeys(DAYS, 1), replicas.logs()
        connection = await asyncpg.connect(postgres_dsn)
        try:
            runs = await connection.fetch("SELECT partition, state FROM charon_state.runs")
        finally:
            await connection.close()
        assert sorted(row["partition"] for row in runs) == DAYS
        assert {row["state"] for row in runs} == {"succeeded"}
    finally:
        await registry.aclose()


def _own_id(replicas: Replicas, name: str) -> str:
    own: str = replicas.get(name, "/status?limit=1")["owner"]
    return own
