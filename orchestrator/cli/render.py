"""What the CLI prints on stdout: plain text tables a person can read and a script can cut."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from orchestrator.cli.summary import summary
from orchestrator.config import Settings
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Category, Report, Status
from orchestrator.errors import ObjectNotFound
from orchestrator.model import Revision, Run
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    TargetKinds,
    WarehouseTable,
)
from orchestrator.tasks.task import Task, outputs
from orchestrator.workflows import WorkflowSettings


def revisions(found: Sequence[Revision]) -> str:
    """The golden-path tutorial's ``hades ls`` layout."""
    lines = [f"{'REVISION_ID':<38} {'CREATION_TIME':<27} URI"]
    for revision in found:
        created = revision.created.strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{revision.created.microsecond // 1000:03d}Z"
        )
        lines.append(f"{revision.id:<38} {created:<27} {revision.uri}")
    return "\n".join(lines)


# Each task's line says what became of it in this run, and nothing more.
SAID = {
    Category.RAN: "ran",
    Category.COMPLETE: "already complete",
    Category.FAILED: "failed",
    Category.SCHEDULING_ERROR: "failed scheduling",
    Category.MISSING: "missing input",
    Category.RUN_BY_OTHER_WORKER: "skipped: being run by another worker",
    Category.BLOCKED: "skipped",
    Category.NOT_RUN: "not run",
}


def report(result: Report) -> str:
    """A line per task (an external input that is there only counts in the summary),
    what it published, the missing inputs, then Luigi's execution summary."""
    lines = []
    for task_id, outcome in result.outcomes.items():
        if outcome.status is Status.AVAILABLE:
            continue
        line = f"{task_id}: {SAID[outcome.category]}"
        if outcome.status is Status.COMPLETE and not outcome.detail:
            line += " for the current inputs, nothing to do"
        if outcome.detail:
            line += f" ({outcome.detail.splitlines()[0]})"
        lines.append(line)
        lines.extend(f"  published {key}: {value}" for key, value in outcome.published.items())
    if result.missing:
        lines.append("inputs missing:")
        lines.extend(f"  {detail}" for detail in result.missing)
    return "\n".join([*lines, "", summary(result)])


T_contra = TypeVar("T_contra", contravariant=True)


class Shown(Protocol[T_contra]):
    """How ``charon show`` prints one kind of output."""

    async def show(self, key: str, target: T_contra, adapters: Adapters, limit: int) -> str: ...


async def task_outputs(task: Task, adapters: Adapters, *, limit: int) -> str:
    """Each output of ``task`` as published: the revision and its ``part`` file, or the table."""
    return "\n\n".join([await SHOWN(target).show(key, target, adapters, limit)
                         for key, target in outputs(task).items()])


class _TableShown:
    async def show(self, key: str, target: WarehouseTable, adapters: Adapters,
                   limit: int) -> str:
        rows = await adapters.warehouse.read_rows(target.spec, limit=limit)
        body = ["\t".join(str(value) for value in row.values()) for row in rows]
        return "\n".join([f"{key}: {target.spec}", *(body or ["(no such table)"])])


class _StorageShown:
    async def show(self, key: str, target: StorageTarget, adapters: Adapters,
                   limit: int) -> str:
        return f"{key}: {target.resolve(adapters.data_prefix)}"


class _PostgresShown:
    async def show(self, key: str, target: PostgresTable, adapters: Adapters,
                   limit: int) -> str:
        if adapters.database is None or await adapters.database.marker(
            target.table, target.marker
        ) is None:
            return f"{key}: {target} not loaded"
        rows = await adapters.database.read_rows(target.table, limit=limit)
        body = ["\t".join(str(value) for value in row.values()) for row in rows]
        return "\n".join([f"{key}: {target}", *body])


class _RegistryShown:
    async def show(self, key: str, target: RegistryTarget, adapters: Adapters,
                   limit: int) -> str:
        revision = await adapters.registry.latest(target.endpoint, target.partition)
        if revision is None:
            return f"{key}: {target.endpoint} {target.partition} has no revision"
        header = [f"{key}: {target.endpoint} {target.partition}", revisions([revision])]
        if revision.lineage:
            header.append("lineage: " + ", ".join(revision.lineage))
        # The Beam job writes one "part"; other tasks (Spark, in process) write part-* files.
        listed = await adapters.storage.list(revision.uri.rstrip("/") + "/")
        parts = [i.uri for i in listed if i.uri.rpartition("/")[2].startswith("part")]
        try:
            text = (await adapters.storage.read(parts[0])).decode() if parts else ""
        except ObjectNotFound:
            parts = []
        if not parts:
            return "\n".join([*header, "(no part file)"])
        return "\n".join([*header, f"{parts[0]}:", *text.splitlines()[:limit]])


SHOWN = TargetKinds[Shown[Any]]("show", {
    RegistryTarget: _RegistryShown(),
    WarehouseTable: _TableShown(),
    StorageTarget: _StorageShown(),
    PostgresTable: _PostgresShown(),
})


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
            lines.extend(f"  {hold}" for hold in _holds(running, settings, workflow))
    return "\n".join(lines)


def _holds(running: Sequence[Run], settings: Settings,
           workflow: WorkflowSettings | None) -> list[str]:
    holds = []
    limit = settings.engine.max_concurrent_runs
    if len(running) >= limit:
        holds.append(f"held by engine.max_concurrent_runs: {len(running)} of {limit} running")
    if workflow is not None:
        mine = sum(run.family == workflow.task for run in running)
        if mine >= workflow.max_concurrent_runs:
            holds.append(f"held by workflow {workflow.name!r} max_concurrent_runs: "
                         f"{mine} of {workflow.max_concurrent_runs} running")
    return holds or ["no limit holds it: it fires on its next evaluation (charon run, "
                     "or the daemon's next trigger)"]
