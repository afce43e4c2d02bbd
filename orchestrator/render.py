"""What the CLI prints on stdout: plain text tables a person can read and a script can cut."""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.adapters import Adapters
from orchestrator.engine import Report, Status
from orchestrator.errors import ObjectNotFound
from orchestrator.model import Revision
from orchestrator.targets import RegistryTarget
from orchestrator.task import Task, outputs


def revisions(found: Sequence[Revision]) -> str:
    """The seed's ``hades ls`` layout."""
    lines = [f"{'REVISION_ID':<38} {'CREATION_TIME':<27} URI"]
    for revision in found:
        created = revision.created.strftime("%Y-%m-%dT%H:%M:%S.") + (
            f"{revision.created.microsecond // 1000:03d}Z"
        )
        lines.append(f"{revision.id:<38} {created:<27} {revision.uri}")
    return "\n".join(lines)


def report(result: Report) -> str:
    lines = []
    for task_id, outcome in result.outcomes.items():
        line = f"{task_id}: {outcome.status.value}"
        if outcome.status is Status.COMPLETE:
            line += " for the current inputs, nothing to do"
        if outcome.detail and outcome.status is not Status.MISSING:
            line += f" ({outcome.detail.splitlines()[0]})"
        lines.append(line)
        lines.extend(f"  published {key}: {value}" for key, value in outcome.published.items())
    if result.missing:
        lines.append("inputs missing:")
        lines.extend(f"  {detail}" for detail in result.missing)
    return "\n".join(lines)


async def task_outputs(task: Task, adapters: Adapters, *, limit: int) -> str:
    """Each output of ``task`` as published: the revision and its ``part`` file, or the table."""
    sections = []
    for key, target in outputs(task).items():
        if isinstance(target, RegistryTarget):
            sections.append(await _registry_output(key, target, adapters, limit))
        else:
            rows = await adapters.warehouse.read_rows(target.spec, limit=limit)
            body = [
                "\t".join(str(value) for value in row.values()) for row in rows
            ] or ["(no such table)"]
            sections.append("\n".join([f"{key}: {target.spec}", *body]))
    return "\n\n".join(sections)


async def _registry_output(key: str, target: RegistryTarget, adapters: Adapters,
                           limit: int) -> str:
    revision = await adapters.registry.latest(target.endpoint, target.partition)
    if revision is None:
        return f"{key}: {target.endpoint} {target.partition} has no revision"
    header = [f"{key}: {target.endpoint} {target.partition}", revisions([revision])]
    if revision.lineage:
        header.append("lineage: " + ", ".join(revision.lineage))
    try:
        text = (await adapters.storage.read(f"{revision.uri}/part")).decode()
    except ObjectNotFound:
        return "\n".join([*header, "(no part file)"])
    return "\n".join([*header, f"{revision.uri}/part:", *text.splitlines()[:limit]])
