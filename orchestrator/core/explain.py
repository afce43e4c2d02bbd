"""What ``charon explain`` says, and the daemon's "why not running" page: why each task
of an evaluation is where it is."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.config import Settings
from orchestrator.core.report import Report, Status
from orchestrator.model import Run
from orchestrator.workflows import WorkflowSettings


def explanation(
    result: Report, running: Sequence[Run], settings: Settings,
    workflow: WorkflowSettings | None,
) -> str:
    """Why each task of a dry run is where it is: missing inputs, consumed revisions, limits."""
    lines = []
    for task_id, outcome in result.outcomes.items():
        lines.append(f"{task_id}: {outcome.status.value}")
        active = [run for run in running if run.task_id == task_id]
        if outcome.status is Status.MISSING:
            lines.append(f"  waiting for input: {', '.join(outcome.missing)}")
        elif outcome.status is Status.COMPLETE and outcome.run is not None:
            consumed = ", ".join(f"{i.key}={i.revision_id}" for i in outcome.run.inputs)
            lines.append(f"  run {outcome.run.id} consumed {consumed}")
        elif outcome.detail:
            lines.append(f"  {outcome.detail}")
        if active:
            lines.extend(f"  running now: run {r.id} attempt {r.attempt}, job {r.job_id}"
                         for r in active)
        elif outcome.status is Status.WOULD_RUN:
            lines.extend(f"  {hold}" for hold in holds(running, settings, workflow))
    return "\n".join(lines)


def holds(running: Sequence[Run], settings: Settings,
          workflow: WorkflowSettings | None) -> list[str]:
    """The limits that hold a task ready to run: the engine's, its workflow's."""
    found = []
    limit = settings.engine.max_concurrent_runs
    if len(running) >= limit:
        found.append(f"held by engine.max_concurrent_runs: {len(running)} of {limit} running")
    if workflow is not None:
        mine = sum(run.family == workflow.task for run in running)
        if mine >= workflow.max_concurrent_runs:
            found.append(f"held by workflow {workflow.name!r} max_concurrent_runs: "
                         f"{mine} of {workflow.max_concurrent_runs} running")
    return found or ["no limit holds it: it fires on its next evaluation (charon run, "
                     "or the daemon's next trigger)"]
