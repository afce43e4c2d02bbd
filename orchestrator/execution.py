"""Executing one claimed run: stage, produce, validate, publish, and resume after a crash.

Where a run writes its outputs is recorded before its job starts, and the job's id
before the engine waits on it. A process that takes over a run whose owner died
(its lease expired) therefore finishes it instead of redoing it: it publishes what
a job already produced, reattaches to a job still running, or — when the job cannot
be followed — discards what was staged and launches again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import timedelta

import anyio
import structlog

from jobs.launcher import beam_command, job_name
from jobs.spark_launcher import spark_command
from orchestrator import commit
from orchestrator.adapters import Adapters
from orchestrator.config import BeamSettings
from orchestrator.errors import CharonError, JobLost, RunConflict, UsageError
from orchestrator.model import InputRevision, Run, RunState
from orchestrator.ports import JobRunner
from orchestrator.report import Outcome, Status
from orchestrator.runcontext import RunContext
from orchestrator.targets import Target
from orchestrator.task import BeamJobTask, SparkSubmitTask, Task, outputs

Inputs = Mapping[str, InputRevision]


@dataclass
class _Staged:
    """Where an attempt writes its outputs, and whether their publication has begun."""

    refs: dict[str, str]
    publishing: bool = False
    """From then on a table may be in place and a revision may point at the outputs,
    and downstream may already read them: a failure keeps them all rather than
    discard any (what was not yet published is left unreferenced, the safer mistake)."""


class Executor:
    def __init__(
        self,
        adapters: Adapters,
        *,
        runner: JobRunner,
        beam: BeamSettings,
        lease: timedelta,
        on_launch: Callable[[Task], None] | None = None,
        local_runner: JobRunner | None = None,
    ) -> None:
        """``runner`` runs Beam jobs (wherever the Beam runner runs them); ``local_runner``
        runs jobs that always run on this machine (spark-submit), ``runner`` if not given.
        """
        self._adapters = adapters
        self._runner = runner
        self._local_runner = local_runner or runner
        self._beam = beam
        self._lease = lease
        self._on_launch = on_launch
        self._active: dict[str, tuple[Run, anyio.CancelScope]] = {}
        self._log = structlog.get_logger("charon.engine")

    async def execute(
        self, task: Task, run: Run, inputs: Inputs, slot: AbstractAsyncContextManager[None]
    ) -> Outcome:
        """Run and publish within ``slot`` (the concurrency limits), then record success.

        The slot is freed before the success is recorded: the limits bound jobs, not
        bookkeeping, and successes that queue up then share one state-store commit.
        """
        targets = outputs(task)
        staged = _Staged(dict(run.staged), publishing=run.state is RunState.PUBLISHING)
        self._log.info("run resumed" if run.staged else "run started",
                       fingerprint=run.fingerprint, state=run.state.value, job_id=run.job_id,
                       inputs={k: i.revision_id for k, i in inputs.items()})
        try:
            published = await self._write_and_publish(
                task, run, inputs=inputs, targets=targets, staged=staged, slot=slot
            )
            finished = await self._adapters.state.succeed(run.id, run.attempt, published)
        except RunConflict as exc:
            # Another worker took the run over: what is staged is now its to finish.
            self._log.warning("run taken over by another worker", error=str(exc))
            return Outcome(task.task_id, Status.FAILED, str(exc), run)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._abandon(run, targets, staged, "cancelled")
            raise
        except Exception as exc:  # any failure of user code fails the run
            await self._abandon(run, targets, staged, str(exc))
            return Outcome(task.task_id, Status.FAILED, str(exc), run)
        self._log.info("run succeeded", published=published)
        return Outcome(task.task_id, Status.DONE, run=finished, published=published)

    async def _write_and_publish(
        self, task: Task, run: Run, *, inputs: Inputs, targets: Mapping[str, Target],
        staged: _Staged, slot: AbstractAsyncContextManager[None],
    ) -> dict[str, str]:
        """The run's work under its lease; RunConflict if the lease keeper lost it."""
        with anyio.CancelScope() as leased:
            self._active[run.id] = (run, leased)
            try:
                async with slot:
                    await self._write_outputs(task, run, inputs, targets, staged.refs)
                    return await self._publish(run, inputs, targets, staged)
            finally:
                del self._active[run.id]
        # Only the keeper cancels this scope, and only when another worker took over.
        raise RunConflict(f"the lease of run {run.id} attempt {run.attempt} was lost")

    async def keep_leases(self) -> None:
        """Renew every executing run's lease, however long its job takes; until cancelled.

        One keeper serves all runs. A run whose renewal is refused has been taken over
        by another worker: it is stopped without touching what it staged.
        """
        while True:
            await anyio.sleep(self._lease.total_seconds() / 3)
            for run, scope in list(self._active.values()):
                try:
                    await self._adapters.state.renew(run.id, run.attempt, self._lease)
                except RunConflict:
                    scope.cancel()
                except CharonError as exc:
                    # The store may be back before the lease runs out: try again then.
                    self._log.warning("could not renew a lease", run_id=run.id, error=str(exc))

    async def _write_outputs(
        self, task: Task, run: Run, inputs: Inputs, targets: Mapping[str, Target],
        refs: dict[str, str],
    ) -> None:
        """Get the outputs written at ``refs``: inherited from a dead owner, or staged now.

        ``refs`` is updated the moment new outputs are staged, so whoever cleans up
        after a failure knows what to discard.
        """
        adapters = self._adapters
        if refs and run.state is RunState.PUBLISHING:
            return
        if refs and run.job_id:
            try:
                self._log.info("reattaching to job", job_id=run.job_id)
                await self._runner_for(task).reattach(run.job_id)
            except JobLost as exc:
                self._log.warning("cannot reattach, launching again", error=str(exc))
            else:
                return
        if refs and not run.job_id and isinstance(task, BeamJobTask):
            # The dead owner may have submitted the job before recording its id. The
            # same deterministic name and the same locations let a runner that finds
            # jobs by name attach to it; a job relaunched here writes the same places.
            await self._produce(task, run, inputs, refs)
            return
        if refs:
            await commit.discard(targets, refs, warehouse=adapters.warehouse,
                                 storage=adapters.storage)
        refs.clear()
        refs.update(await commit.stage(targets, warehouse=adapters.warehouse,
                                       output_prefix=adapters.output_prefix))
        if refs:  # a run with no outputs leaves nothing to resume or discard
            await adapters.state.set_staged(run.id, run.attempt, refs)
        await self._produce(task, run, inputs, refs)

    def _runner_for(self, task: Task) -> JobRunner:
        return self._local_runner if isinstance(task, SparkSubmitTask) else self._runner

    async def _produce(self, task: Task, run: Run, inputs: Inputs, refs: dict[str, str]) -> None:
        adapters = self._adapters
        if self._on_launch:
            self._on_launch(task)
        context = RunContext(inputs, refs, adapters.storage, adapters.warehouse,
                             adapters.database)
        if not isinstance(task, BeamJobTask | SparkSubmitTask):
            if type(task).run is Task.run:
                raise UsageError(f"{task.task_family} is neither a job task nor defines run()")
            await task.run(context)
            return
        name = job_name(task.task_family, run.partition, run.fingerprint)

        async def record_job(job_id: str) -> None:
            await adapters.state.set_job_id(run.id, run.attempt, job_id)

        if isinstance(task, BeamJobTask):
            argv = beam_command(task, inputs=inputs, outputs=refs, beam=self._beam,
                                job_options=adapters.warehouse.job_options(), job_name=name)
            await self._runner.run(argv, job_name=name, on_started=record_job)
        else:
            argv = spark_command(task, context, job_name=name, python=self._beam.python)
            await self._local_runner.run(argv, job_name=name, on_started=record_job)

    async def _publish(
        self, run: Run, inputs: Inputs, targets: Mapping[str, Target], staged: _Staged
    ) -> dict[str, str]:
        adapters = self._adapters
        resuming = run.state is RunState.PUBLISHING
        if not resuming:
            await commit.validate(targets, staged.refs, warehouse=adapters.warehouse,
                                  storage=adapters.storage, database=adapters.database)
            if targets:
                await adapters.state.set_state(run.id, run.attempt, RunState.PUBLISHING)
        staged.publishing = True
        return await commit.publish(
            targets, staged.refs, inputs=list(inputs.values()), run_id=run.id,
            resuming=resuming, registry=adapters.registry, warehouse=adapters.warehouse,
        )

    async def _abandon(
        self, run: Run, targets: Mapping[str, Target], staged: _Staged, error: str
    ) -> None:
        """Record the failure; discard the staged outputs unless publishing them began.

        Kept outputs stay valid where they were published; the run is failed, so the
        next attempt starts afresh and publishes new ones.
        """
        self._log.error("run failed", error=error, outputs_kept=staged.publishing)
        if not staged.publishing:
            await commit.discard(targets, staged.refs, warehouse=self._adapters.warehouse,
                                 storage=self._adapters.storage)
        try:
            await self._adapters.state.fail(run.id, run.attempt, error)
        except CharonError as exc:
            self._log.error("could not record the failure", error=str(exc))
