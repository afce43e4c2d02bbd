"""What the daemon's start-up sweep does a day, counted: the tasks that the first
evaluation of many days waiting for their input costs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Coroutine
from datetime import date
from typing import Any

import pytest

from bench.noop_tasks import INPUT_ENDPOINT, Daily, Leaves
from orchestrator.core.report import Status
from orchestrator.testing.world import build_world

FIRST = date(2020, 1, 1)


@pytest.fixture
async def tasks_started() -> AsyncIterator[list[int]]:
    """How many asyncio tasks the test's loop starts from now on."""
    loop = asyncio.get_running_loop()
    started = [0]

    def counting(loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, Any],
                 **kwargs: Any) -> asyncio.Task[Any]:
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
