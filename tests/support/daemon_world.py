"""A daemon over in-memory adapters and a fake job runner, for daemon and webhook tests."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date

import anyio

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.adapters import Adapters
from orchestrator.config import load_settings
from orchestrator.core.engine import build_engine
from orchestrator.daemon.daemon import Daemon
from orchestrator.model import Revision
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.workflows import WorkflowSettings
from orchestrator.testing import (
    FakeJobRunner,
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryStorage,
    InMemoryWarehouse,
)

TODAY = date(2018, 10, 31)
OUTPUT = "di.golden.path.charon.top_artists"


@dataclass
class World:
    registry: InMemoryRegistry
    warehouse: InMemoryWarehouse
    state: InMemoryStateStore
    runner: FakeJobRunner
    daemon: Daemon

    async def publish_day(self, day: str = "2018-10-31", uri: str = "/data/ecf/r1") -> Revision:
        await self.warehouse.create_table(
            TableSpec.parse(f"scio-playground:di_golden_path.track_entity_{day.replace('-', '')}"),
            [Column("track_gid", "STRING")], [("t1",)],
        )
        return await self.registry.publish(END_CONTENT_FACT, day, uri)

    async def wait_for(self, condition: Callable[[], bool], timeout: float = 5) -> None:
        with anyio.fail_after(timeout):
            while not condition():
                await anyio.sleep(0.005)

    async def output_revisions(self, day: str = "2018-10-31") -> list[Revision]:
        return await self.registry.list(OUTPUT, day)


def make_world(
    policy: str = "rerun", max_runs: int = 2, secret: str = "", *,
    state: InMemoryStateStore | None = None, max_attempts: int = 3,
    retry_delay_seconds: int = 60, grace_seconds: int = 1,
) -> World:
    registry, warehouse = InMemoryRegistry(), InMemoryWarehouse()
    storage, state = InMemoryStorage(), state or InMemoryStateStore()
    adapters = Adapters(registry, warehouse, storage, state, "/data/outputs")
    runner = FakeJobRunner(warehouse, storage)
    settings = load_settings({
        "CHARON_DAEMON__POLL_INTERVAL_MS": "10",
        "CHARON_DAEMON__SHUTDOWN_GRACE_SECONDS": str(grace_seconds),
    })
    workflow = WorkflowSettings(
        name="top_artists", module="jobs.top_artists", task="TopArtistsJob",
        params=(("top_n", 10),), lookback_days=1, policy=policy, max_concurrent_runs=max_runs,
        max_attempts=max_attempts, retry_delay_seconds=retry_delay_seconds,
    )
    settings = dataclasses.replace(
        settings, workflows=(workflow,),
        secrets=dataclasses.replace(settings.secrets, webhook_secret=secret),
    )
    daemon = Daemon(
        settings, adapters,
        lambda on_launch: build_engine(adapters, settings, runner, on_launch=on_launch),
        today=lambda: TODAY,
    )
    return World(registry, warehouse, state, runner, daemon)


@asynccontextmanager
async def running(world: World) -> AsyncIterator[World]:
    """The daemon running in the test's own task group, stopped at the end of the block."""
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        yield world
        await world.daemon.stop()


