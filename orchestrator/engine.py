"""The engine: evaluates a task graph and runs what is missing, in dependency order.

Each node waits for its dependencies, looks its inputs up through the sensors,
fingerprints them, claims the run in the state store, launches it within the
concurrency limit, and commits its outputs. A node whose outputs already exist for
the current fingerprint does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

import anyio
import structlog

from jobs.launcher import SubprocessJobRunner
from orchestrator.adapters import Adapters
from orchestrator.config import BeamSettings, Settings
from orchestrator.errors import RunConflict
from orchestrator.execution import Executor
from orchestrator.graph import Graph, resolve
from orchestrator.log import log_context
from orchestrator.model import InputRevision, Run, RunState, fingerprint
from orchestrator.ports import JobRunner
from orchestrator.report import Outcome, Report, Status
from orchestrator.task import (
    ExternalTask,
    Task,
    WrapperTask,
    outputs,
)
from sensors import Sensors


@dataclass(frozen=True)
class Policy:
    """How one evaluation may act: the daemon sets one per workflow."""

    limiter: anyio.CapacityLimiter | None = None
    """Held, besides the engine's global limit, while a run of this evaluation executes."""
    rerun_late_inputs: bool = True
    """False: a task that succeeded once ignores later input revisions."""
    dry_run: bool = False
    """Stop before claiming: report what would run and what it would consume."""


EVALUATORS = 256
"""Nodes of one evaluation evaluated at once: enough that claims and successes
queued together fill a state-store batch (orchestrator.sqlite.MAX_BATCH)."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


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
        local_runner: JobRunner | None = None,
    ) -> None:
        self._adapters = adapters
        self._sensors = Sensors(adapters.registry, adapters.warehouse, storage=adapters.storage,
                                data_prefix=adapters.data_prefix, database=adapters.database)
        self._executor = Executor(adapters, runner=runner, beam=beam, lease=lease,
                                  on_launch=on_launch, local_runner=local_runner)
        self._limiter = anyio.CapacityLimiter(max_concurrent_runs)
        # Never fewer evaluators than runs allowed at once, or the limit could not be met.
        self._evaluators = max(EVALUATORS, max_concurrent_runs)
        self._lease = lease
        self._owner = owner or worker_id()
        self._log = structlog.get_logger("charon.engine")

    async def run(self, root: Task, policy: Policy = Policy()) -> Report:
        """Bring ``root`` and everything it requires up to date.

        A node becomes ready when its last dependency finishes. Up to ``evaluators``
        tasks take ready nodes one after another, rather than one task per node:
        a thousand ready partitions then cost a few hundred task spawns, and no more
        sensor lookups or claims are in flight than that. The lease keeper stops
        with the last node.
        """
        graph = resolve(root)
        outcomes: dict[str, Outcome] = {}
        pending = {  # task id -> how many of its dependencies have not finished
            task_id: len({dep.task_id for dep in graph.requires[task_id].values()})
            for task_id in graph.order
        }
        ready = deque(task_id for task_id, count in pending.items() if not count)
        evaluators = 0
        keeper = anyio.CancelScope()

        async with anyio.create_task_group() as group:

            def add_evaluators() -> None:
                """One more evaluator per ready node, up to the cap; each is handed its
                node, so no ready node waits while another evaluator could start."""
                nonlocal evaluators
                while ready and evaluators < self._evaluators:
                    evaluators += 1
                    group.start_soon(evaluate_from, ready.popleft())

            async def evaluate_from(task_id: str | None) -> None:
                nonlocal evaluators
                while task_id is not None:
                    outcomes[task_id] = await self._evaluate(graph, task_id, outcomes, policy)
                    for dependent in graph.dependents[task_id]:
                        pending[dependent] -= 1
                        if not pending[dependent]:
                            ready.append(dependent)
                    task_id = ready.popleft() if ready else None
                    add_evaluators()
                evaluators -= 1
                if len(outcomes) == len(graph.order):
                    keeper.cancel()

            group.start_soon(self._keep_leases, keeper)
            add_evaluators()
        return Report(root.task_id, outcomes)

    async def _keep_leases(self, scope: anyio.CancelScope) -> None:
        with scope:
            await self._executor.keep_leases()

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
        inputs = await self._inputs(task, graph.requires[task_id])
        if isinstance(inputs, Outcome):
            return inputs
        with log_context(task=task_id, partition=task.partition_label):
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

    async def _inputs(
        self, task: Task, required: Mapping[str, Task]
    ) -> dict[str, InputRevision] | Outcome:
        inputs: dict[str, InputRevision] = {}
        for key, dep in required.items():
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
            return Outcome(task.task_id, Status.FAILED, str(exc), held_until=exc.held_until)
        with log_context(run_id=run.id, attempt=run.attempt):
            return await self._executor.execute(task, run, inputs, self._slot(policy))

    def _slot(self, policy: Policy) -> AbstractAsyncContextManager[None]:
        """A place within the engine's limit and, if it has one, the evaluation's own."""
        if policy.limiter is None:
            return self._limiter
        return self._both_limits(policy.limiter)

    @contextlib.asynccontextmanager
    async def _both_limits(self, limiter: anyio.CapacityLimiter) -> AsyncIterator[None]:
        async with self._limiter, limiter:
            yield

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


def build_engine(
    adapters: Adapters,
    settings: Settings,
    runner: JobRunner,
    *,
    max_concurrent_runs: int | None = None,
    on_launch: Callable[[Task], None] | None = None,
) -> Engine:
    """The engine as the settings describe it.

    ``runner`` runs Beam jobs; spark-submit jobs always run as local subprocesses,
    even when Beam jobs go to Dataflow.
    """
    return Engine(
        adapters, runner=runner, beam=settings.beam,
        max_concurrent_runs=max_concurrent_runs or settings.engine.max_concurrent_runs,
        lease=timedelta(seconds=settings.engine.lease_seconds), on_launch=on_launch,
        local_runner=SubprocessJobRunner(),
    )
