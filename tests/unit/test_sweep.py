"""What the daemon's start-up sweep does a day, counted: the registry calls and the
tasks that the first evaluation of many days waiting for their input costs."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Generator, Sequence
from datetime import date, timedelta
from typing import Any, TypeVar

import pytest

from bench.noop_tasks import INPUT_ENDPOINT, Daily, Leaves
from orchestrator.config import load_settings
from orchestrator.core.report import Status
from orchestrator.daemon.ready import BATCH
from orchestrator.errors import RegistryError
from orchestrator.model import Revision
from orchestrator.testing import InMemoryRegistry
from orchestrator.testing.clock import Clock
from orchestrator.testing.world import DaemonWorld, build_world
from orchestrator.workflows import WorkflowSettings
from tests.support.worlds import running

T = TypeVar("T")
DAYS = 600
FIRST = date(2020, 1, 1)
LAST = FIRST + timedelta(days=DAYS - 1)


class CountingRegistry(InMemoryRegistry):
    """Counts the lookups of partitions; the first can fail, or run ``after_first``
    before it answers what it found."""

    def __init__(self, now: Clock) -> None:
        super().__init__(now)
        self.lookups = 0
        self.fail_first = False
        self.after_first: Callable[[], Awaitable[None]] | None = None

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        self.lookups += 1
        return await super().latest(endpoint, partition)

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        self.lookups += 1
        first = self.lookups == 1
        if first and self.fail_first:
            raise RegistryError("registry unavailable")
        found = await super().latest_many(endpoint, partitions)
        if first and self.after_first is not None:
            await self.after_first()
        return found


def sweeping_world() -> DaemonWorld[CountingRegistry]:
    """A daemon watching DAYS days of bench.noop_tasks.Daily, none of whose inputs is there."""
    settings = load_settings({"CHARON_DAEMON__POLL_INTERVAL_MS": "10"})
    workflow = WorkflowSettings(name="daily", module="bench.noop_tasks", task="Daily",
                                start=FIRST.isoformat(), end=LAST.isoformat())
    settings = dataclasses.replace(settings, workflows=(workflow,))
    world = build_world(registry=CountingRegistry, real_time=True)
    return world.with_daemon(settings, today=lambda: LAST)


async def sweep(world: DaemonWorld[CountingRegistry]) -> None:
    async with running(world):
        await world.wait_for(lambda: len(world.daemon.roots) == DAYS and all(
            state.verdict and not state.evaluating for state in world.daemon.roots.values()
        ), timeout=60)


def waiting_for_their_input(world: DaemonWorld[CountingRegistry]) -> int:
    return sum(state.verdict is not None and state.verdict.status is Status.BLOCKED
               and len(state.verdict.waiting_for) == 1 and INPUT_ENDPOINT in
               state.verdict.waiting_for[0] for state in world.daemon.roots.values())


async def test_a_sweep_looks_the_days_inputs_up_a_batch_of_days_at_a_time() -> None:
    world = sweeping_world()
    await sweep(world)
    assert waiting_for_their_input(world) == DAYS
    # One lookup a day before: 600.
    assert world.registry.lookups <= math.ceil(DAYS / BATCH)


async def test_a_failed_batched_lookup_leaves_each_day_to_look_its_own_up() -> None:
    world = sweeping_world()
    world.registry.fail_first = True
    await sweep(world)
    assert waiting_for_their_input(world) == DAYS
    assert world.registry.lookups > BATCH  # the failed batch's days, one by one


async def test_an_input_published_after_the_batched_lookup_is_not_missed() -> None:
    """A day still queued when a fact about it comes after the lookup made for its
    batch looks its input up again: it runs, rather than waits for what is there."""
    world = sweeping_world()
    queued = FIRST + timedelta(days=BATCH - 1)  # its batch's last: no evaluator has it yet

    async def publish_and_take_its_fact() -> None:
        await world.registry.publish(INPUT_ENDPOINT, queued.isoformat(), "/in/late")
        await world.wait_for(lambda: world.daemon.metrics.triggers.value(source="registry") > 0)

    world.registry.after_first = publish_and_take_its_fact
    await sweep(world)
    assert world.daemon.metrics.launches.value(workflow="daily") == 1
    assert waiting_for_their_input(world) == DAYS - 1


@pytest.fixture
async def tasks_started() -> AsyncIterator[list[int]]:
    """How many asyncio tasks the test's loop starts from now on."""
    loop = asyncio.get_running_loop()
    started = [0]

    def counting(loop: asyncio.AbstractEventLoop,
                 coro: Coroutine[Any, Any, T] | Generator[Any, None, T], /,
                 **kwargs: Any) -> asyncio.Future[T]:
        started[0] += 1
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(counting)
    yield started
    loop.set_task_factory(None)


async def test_nodes_blocked_by_a_missing_input_take_no_task(
    tasks_started: list[int], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Leaves each waiting for their input, then the wrapper waiting for them: settled
    where the inputs' batched check ends. An evaluation that claims nothing starts
    no lease keeper either."""
    monkeypatch.setenv("BENCH_TASKS", "300")
    world = build_world(real_time=True)
    started = tasks_started[0]
    report = await world.engine().run(Leaves())
    statuses = [outcome.status for outcome in report.outcomes.values()]
    assert statuses.count(Status.BLOCKED) == 301
    assert statuses.count(Status.MISSING) == 300
    # An evaluator task for each blocked node and a keeper before: 257.
    assert tasks_started[0] == started
    # Listed (as `charon run` prints them) in the order evaluators settled them before:
    # the inputs, then the leaves they block, then what the leaves block.
    kinds = [type(report.tasks[task_id]).__name__ for task_id in report.outcomes]
    assert kinds == ["LookupDaily"] * 300 + ["Leaf"] * 300 + ["Leaves"]


async def test_a_day_whose_input_is_there_takes_one_task_when_it_runs_nothing(
    tasks_started: list[int],
) -> None:
    world = build_world(real_time=True)
    day = Daily(date=FIRST)
    await world.registry.publish(INPUT_ENDPOINT, FIRST.isoformat(), "/in/r1")
    assert (await world.engine().run(day)).outcomes[day.task_id].status is Status.DONE
    started = tasks_started[0]
    again = await world.engine().run(day)
    assert again.outcomes[day.task_id].status is Status.COMPLETE
    # Its evaluator; its lease keeper too before, though it claimed nothing.
    assert tasks_started[0] - started == 1
