"""`charon daemon` replicas as real processes on one PostgreSQL, for the acceptance
tests that kill, pause and race them: each watches bench.noop_tasks.Daily over a few
days, publishes to the registry on PostgreSQL and keeps its state there too."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from bench.noop_tasks import INPUT_ENDPOINT, OUTPUT_ENDPOINT
from orchestrator.stores.registry.postgres import PostgresRegistry
from tests.acceptance.conftest import CHARON, daily_daemon, start


@dataclass
class Replicas:
    tmp: Path
    env: dict[str, str]
    days: Sequence[str]
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    urls: dict[str, str] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.tmp / "home"

    def start(self, name: str) -> None:
        process, url = start([CHARON, "daemon", "--port", "0"], self.env,
                             self.tmp / f"{name}.log", "daemon listening on ")
        self.processes[name], self.urls[name] = process, url

    def get(self, name: str, path: str) -> Any:
        with urllib.request.urlopen(f"{self.urls[name]}{path}", timeout=10) as response:  # noqa: S310  # loopback
            return json.load(response) if path.startswith("/status") else response.read()

    def replicas(self, name: str) -> list[str]:
        return list(self.get(name, "/status?limit=1")["replicas"])

    def own_id(self, name: str) -> str:
        own: str = self.get(name, "/status?limit=1")["owner"]
        return own

    def owners(self, name: str) -> dict[str, str]:
        """Each watched day's replica, as ``name`` shares them."""
        partitions = self.get(name, f"/status?limit={len(self.days)}")["partitions"]
        return {p["partition"]: p["evaluated_by"] for p in partitions}

    def launches(self, name: str) -> int:
        for line in self.get(name, "/metrics").decode().splitlines():
            if line.startswith("charon_launches_total{"):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0

    def logs(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-3000:]}"
                         for log in sorted(self.tmp.glob("*.log")))

    async def wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll ``condition`` (in a thread: it may call the replicas) until it holds;
        fail with the replicas' logs after ``timeout`` seconds."""
        def poll() -> None:
            deadline = time.monotonic() + timeout
            while not condition():
                if time.monotonic() > deadline:
                    pytest.fail(f"timed out waiting for {what}\n{self.logs()}")
                time.sleep(0.2)

        await anyio.to_thread.run_sync(poll)

    async def publish_inputs(self, registry: PostgresRegistry, days: Sequence[str]) -> None:
        for day in days:
            folder = self.home / "storage" / "inputs" / day
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "part").write_text("input\n")
            await registry.publish(INPUT_ENDPOINT, day, str(folder))

    async def published(self, registry: PostgresRegistry) -> dict[str, int]:
        """The days with an output, and how many revisions each has."""
        counts = {day: len(await registry.list(OUTPUT_ENDPOINT, day)) for day in self.days}
        return {day: count for day, count in counts.items() if count}


@contextmanager
def replicas_on(tmp_path: Path, dsn: str, days: Sequence[str], *,
                replica_timeout_seconds: int, lease_seconds: int) -> Iterator[Replicas]:
    """Replicas (none started yet) sharing ``days`` on the PostgreSQL at ``dsn``; every
    one still running at the end is woken and killed."""
    env = {**daily_daemon(tmp_path, days[0], days[-1], dsn, "max_concurrent_runs = 8\n"),
           "CHARON_STATE__KIND": "postgres", "CHARON_STATE__DSN": dsn,
           "CHARON_DAEMON__POLL_INTERVAL_MS": "200",
           "CHARON_DAEMON__REPLICA_TIMEOUT_SECONDS": str(replica_timeout_seconds),
           "CHARON_ENGINE__LEASE_SECONDS": str(lease_seconds)}
    found = Replicas(tmp_path, env, days)
    try:
        yield found
    finally:
        for process in found.processes.values():
            if process.poll() is None:
                process.kill()  # stopped or not
                process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()
