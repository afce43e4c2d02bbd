"""The engine: evaluates a task graph and runs what is missing, in dependency order.

Each node waits for its dependencies, looks its inputs up through the sensors,
fingerprints them, claims the run in the state store, launches it within the
concurrency limit, and commits its outputs. A node whose outputs already exist for
the current fingerprint does nothing.
"""

from __future__ import annotations

import contextlib
import enum
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import anyio
import structlog

from jobs.launcher import beam_command
from orchestrator import commit
from orchestrator.adapters import Adapters
from orchestrator.config import BeamSettings, Settings
from orchestrator.errors import CharonError, RunConflict, UsageError
from orchestrator.graph import Graph, resolve
from orchestrator.model import InputRevision, Run, RunState, fingerprint
from orchestrator.ports import JobRunner
from orchestrator.runcontext import RunContext
from orchestrator.targets import Target
from orchestrator.task import (
    BeamJobTask,
    ExternalTask,
    Task,
    WrapperTask,
    outputs,
    requirements,
)
from sensors import Sensors


class Status(enum.StrEnum):
    DONE = "done"  # ran now and published
    COMPLETE = "complete"  # outputs already existed for the current fingerprint
    AVAILABLE = "available"  # an external input that is there
    MISSING = "missing"  # an external input that is not there yet
    BLOCKED = "blocked"  # a dependency is missing or failed
    WOULD_RUN = "would run"  # a dry run found everything it needs
    FAILED = "failed"

    @property
    def ok(self) -> bool:
        return self in (Status.DONE, Status.COMPLETE, Status.AVAILABLE)


@dataclass(frozen=True)
class Outcome:
    task_id: str
    status: Status
    detail: str = ""
    run: Run | None = None
    published: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Report:
    root: str
    outcomes: Mapping[str, Outcome]

    @property
    def missing(self) -> list[str]:
        return [o.detail for o in self.outcomes.values() if o.status is Status.MISSING]

    @property
    def exit_code(self) -> int:
        """0 done or already complete, 20 inputs missing, 1 failed (Luigi's convention)."""
        if self.outcomes[self.root].status.ok:
            return 0
        if self.missing and not any(
            o.status is Status.FAILED for o in self.outcomes.values()
        ):
            return 20
        return 1


@dataclass(frozen=True)
class Policy:
    """How one evaluation may act: the daemon sets one per workflow."""

    limiter: anyio.CapacityLimiter | None = None
    """Held, besides the engine's global limit, while a run of this evaluation executes."""
    rerun_late_inputs: bool = True
    """False: a task that succeeded once ignores later input revisions."""
    dry_run: bool = False
    """Stop before claiming: report what would run and what it would consume."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


_UNLIMITED = contextlib.nullcontext()


class Engine:
    def __init__(
        self,
        adapters: Adapters,
        *,
        runner: JobRunner,
        beam: BeamSettings,
        max_concurrent_runs: int,
        lease: timedelta,
        owner: str | None = None,
        on_launch: Callable[[Task], None] | None = None,
    ) -> None:
        self._adapters = adapters
        self._on_launch = on_launch
        self._sensors = Sensors(adapters.registry, adapters.warehouse)
        self._runner = runner
        self._beam = beam
        self._limiter = anyio.CapacityLimiter(max_concurrent_runs)
        self._lease = lease
        self._owner = owner or worker_id()
        self._log = structlog.get_logger("charon.engine")

    async def run(self, root: Task, policy: Policy = Policy()) -> Report:
        """Bring ``root`` and everything it requires up to date."""
        graph = resolve(root)
        finished = {task_id: anyio.Event() for task_id in graph.order}
        outcomes: dict[str, Outcome] = {}

        async def evaluate(task_id: str) -> None:
            try:
                for dep in graph.requires[task_id].values():
                    await finished[dep.task_id].wait()
                outcomes[task_id] = await self._evaluate(graph, task_id, outcomes, policy)
            finally:
                finished[task_id].set()

        async with anyio.create_task_group() as group:
            for task_id in graph.order:
                group.start_soon(evaluate, task_id)
        return Report(root.task_id, outcomes)

    async def _evaluate(
        self, graph: Graph, task_id: str, outcomes: Mapping[str, Outcome], policy: Policy
    ) -> Outcome:
        task = graph.tasks[task_id]
        unfinished = [
            dep.task_id for dep in graph.requires[task_id].values()
            if not outcomes[dep.task_id].status.ok
        ]
        if unfinished:
            return Outcome(task_id, Status.BLOCKED, "waiting for " + ", ".join(unfinished))
        if isinstance(task, ExternalTask):
            return await self._check_external(task)
        if isinstance(task, WrapperTask):
            return Outcome(task_id, Status.COMPLETE)
        inputs = await self._inputs(task)
        if isinstance(inputs, Outcome):
            return inputs
        with structlog.contextvars.bound_contextvars(
            task=task_id, partition=task.partition_label
        ):
            return await self._bring_up_to_date(task, inputs, policy)

    async def _check_external(self, task: ExternalTask) -> Outcome:
        absent, found = [], []
        for key, target in outputs(task).items():
            revision = await self._sensors.lookup(key, target)
            if revision is None:
                absent.append(str(target))
            else:
                found.append(f"{target} at {revision.revision_id}")
        if absent:
            return Outcome(task.task_id, Status.MISSING, f"{task.task_id}: {', '.join(absent)}")
        return Outcome(task.task_id, Status.AVAILABLE, ", ".join(found))

    async def _inputs(self, task: Task) -> dict[str, InputRevision] | Outcome:
        inputs: dict[str, InputRevision] = {}
        for key, dep in requirements(task).items():
            produced = outputs(dep)
            for sub_key, target in produced.items():
                input_key = key if len(produced) == 1 else f"{key}.{sub_key}"
                found = await self._sensors.lookup(input_key, target)
                if found is None:
                    detail = f"{dep.task_id} finished but {target} is absent"
                    return Outcome(task.task_id, Status.FAILED, detail)
                inputs[input_key] = found
        return inputs

    async def _bring_up_to_date(
        self, task: Task, inputs: dict[str, InputRevision], policy: Policy
    ) -> Outcome:
        current = fingerprint(inputs.values())
        state = self._adapters.state
        if policy.dry_run or not policy.rerun_late_inputs:
            earlier = await state.get(task.task_id, current)
            if earlier is None and not policy.rerun_late_inputs:
                earlier = await state.latest(task.task_id)
            if await self._succeeded(task, earlier):
                return Outcome(task.task_id, Status.COMPLETE, run=earlier)
            if policy.dry_run:
                consumed = ", ".join(f"{k}={i.revision_id}" for k, i in inputs.items())
                return Outcome(task.task_id, Status.WOULD_RUN,
                               f"fingerprint {current} consuming {consumed}", run=earlier)
        try:
            # Claiming first saves a read per run: a succeeded row comes back unchanged.
            run = await self._claim(task, current, inputs, rerun=False)
            if await self._succeeded(task, run):
                return Outcome(task.task_id, Status.COMPLETE, run=run)
            if run.state is RunState.SUCCEEDED:
                run = await self._claim(task, current, inputs, rerun=True)
        except RunConflict as exc:
            return Outcome(task.task_id, Status.FAILED, str(exc))
        with structlog.contextvars.bound_contextvars(run_id=run.id, attempt=run.attempt):
            async with self._limiter, policy.limiter or _UNLIMITED:
                return await self._execute(task, run, inputs)

    async def _claim(
        self, task: Task, current: str, inputs: dict[str, InputRevision], *, rerun: bool
    ) -> Run:
        return await self._adapters.state.claim(
            task_id=task.task_id, family=task.task_family, partition=task.partition_label,
            fingerprint=current, inputs=list(inputs.values()), owner=self._owner,
            lease=self._lease, rerun_succeeded=rerun,
        )

    async def _succeeded(self, task: Task, run: Run | None) -> bool:
        """Whether ``run`` succeeded and what it published is still there."""
        if run is None or run.state is not RunState.SUCCEEDED:
            return False
        if not await self._outputs_exist(task):
            return False
        self._log.info("already complete", fingerprint=run.fingerprint, run_id=run.id)
        return True

    async def _outputs_exist(self, task: Task) -> bool:
        for key, target in outputs(task).items():
            if await self._sensors.lookup(key, target) is None:
                return False
        return True

    async def _execute(self, task: Task, run: Run, inputs: dict[str, InputRevision]) -> Outcome:
        adapters = self._adapters
        targets = outputs(task)
        refs: dict[str, str] = {}
        self._log.info("run started", fingerprint=run.fingerprint,
                       inputs={k: i.revision_id for k, i in inputs.items()})
        try:
            refs = await commit.stage(
                targets, warehouse=adapters.warehouse, output_prefix=adapters.output_prefix
            )
            await self._produce(task, run, inputs, refs)
            await commit.validate(targets, refs, warehouse=adapters.warehouse,
                                  storage=adapters.storage)
            if targets:
                await adapters.state.set_state(run.id, run.attempt, RunState.PUBLISHING)
            published = await commit.publish(
                targets, refs, inputs=list(inputs.values()),
                move_key=f"{run.id}:{run.attempt}",
                registry=adapters.registry, warehouse=adapters.warehouse,
            )
            finished = await adapters.state.succeed(run.id, run.attempt, published)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._abandon(run, targets, refs, "cancelled")
            raise
        except Exception as exc:  # any failure of user code fails the run
            await self._abandon(run, targets, refs, str(exc))
            return Outcome(task.task_id, Status.FAILED, str(exc), run)
        self._log.info("run succeeded", published=published)
        return Outcome(task.task_id, Status.DONE, run=finished, published=published)

    async def _produce(
        self, task: Task, run: Run, inputs: dict[str, InputRevision], refs: dict[str, str]
    ) -> None:
        adapters = self._adapters
        if self._on_launch:
            self._on_launch(task)
        if isinstance(task, BeamJobTask):
            argv = beam_command(task, inputs=inputs, outputs=refs, beam=self._beam,
                                job_options=adapters.warehouse.job_options())

            async def record_job(job_id: str) -> None:
                await adapters.state.set_job_id(run.id, run.attempt, job_id)

            await self._runner.run(argv, on_started=record_job)
        elif type(task).run is not Task.run:
            await task.run(RunContext(inputs, refs, adapters.storage, adapters.warehouse))
        else:
            raise UsageError(f"{task.task_family} is neither a job task nor defines run()")

    async def _abandon(
        self, run: Run, targets: Mapping[str, Target], refs: dict[str, str], error: str
    ) -> None:
        self._log.error("run failed", error=error)
        await commit.discard(
            targets, refs, warehouse=self._adapters.warehouse,
            storage=self._adapters.storage,
        )
        try:
            await self._adapters.state.fail(run.id, run.attempt, error)
        except CharonError as exc:
            self._log.error("could not record the failure", error=str(exc))


def build_engine(
    adapters: Adapters,
    settings: Settings,
    runner: JobRunner,
    *,
    max_concurrent_runs: int | None = None,
    on_launch: Callable[[Task], None] | None = None,
) -> Engine:
    """The engine as the settings describe it."""
    return Engine(
        adapters, runner=runner, beam=settings.beam,
        max_concurrent_runs=max_concurrent_runs or settings.engine.max_concurrent_runs,
        lease=timedelta(seconds=settings.engine.lease_seconds), on_launch=on_launch,
    )
