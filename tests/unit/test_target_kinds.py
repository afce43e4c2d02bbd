"""Each place that acts on targets dispatches by target kind: an unknown kind is a clear
error there, never taken for a warehouse table; a subclass of a kind is that kind."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import cast

import pytest

from orchestrator.cli import render
from orchestrator.config import load_settings
from orchestrator.core import commit
from orchestrator.core.engine import Engine
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Status
from orchestrator.daemon.watch import target_key
from orchestrator.errors import UsageError
from orchestrator.tasks.targets import RegistryTarget, Target
from orchestrator.tasks.task import ExternalTask
from orchestrator.testing import (
    FakeJobRunner,
    InMemoryRegistry,
    InMemoryStateStore,
    InMemoryStorage,
    InMemoryWarehouse,
)
from sensors import Sensors
from sensors.facts import registry_key

UNKNOWN_KIND = r"no {} handler for target kind FtpFile \(ftp /a/b\); known kinds: PostgresTable"


@dataclass(frozen=True)
class FtpFile:
    path: str

    def __str__(self) -> str:
        return f"ftp {self.path}"


FTP = cast(Target, FtpFile("/a/b"))


class FtpInput(ExternalTask):
    def output(self) -> Target:
        return FTP


@dataclass(frozen=True)
class PinnedRegistryTarget(RegistryTarget):
    """A kind of its own that is a registry target."""


def adapters(warehouse: InMemoryWarehouse | None = None,
             storage: InMemoryStorage | None = None) -> Adapters:
    return Adapters(InMemoryRegistry(), warehouse or InMemoryWarehouse(),
                    storage or InMemoryStorage(), InMemoryStateStore(), "/out")


async def test_an_unknown_kind_is_refused_by_the_sensors_commit_watch_and_show() -> None:
    world = adapters()
    with pytest.raises(UsageError, match=UNKNOWN_KIND.format("sensor")):
        await Sensors(world.registry, world.warehouse).lookup("input", FTP)
    with pytest.raises(UsageError, match=UNKNOWN_KIND.format("commit")):
        await commit.stage({"output": FTP}, world)
    with pytest.raises(UsageError, match=UNKNOWN_KIND.format("watch")):
        target_key(FTP)
    with pytest.raises(UsageError, match=UNKNOWN_KIND.format("show")):
        await render.task_outputs(FtpInput(), world, limit=1)


async def test_the_engine_reports_an_unknown_kind_as_an_error_of_its_task() -> None:
    warehouse, storage = InMemoryWarehouse(), InMemoryStorage()
    world = adapters(warehouse, storage)
    engine = Engine(world, runner=FakeJobRunner(warehouse, storage),
                    beam=load_settings({}).beam, max_concurrent_runs=1,
                    lease=timedelta(hours=1))
    outcome = (await engine.run(FtpInput())).outcomes[FtpInput().task_id]
    assert outcome.status is Status.ERROR
    assert "no sensor handler for target kind FtpFile" in outcome.detail


async def test_a_subclass_of_a_kind_is_handled_as_that_kind() -> None:
    world = adapters()
    target = PinnedRegistryTarget("di.some.endpoint", "2018-10-31")
    assert target_key(target) == registry_key("di.some.endpoint", "2018-10-31")
    assert await Sensors(world.registry, world.warehouse).lookup("input", target) is None
    staged = await commit.stage({"output": target}, world)
    assert staged["output"].startswith("/out/di.some.endpoint/2018-10-31/")
