"""What the CLI prints on stdout: plain text tables a person can read and a script can cut."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from orchestrator.cli.summary import summary
from orchestrator.core.ports import Adapters
from orchestrator.core.report import Category, Report, Status
from orchestrator.errors import ObjectNotFound
from orchestrator.model import Revision
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    TargetKinds,
    WarehouseTable,
)
from orchestrator.tasks.task import Task, outputs


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
