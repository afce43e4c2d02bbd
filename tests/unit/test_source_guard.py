"""A source that stops answering holds up only the lookups that need it (sensors/guard.py).

The warehouse below accepts a lookup and never answers, as a paused server does, until
the test lets it; the registry beside it answers at once.
"""

from __future__ import annotations

import builtins
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta

import anyio
import pytest
import structlog

from orchestrator.config import load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Status
from orchestrator.errors import SourceNotAnswering, WarehouseError
from orchestrator.model import TableInfo
from orchestrator.stores.storage.base import ObjectInfo
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget, Target, WarehouseTable
from orchestrator.tasks.task import ExternalTask, Task
from orchestrator.testing import (
    FakeJobRunner,
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryStorage,
    InMemoryWarehouse,
)
from sensors import Sensors
from sensors.facts import Trigger
from sensors.guard import WAREHOUSE, SourceGuard, SourceGuards
from sensors.watches import TableWatch

TIMEOUT = 0.5
AT_ONCE = 0.2
"""Seconds within which a lookup that fails at once has failed (a noisy machine's)."""
LATE = 3.0
"""Seconds past the timeout after which a lookup bounded by it has certainly overrun."""
TABLE = WarehouseTable("scio-playground", "ds", "t_20200101")
OTHER_TABLE = WarehouseTable("scio-playground", "ds", "t_20200102")
PLAYS = RegistryTarget("plays", "2020-01-01")


class PausedWarehouse(InMemoryWarehouse):
    """Takes every lookup and answers none until ``resume()``, or answers each at once
    with an error while ``failing``; ``asked`` counts them."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0
        self.failing = False
        self._resumed = anyio.Event()

    def resume(self) -> None:
        self._resumed.set()

    async def table_info(self, spec: TableSpec) -> TableInfo | None:
        await self._answer()
        return await super().table_info(spec)

    async def list_tables(self, project: str, dataset: str) -> list[TableInfo]:
        await self._answer()
        return await super().list_tables(project, dataset)

    async def _answer(self) -> None:
        self.asked += 1
        if self.failing:
            raise WarehouseError("BigQuery answered 500")
        await self._resumed.wait()


async def published_registry() -> InMemoryRegistry:
    registry = InMemoryRegistry()
    await registry.publish(PLAYS.endpoint, PLAYS.partition, "/data/plays/2020-01-01")
    return registry


async def seconds_to_fail(lookup: Callable[[], Awaitable[object]]) -> float:
    """How long ``lookup`` took to raise SourceNotAnswering (the test fails if it hangs)."""
    started = time.monotonic()
    with anyio.fail_after(TIMEOUT + LATE), pytest.raises(SourceNotAnswering):
        await lookup()
    return time.monotonic() - started


async def test_a_lookup_the_source_does_not_answer_fails_within_the_timeout() -> None:
    sensors = Sensors(InMemoryRegistry(), PausedWarehouse(), guards=SourceGuards(TIMEOUT))
    started = time.monotonic()
    with anyio.fail_after(TIMEOUT + LATE), pytest.raises(
            SourceNotAnswering, match=r"the warehouse did not answer a lookup within 0\.5 s"):
        await sensors.lookup("table", TABLE)
    assert time.monotonic() - started >= TIMEOUT


async def test_then_its_lookups_fail_at_once_without_asking_while_others_answer() -> None:
    warehouse = PausedWarehouse()
    sensors = Sensors(await published_registry(), warehouse, guards=SourceGuards(TIMEOUT))
    await seconds_to_fail(lambda: sensors.lookup("table", TABLE))
    asked = warehouse.asked

    assert await seconds_to_fail(lambda: sensors.lookup("other", OTHER_TABLE)) < AT_ONCE
    assert await seconds_to_fail(lambda: sensors.lookup_many({"table": TABLE})) < AT_ONCE
    assert warehouse.asked == asked
    with anyio.fail_after(AT_ONCE):
        found = await sensors.lookup("plays", PLAYS)
    assert found is not None


async def test_the_lookups_waiting_on_it_fail_with_the_first() -> None:
    sensors = Sensors(InMemoryRegistry(), PausedWarehouse(), guards=SourceGuards(TIMEOUT))
    ended: list[float] = []

    async def look_up(key: str, target: Target) -> None:
        with pytest.raises(SourceNotAnswering):
            await sensors.lookup(key, target)
        ended.append(time.monotonic())

    started = time.monotonic()
    with anyio.fail_after(TIMEOUT + LATE):
        async with anyio.create_task_group() as group:
            group.start_soon(look_up, "table", TABLE)
            await anyio.sleep(TIMEOUT * 0.6)
            group.start_soon(look_up, "other", OTHER_TABLE)
    # The second asked 0.3 s after the first: it ends with it, not 0.3 s after it.
    assert max(ended) - started < TIMEOUT + (TIMEOUT * 0.6) * 0.5


async def test_as_long_again_later_one_lookup_tries_it_and_its_answer_ends_the_outage(
) -> None:
    warehouse = PausedWarehouse()
    sensors = Sensors(InMemoryRegistry(), warehouse, guards=SourceGuards(TIMEOUT))
    await seconds_to_fail(lambda: sensors.lookup("table", TABLE))
    await anyio.sleep(TIMEOUT)
    asked = warehouse.asked
    async with anyio.create_task_group() as group:
        group.start_soon(sensors.lookup, "table", TABLE)  # the one that tries it
        await anyio.wait_all_tasks_blocked()
        assert warehouse.asked == asked + 1
        # Meanwhile the others fail at once, and do not ask.
        assert await seconds_to_fail(lambda: sensors.lookup("other", OTHER_TABLE)) < AT_ONCE
        assert warehouse.asked == asked + 1
        warehouse.resume()
    with anyio.fail_after(AT_ONCE):
        assert await sensors.lookup("other", OTHER_TABLE) is None


async def test_a_lookup_that_tries_it_and_gets_no_answer_fails_it_as_long_again() -> None:
    warehouse = PausedWarehouse()
    sensors = Sensors(InMemoryRegistry(), warehouse, guards=SourceGuards(TIMEOUT))
    await seconds_to_fail(lambda: sensors.lookup("table", TABLE))
    await anyio.sleep(TIMEOUT)
    assert await seconds_to_fail(lambda: sensors.lookup("table", TABLE)) >= TIMEOUT
    asked = warehouse.asked
    assert await seconds_to_fail(lambda: sensors.lookup("table", TABLE)) < AT_ONCE
    assert warehouse.asked == asked


async def test_an_error_answered_in_time_is_an_answer_not_an_outage() -> None:
    warehouse = PausedWarehouse()
    warehouse.failing = True
    sensors = Sensors(InMemoryRegistry(), warehouse, guards=SourceGuards(TIMEOUT))
    for asked in range(1, 4):
        with pytest.raises(WarehouseError, match="BigQuery answered 500"):
            await sensors.lookup("table", TABLE)
        assert warehouse.asked == asked


async def test_an_error_answered_to_the_lookup_trying_it_ends_the_outage() -> None:
    warehouse = PausedWarehouse()
    sensors = Sensors(InMemoryRegistry(), warehouse, guards=SourceGuards(TIMEOUT))
    await seconds_to_fail(lambda: sensors.lookup("table", TABLE))
    await anyio.sleep(TIMEOUT)
    warehouse.failing = True
    with pytest.raises(WarehouseError):
        await sensors.lookup("table", TABLE)
    warehouse.failing = False  # it takes lookups and answers none again
    asked = warehouse.asked
    async with anyio.create_task_group() as group:
        group.start_soon(seconds_to_fail, lambda: sensors.lookup("table", TABLE))
        group.start_soon(seconds_to_fail, lambda: sensors.lookup("other", OTHER_TABLE))
        await anyio.wait_all_tasks_blocked()
        assert warehouse.asked == asked + 2  # both asked: neither failed at once


async def test_a_batch_keeps_the_answers_of_the_sources_that_answer() -> None:
    sensors = Sensors(await published_registry(), PausedWarehouse(),
                      guards=SourceGuards(TIMEOUT))
    targets: dict[str, Target] = {"table": TABLE, "plays": PLAYS, "other": OTHER_TABLE}
    with anyio.fail_after(TIMEOUT + LATE):
        found, failures = await sensors.lookup_answered(targets)
    assert set(found) == {"plays"}
    assert found["plays"] is not None
    assert [type(failure) for failure in failures] == [SourceNotAnswering]
    with anyio.fail_after(AT_ONCE), pytest.raises(SourceNotAnswering):
        await sensors.lookup_many(targets)


def engine_over(warehouse: InMemoryWarehouse, storage: InMemoryStorage) -> Engine:
    """An engine whose lookups are bounded by TIMEOUT."""
    return Engine(Adapters(InMemoryRegistry(), warehouse, storage, InMemoryStateStore(), "/out"),
                  runner=FakeJobRunner(warehouse, storage), beam=load_settings({}).beam,
                  max_concurrent_runs=1, lease=timedelta(hours=1),
                  guards=SourceGuards(TIMEOUT))


class TableInput(ExternalTask):
    def output(self) -> WarehouseTable:
        return TABLE


async def test_the_nodes_a_silent_source_fails_are_not_each_said_again() -> None:
    engine = engine_over(PausedWarehouse(), InMemoryStorage())
    with structlog.testing.capture_logs() as logs, anyio.fail_after(TIMEOUT + LATE):
        for _ in range(3):
            outcome = (await engine.run(TableInput())).outcomes[TableInput().task_id]
            assert outcome.status is Status.ERROR
            assert "SourceNotAnswering: the warehouse" in outcome.detail
    warned = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert warned == ["source not answering: its lookups fail at once for a while"]


async def test_a_poll_and_the_lookups_of_one_source_share_one_outage() -> None:
    """The daemon polls the warehouse's tables with the engine's guard of it: once the
    poll has waited out the timeout, the engine's lookups fail at once, without asking,
    and the outage is said once, not once by each."""
    warehouse = PausedWarehouse()
    engine = engine_over(warehouse, InMemoryStorage())
    send, receive = anyio.create_memory_object_stream[Trigger](1)
    spec = TABLE.spec
    tables = TableWatch(warehouse, lambda: {(spec.project, spec.dataset): {str(spec)}}, send,
                        engine.guards[WAREHOUSE])
    with send, receive, structlog.testing.capture_logs() as logs:
        assert await seconds_to_fail(tables.poll_once) >= TIMEOUT
        asked = warehouse.asked
        with anyio.fail_after(AT_ONCE):
            outcome = (await engine.run(TableInput())).outcomes[TableInput().task_id]
        assert outcome.status is Status.ERROR
        assert "SourceNotAnswering: the warehouse" in outcome.detail
        assert warehouse.asked == asked
    warned = [entry["event"] for entry in logs if entry["log_level"] == "warning"]
    assert warned == ["source not answering: its lookups fail at once for a while"]


class PausedStorage(InMemoryStorage):
    """Storage whose listings, once ``paused``, are taken and never answered."""

    paused = False

    async def list(self, prefix: str) -> builtins.list[ObjectInfo]:
        if self.paused:
            await anyio.sleep_forever()
        return await super().list(prefix)


class Written(Task):
    def output(self) -> RegistryTarget:
        return RegistryTarget("written", "2020-01-01")

    async def run(self, context: RunContext) -> None:
        await context.storage.write(f"{context.outputs['output']}/part", b"written\n")


async def test_whether_an_output_is_still_there_is_asked_of_storage_bounded_too() -> None:
    storage = PausedStorage()
    engine = engine_over(InMemoryWarehouse(), storage)
    assert (await engine.run(Written())).outcomes[Written().task_id].status is Status.DONE
    storage.paused = True  # is its output still there? storage takes the question, no more
    with anyio.fail_after(TIMEOUT + LATE):
        outcome = (await engine.run(Written())).outcomes[Written().task_id]
    assert outcome.status is Status.ERROR
    assert "storage did not answer a lookup within 0.5 s" in outcome.detail


def test_a_lookup_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="must be positive"):
        SourceGuard("the warehouse", 0)
