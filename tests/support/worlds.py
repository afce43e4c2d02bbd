"""The top-artists day the engine and daemon tests build on: its inputs, its output,
and a daemon running the top_artists workflow over an in-memory world."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import date

import anyio
from typing_extensions import TypeVar

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.config import load_settings
from orchestrator.errors import StateStoreError
from orchestrator.model import Revision, Run
from orchestrator.tablespec import TableSpec
from orchestrator.testing.clock import Clock
from orchestrator.testing.stores import InMemoryRegistry, InMemoryStateStore
from orchestrator.testing.world import DaemonWorld, World, build_world
from orchestrator.workflows import WorkflowSettings

S = TypeVar("S", bound=InMemoryStateStore, default=InMemoryStateStore)

TODAY = date(2018, 10, 31)
DAY = "2018-10-31"
OUTPUT = "di.golden.path.charon.top_artists"


def track_entity(day: str = DAY) -> TableSpec:
    return TableSpec.parse(f"scio-playground:di_golden_path.track_entity_{day.replace('-', '')}")


async def publish_day(world: World, day: str = DAY, uri: str = "/data/ecf/r1") -> Revision:
    """The job's two inputs for ``day``: the track table, then the stream revision."""
    [revision] = await world.publish_inputs(day, {END_CONTENT_FACT: uri}, [track_entity(day)])
    return revision


async def output_revisions(world: World, day: str = DAY) -> list[Revision]:
    return await world.registry.list(OUTPUT, day)


def make_world(
    policy: str = "rerun", max_runs: int = 2, secret: str = "", *,
    state: Callable[[Clock], S] | None = None, max_attempts: int = 3,
    retry_delay_seconds: int = 60, grace_seconds: int = 1, lookback_days: int = 1,
    engine_runs: int = 4,
) -> DaemonWorld[InMemoryRegistry, S]:
    """A daemon watching top_artists over an in-memory world on the wall clock."""
    settings = load_settings({
        "CHARON_DAEMON__POLL_INTERVAL_MS": "10",
        "CHARON_DAEMON__SHUTDOWN_GRACE_SECONDS": str(grace_seconds),
        "CHARON_ENGINE__MAX_CONCURRENT_RUNS": str(engine_runs),
    })
    workflow = WorkflowSettings(
        name="top_artists", module="jobs.top_artists", task="TopArtistsJob",
        params=(("top_n", 10),), lookback_days=lookback_days, policy=policy,
        max_concurrent_runs=max_runs,
        max_attempts=max_attempts, retry_delay_seconds=retry_delay_seconds,
    )
    settings = dataclasses.replace(
        settings, workflows=(workflow,),
        secrets=dataclasses.replace(settings.secrets, webhook_secret=secret),
    )
    world = build_world(state=state, real_time=True)
    return world.with_daemon(settings, today=lambda: TODAY)


@asynccontextmanager
async def running(world: DaemonWorld) -> AsyncIterator[DaemonWorld]:
    """The daemon running in the test's own task group, stopped at the end of the block."""
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        yield world
        await world.daemon.stop()


class FlakyStateStore(InMemoryStateStore):
    """A state store whose reads of a run fail while ``broken``: a store restarting."""

    broken = False

    async def get(self, task_id: str, fingerprint: str) -> Run | None:
        if self.broken:
            raise StateStoreError("the state store is restarting")
        return await super().get(task_id, fingerprint)
