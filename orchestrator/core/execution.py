"""Executing one claimed run: stage, produce, validate, check, publish; and resume.

Where a run writes its outputs is recorded before its job starts, and the job's id
before the engine waits on it. A process that takes over a run whose owner lost its
lease therefore finishes it instead of redoing it: it publishes what a job already
produced, reattaches to a job still running, or — when the job cannot be followed —
stops it if it can, discards what was staged and launches again.

Before publishing, the run's inputs are looked up once more: a run whose inputs
changed while it ran is superseded, not published, so a partition's latest output is
always built from its latest inputs. Publishing begins with a fenced step in the state
store; from then on the run is never restarted, only resumed, and every irreversible
step (a table move, a registry publish) is preceded by a fence check on the store's
clock and keyed so that a repeat of it — by a resumer, or by this worker waking up
from a pause — finds the first instead of doing it twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

import anyio

from jobs.runners.base import JobRunner
from orchestrator.config import BeamSettings
from orchestrator.core import commit
from orchestrator.core.kept_gone import Rebuild
from orchestrator.core.leases import LeaseKeeper
from orchestrator.core.lineage import RunLineage
from orchestrator.core.policy import Hooks
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Outcome, Status
from orchestrator.core.task_loop import TaskLoop
from orchestrator.errors import (
    AdapterError,
    CharonError,
    JobFailed,
    JobLost,
    LeaseLost,
    UsageError,
    described,
)
from orchestrator.log import get_logger, job_output, job_output_to
from orchestrator.model import InputRevision, Run, RunRetryPolicy, RunState, fingerprint
from orchestrator.tasks.commands import job_name
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import Target
from orchestrator.tasks.task import JobLaunch, JobTask, Task, outputs

Inputs = Mapping[str, InputRevision]


@dataclass(frozen=True)
class Attempt:
    """A claimed run, as the engine hands it over."""

    task: Task
    run: Run
    inputs: Inputs
    claimed_at: float
    """Monotonic time just before the claim was asked: the lease counts from there."""
    current_inputs: Callable[[], Awaitable[Inputs | None]] | None
    """Looks the inputs up again before publishing (None if one is missing now); None
    for a run resumed mid-publication, which is finished whatever came since."""
    retry: RunRetryPolicy
    work_done: Callable[[], None]
    """Called once the run's work is over, before its success is recorded: it gives the
    run's place within the concurrency limits back."""
    on_launch: Callable[[Task], None] | None = None
    """Told as the run's job (or its in-process code) starts."""


@dataclass(frozen=True)
class Evaluation:
    """What the runs of one evaluation share: their lease keeper, and the loop their
    in-process task code runs on."""

    keeper: LeaseKeeper
    task_loop: TaskLoop
    externals: Mapping[str, InputRevision | None] = field(default_factory=dict)
    """The outputs of its external tasks, looked up together as it began, by task id
    and output key: one batched call, not one per external task."""
    rebuilds: dict[str, Rebuild] = field(default_factory=dict)
    """Its kept-gone tasks, by task id: rebuilt if a task reading them has to run."""
    hooks: Hooks | None = None
    """What it tells its caller as it goes; None: nothing, and a run waits for its place."""


@dataclass
class _Staged:
    """Where an attempt writes its outputs, and whether their publication may have begun."""

    refs: dict[str, str]
    publishing: bool = False
    """From then on a table may be in place and a revision may point at the outputs,
    so nothing staged is discarded: the run is released, to be resumed."""
    in_job: bool = False
    """While the job (or the task's own code) runs, from the moment its id is recorded:
    what fails then is the run's own failure; what fails around it, in charon's steps
    (recording the job's id among them: the job goes down with it), is an outage."""


class _Stale(Exception):  # a control-flow signal inside this module, not an error
    """The run's inputs changed before it published: it was superseded."""


class Executor:
    def __init__(
        self,
        adapters: Adapters,
        *,
        runner: JobRunner,
        beam: BeamSettings,
        local_runner: JobRunner | None = None,
    ) -> None:
        """``runner`` runs Beam jobs (wherever the Beam runner runs them); ``local_runner``
        runs jobs that always run on this machine (spark-submit), ``runner`` if not given.
        """
        self._adapters = adapters
        self._runner = runner
        self._local_runner = local_runner or runner
        self._beam = beam
        self._lineage = RunLineage(adapters)
        self._log = get_logger("charon.engine")

    async def execute(self, attempt: Attempt, evaluation: Evaluation) -> Outcome:
        """Run and publish under the run's lease, then record the success."""
        task, run = attempt.task, attempt.run
        targets = outputs(task)
        staged = _Staged(dict(run.staged), publishing=run.state is RunState.PUBLISHING)
        self._log.info("run resumed" if run.staged else "run started",
                       fingerprint=run.fingerprint, state=run.state.value, job_id=run.job_id,
                       inputs={k: i.revision_id for k, i in attempt.inputs.items()})
        await self._lineage.started(task, run, attempt.inputs)
        try:
            published = await self._work_under_lease(attempt, evaluation, targets, staged)
            attempt.work_done()
            finished = await self._adapters.state.succeed(run.id, run.attempt, published)
        except _Stale as exc:
            await self._lineage.aborted(task, run, str(exc))
            return Outcome(task.task_id, Status.SUPERSEDED, str(exc), run)
        except LeaseLost as exc:
            await self._after_lost(attempt, targets, staged, exc)
            return Outcome(task.task_id, Status.WAITING, str(exc), run,
                           held_until=datetime.now(UTC))
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._release(run, "stopped before it finished; to be resumed")
            raise
        except Exception as exc:  # any failure of user code fails the run
            return await self._after_failure(attempt, targets, staged, exc)
        self._log.info("run succeeded", published=published)
        await self._lineage.completed(task, finished, published)
        return Outcome(task.task_id, Status.DONE, run=finished, published=published)

    async def _work_under_lease(
        self, attempt: Attempt, evaluation: Evaluation, targets: Mapping[str, Target],
        staged: _Staged,
    ) -> dict[str, str]:
        """The run's work, stopped by the keeper when the lease may be lost."""
        run = attempt.run
        with evaluation.keeper.hold(run, attempt.claimed_at) as lease:
            return await self._work(attempt, evaluation, targets, staged)
        raise LeaseLost(f"run {run.id} attempt {run.attempt} stopped: {lease.lost}")

    async def _work(
        self, attempt: Attempt, evaluation: Evaluation, targets: Mapping[str, Target],
        staged: _Staged,
    ) -> dict[str, str]:
        adapters, run = self._adapters, attempt.run
        if not staged.publishing:
            await self._write_outputs(attempt, evaluation, targets, staged)
            await commit.validate(targets, staged.refs, adapters)
            await self._check_inputs_current(attempt, targets, staged)
            await self._begin_publishing(run, staged)
        publication = commit.Publication(
            run, lambda: adapters.state.check_fence(run.id, run.attempt), adapters)
        return await commit.publish(targets, staged.refs, publication)

    async def _check_inputs_current(
        self, attempt: Attempt, targets: Mapping[str, Target], staged: _Staged
    ) -> None:
        """Supersede the run, unpublished, if its inputs changed while it ran."""
        if attempt.current_inputs is None:
            return
        run = attempt.run
        current = await attempt.current_inputs()
        now = None if current is None else fingerprint(current.values())
        if now == run.fingerprint:
            return
        why = "an input it read has gone" if now is None else (
            f"newer inputs arrived (fingerprint {now})")
        await self._adapters.state.supersede(run.id, run.attempt,
                                             f"not published: {why} while it ran")
        self._log.warning("run superseded before publishing", reason=why)
        await self._discard(targets, staged)
        raise _Stale(f"not published: {why}; it runs again for them")

    async def _begin_publishing(self, run: Run, staged: _Staged) -> None:
        if not staged.refs:
            return  # nothing to publish: the run goes straight to its success
        # From the moment it is asked the run may be publishing (a lost answer still
        # committed): nothing staged is discarded after that, unless the store refused.
        staged.publishing = True
        try:
            await self._adapters.state.begin_publishing(run.id, run.attempt)
        except LeaseLost:
            staged.publishing = False
            raise

    async def _write_outputs(
        self, attempt: Attempt, evaluation: Evaluation, targets: Mapping[str, Target],
        staged: _Staged,
    ) -> None:
        """Get the outputs written at ``staged.refs``: inherited from a lost owner, or
        staged now.

        The refs are updated the moment new outputs are staged, so whoever cleans up
        after a failure knows what to discard.
        """
        adapters, task, run, refs = self._adapters, attempt.task, attempt.run, staged.refs
        runner = self._runner_for(task)
        if refs and run.job_id:
            try:
                self._log.info("reattaching to job", job_id=run.job_id)
                await runner.reattach(run.job_id)
            except JobLost as exc:
                self._log.warning("cannot reattach, launching again", error=str(exc))
            else:
                return
        elif refs and runner.finds_jobs_by_name and _found_by_name(task):
            # The lost owner may have submitted the job before recording its id. The
            # same deterministic name and the same locations let the runner attach to
            # it; a job launched anew here writes the same places.
            await self._produce(attempt, evaluation, staged)
            return
        if refs:
            await commit.discard(targets, refs, adapters)
        refs.clear()
        refs.update(await commit.stage(targets, adapters))
        if refs:  # a run with no outputs leaves nothing to resume or discard
            await adapters.state.set_staged(run.id, run.attempt, refs)
        await self._produce(attempt, evaluation, staged)

    async def cancel(self, task: Task, run: Run) -> None:
        # The run first: its job ending first would have its owner record a plain
        # failure, to be retried, and a run that ended meanwhile keeps its job alone.
        await self._adapters.state.fail(run.id, run.attempt, "cancelled by the user")
        if run.job_id:
            await self._runner_for(task).cancel(run.job_id)

    def _runner_for(self, task: Task) -> JobRunner:
        local = isinstance(task, JobTask) and task.runs_locally
        return self._local_runner if local else self._runner

    async def _produce(self, attempt: Attempt, evaluation: Evaluation,
                       staged: _Staged) -> None:
        run = attempt.run
        with job_output_to(partial(self._adapters.run_logs.append, run.id)):
            await self._run_job(attempt, evaluation, staged)
            await _note("the job finished")
        staged.in_job = False

    async def _run_job(self, attempt: Attempt, evaluation: Evaluation,
                       staged: _Staged) -> None:
        """The job, or the task's own code, within the task's ``worker_timeout``: past it,
        the job is stopped (a Dataflow job cancelled too) and the run fails."""
        started: list[str] = []
        timeout = attempt.task.worker_timeout
        with anyio.move_on_after(timeout) as limit:
            await self._start_job(attempt, evaluation, staged, started)
        if not limit.cancelled_caught:
            return
        for job_id in started:
            await self._runner_for(attempt.task).cancel(job_id)
        raise JobFailed(f"stopped after {timeout:g} s, its worker_timeout")

    async def _start_job(self, attempt: Attempt, evaluation: Evaluation, staged: _Staged,
                         started: list[str]) -> None:
        adapters, task, run = self._adapters, attempt.task, attempt.run
        if attempt.on_launch is not None:
            attempt.on_launch(task)
        refs = staged.refs
        context = RunContext(attempt.inputs, refs, adapters.storage, adapters.warehouse,
                             adapters.database,
                             fence=lambda: adapters.state.check_fence(run.id, run.attempt),
                             allow_empty_inputs=task.allow_empty_inputs)
        if not isinstance(task, JobTask):
            if type(task).run is Task.run:
                raise UsageError(f"{task.task_family} is neither a job task nor defines run()")
            # One line, not two: a line is a worker trip, and a leaf of a one-shot run
            # makes few others.
            await _note(f"attempt {run.attempt}: starting the job: {task.task_family}.run()"
                        " runs in charon's process; what it logs is in charon's own log")
            staged.in_job = True
            await evaluation.task_loop.run(task.run, context)
            return
        name = job_name(task.task_family, run.partition, run.fingerprint)

        async def record_job(job_id: str) -> None:
            started.append(job_id)
            await adapters.state.set_job_id(run.id, run.attempt, job_id)
            staged.in_job = True
            await _note(f"job {job_id} started")

        await _note(f"attempt {run.attempt}: starting the job")
        argv = task.command(JobLaunch(attempt.inputs, refs, context, name, self._beam,
                                      adapters.warehouse.job_options()))
        await self._runner_for(task).run(argv, job_name=name, on_started=record_job)

    async def _after_lost(
        self, attempt: Attempt, targets: Mapping[str, Target], staged: _Staged,
        lost: LeaseLost,
    ) -> None:
        """Stopped without the lease: clean up only what nobody else will inherit."""
        run = attempt.run
        self._log.warning("run stopped: its lease is lost", error=str(lost),
                          publishing=staged.publishing)
        if staged.publishing:
            return  # whoever takes the run over finishes the publication
        try:
            now = await self._adapters.state.get(run.task_id, run.fingerprint)
        except CharonError as exc:
            self._log.warning("cannot tell who owns the staged outputs now; the janitor will",
                              error=str(exc))
            return
        if now is None or now.attempt != run.attempt or now.state.active:
            return  # taken over, or to be: its new owner inherits the job and the staging
        # Ended while this attempt held it (superseded, or cancelled by a user): its job
        # and its staging are nobody's now.
        if now.job_id:
            try:
                await self._runner_for(attempt.task).cancel(now.job_id)
            except CharonError as exc:
                self._log.warning("could not cancel the job", job_id=now.job_id, error=str(exc))
        await self._discard(targets, staged)

    async def _after_failure(
        self, attempt: Attempt, targets: Mapping[str, Target], staged: _Staged,
        failure: Exception,
    ) -> Outcome:
        run, task_id, said = attempt.run, attempt.task.task_id, described(failure)
        if staged.publishing:
            # A table may be in place, a revision may be read downstream: finish it later
            # with these same outputs, never start again.
            reason = f"publication interrupted, to be resumed: {said}"
            await self._release(run, reason)
            return Outcome(task_id, Status.ERROR, reason, run)
        if isinstance(failure, AdapterError) and not staged.in_job:
            # An outage around the job (the state store, the registry, storage), not the
            # run's own failure: released, so that outages do not use its retries up.
            reason = f"interrupted by an outage, to be resumed: {said}"
            await self._release(run, reason)
            return Outcome(task_id, Status.ERROR, reason, run)
        try:
            failed = await self._adapters.state.fail(run.id, run.attempt, said)
        except LeaseLost as lost:
            await self._after_lost(attempt, targets, staged, lost)
            return Outcome(task_id, Status.WAITING, str(lost), run, held_until=datetime.now(UTC))
        except CharonError as exc:
            # The staging stays recorded with the run: whoever takes it over when its
            # lease runs out discards it.
            self._log.error("could not record the failure", error=str(exc))
            return Outcome(task_id, Status.FAILED, said, run)
        self._log.error("run failed", error=said, failures=failed.failures)
        await self._lineage.failed(attempt.task, failed, said)
        await self._discard(targets, staged)
        return Outcome(task_id, Status.FAILED, said, failed,
                       held_until=attempt.retry.retry_at(failed))

    async def _release(self, run: Run, reason: str) -> None:
        try:
            await self._adapters.state.release(run.id, run.attempt, reason)
        except CharonError as exc:
            # Its lease then simply runs out; the run is taken over after that.
            self._log.warning("could not release the run", error=str(exc))
        else:
            self._log.info("run released", reason=reason)

    async def _discard(self, targets: Mapping[str, Target], staged: _Staged) -> None:
        await commit.discard(targets, staged.refs, self._adapters)
        staged.refs.clear()


async def _note(text: str) -> None:
    """A line of charon's own in the run's log, time-stamped."""
    await job_output(f"[charon {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC] {text}")


def _found_by_name(task: Task) -> bool:
    return isinstance(task, JobTask) and task.found_by_name
