"""One world of in-memory fakes for tests: every port, one clock, engines, a daemon.

``build_world()`` wires the in-memory registry, state store, warehouse, storage and
(optionally) database behind one ``Adapters``, with a ``FakeJobRunner`` over them, all
reading the same clock. A test that needs a store to misbehave passes its own subclass
of the in-memory registry or state store, and gets it back typed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import Generic, cast

import anyio

# typing_extensions comes with anyio on every Python without TypeVar defaults.
from typing_extensions import TypeVar

from orchestrator.adapters import build_engine, local_job_runner
from orchestrator.config import Settings, load_settings
from orchestrator.core.engine import Engine
from orchestrator.core.janitor import Janitor
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Report, Status
from orchestrator.daemon.daemon import Daemon
from orchestrator.errors import UsageError
from orchestrator.model import Revision, TableInfo
from orchestrator.stores.warehouse.base import Column
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.task import Task
from orchestrator.testing.clock import Clock, ManualClock, utc_now
from orchestrator.testing.data import InMemoryDatabase, InMemoryStorage, InMemoryWarehouse
from orchestrator.testing.jobs import FakeJobRunner
from orchestrator.testing.runlogs import InMemoryRunLogs
from orchestrator.testing.stores import InMemoryRegistry, InMemoryStateStore

R_co = TypeVar("R_co", bound=InMemoryRegistry, default=InMemoryRegistry, covariant=True)
S_co = TypeVar("S_co", bound=InMemoryStateStore, default=InMemoryStateStore, covariant=True)

OUTPUT_PREFIX = "/data/outputs"


@dataclasses.dataclass(frozen=True)
class World(Generic[R_co, S_co]):
    clock: Clock
    """What every store reads the time from: a ManualClock, or the wall clock."""
    registry: R_co
    state: S_co
    warehouse: InMemoryWarehouse
    storage: InMemoryStorage
    database: InMemoryDatabase | None
    runner: FakeJobRunner
    adapters: Adapters
    lease: timedelta = timedelta(hours=1)
    max_concurrent_runs: int = 4
    reports: dict[str, Report] = dataclasses.field(default_factory=dict)
    """The last report of each owner's engine (see ``run``)."""

    def engine(
        self, *, owner: str | None = None, runner: FakeJobRunner | None = None,
        max_concurrent_runs: int | None = None, lease: timedelta | None = None,
    ) -> Engine:
        """An engine over this world; several with distinct owners stand for replicas."""
        return Engine(
            self.adapters, runner=runner or self.runner, beam=load_settings({}).beam,
            max_concurrent_runs=max_concurrent_runs or self.max_concurrent_runs,
            lease=lease or self.lease, owner=owner,
        )

    async def run(
        self, owner: str, task: Task, *, runner: FakeJobRunner | None = None,
        max_concurrent_runs: int | None = None, lease: timedelta | None = None,
    ) -> Report:
        """``task`` run by a fresh engine of ``owner``, whose report is kept."""
        engine = self.engine(owner=owner, runner=runner,
                             max_concurrent_runs=max_concurrent_runs, lease=lease)
        report = self.reports[owner] = await engine.run(task)
        return report

    def outcome(self, owner: str, task: Task) -> Status:
        return self.reports[owner].outcomes[task.task_id].status

    def janitor(self) -> Janitor:
        """The janitor over this world, removing staging a lease old or older."""
        return Janitor(self.storage, self.warehouse, self.registry, self.state, self.lease,
                       "EU", clock=self.clock)

    def advance(self, delta: timedelta) -> None:
        if not isinstance(self.clock, ManualClock):
            raise UsageError("this world reads the wall clock; build it without real_time")
        self.clock.advance(delta)

    async def publish_inputs(
        self, partition: str, revisions: Mapping[str, str], tables: Sequence[TableSpec] = (),
    ) -> list[Revision]:
        """A revision of each endpoint (to its URI) and a one-row table at each spec."""
        for spec in tables:
            await self.input_table(spec)
        return [await self.registry.publish(endpoint, partition, uri)
                for endpoint, uri in revisions.items()]

    async def input_table(self, spec: TableSpec) -> TableInfo:
        """A one-row table: inputs are judged by being there, not by what they hold."""
        return await self.warehouse.create_table(spec, [Column("id", "STRING")], [("1",)])

    async def wait_for(
        self, condition: Callable[[], bool], timeout: float = 5,  # noqa: ASYNC109
    ) -> None:
        """Poll ``condition``: the fakes it looks at have no event to wait on."""
        with anyio.fail_after(timeout):
            while not condition():  # noqa: ASYNC110
                await anyio.sleep(0.005)

    def with_daemon(
        self, settings: Settings, *, today: Callable[[], date],
    ) -> DaemonWorld[R_co, S_co]:
        """This world with a daemon over it, its engines built as ``charon daemon`` does."""
        daemon = Daemon(
            settings, self.adapters,
            build_engine(self.adapters, settings, self.runner, local_runner=local_job_runner()),
            today=today,
        )
        # A daemon world's own daemon is replaced: two over one world stand for replicas.
        fields = {field.name: getattr(self, field.name) for field in dataclasses.fields(self)
                  if field.name != "daemon"}
        return DaemonWorld(**fields, daemon=daemon)


@dataclasses.dataclass(frozen=True)
class DaemonWorld(World[R_co, S_co]):
    daemon: Daemon = dataclasses.field(kw_only=True)


def build_world(
    *,
    registry: Callable[[Clock], R_co] | None = None,
    state: Callable[[Clock], S_co] | None = None,
    storage: Callable[[Clock], InMemoryStorage] | None = None,
    database: bool = False,
    output_prefix: str = OUTPUT_PREFIX,
    data_prefix: str = "",
    real_time: bool = False,
    lease: timedelta = timedelta(hours=1),
    max_concurrent_runs: int = 4,
) -> World[R_co, S_co]:
    """Every port in memory. ``registry``, ``state`` and ``storage`` build replacements
    of the plain fakes from the clock; ``real_time`` makes the stores read the wall
    clock, as a daemon's retries and lease takeovers are timed by it. ``lease`` and
    ``max_concurrent_runs`` are what the world's engines get unless told otherwise."""
    clock: Clock = utc_now if real_time else ManualClock()
    # The casts stand for the TypeVar defaults: without a factory, R_co and S_co are the fakes.
    built_registry = cast("R_co", (registry or InMemoryRegistry)(clock))
    built_state = cast("S_co", (state or InMemoryStateStore)(clock))
    built_storage = storage(clock) if storage else InMemoryStorage(now=clock)
    warehouse = InMemoryWarehouse(now=clock)
    db = InMemoryDatabase(now=clock) if database else None
    adapters = Adapters(built_registry, warehouse, built_storage, built_state, output_prefix,
                        db, data_prefix, run_logs=InMemoryRunLogs())
    return World(clock, built_registry, built_state, warehouse, built_storage, db,
                 FakeJobRunner(warehouse, built_storage), adapters, lease, max_concurrent_runs)
