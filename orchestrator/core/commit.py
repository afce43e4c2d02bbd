"""The commit protocol: stage → validate → publish, or discard.

Nothing a run writes is visible before it succeeded: tables are written to a
staging table and moved to the final table by one atomic copy; text outputs are
written under a fresh random URI that becomes visible only as a published revision.

A PostgreSQL table (``PostgresTable``, Luigi's CopyToTable) is the exception that
proves the rule: the run's own transaction — COPY plus marker row — *is* the atomic
publication, so its stage is just a name, validate checks the marker committed,
publish has nothing left to do and discard nothing to remove (a failed transaction
rolled back). Storage objects (``StorageTarget``) are inputs only.

Each target kind brings its own :class:`OutputKind`; the functions here only walk a
run's outputs in the protocol's order.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn, Protocol, TypeVar

from orchestrator.core.ports import Adapters
from orchestrator.errors import CharonError, OutputInvalid, UsageError
from orchestrator.log import get_logger
from orchestrator.model import Run
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    TargetKinds,
    WarehouseTable,
)
from sensors.database import require

T_contra = TypeVar("T_contra", contravariant=True)


@dataclass(frozen=True)
class Publication:
    """One run's publication: whose, and the fence awaited before each irreversible step."""

    run: Run
    fence: Callable[[], Awaitable[object]]
    adapters: Adapters


class OutputKind(Protocol[T_contra]):
    """How one kind of target is staged, validated, published and discarded."""

    publishes_last: bool
    """Published after every other kind: registry revisions, which downstream sensors
    react to, never point at tables not yet in place."""

    async def stage(self, key: str, target: T_contra, adapters: Adapters) -> str:
        """Where the run writes this output (a reference kept with the run)."""

    async def validate(self, key: str, target: T_contra, ref: str, adapters: Adapters) -> None:
        """Raise OutputInvalid unless the run wrote the output at ``ref``."""

    async def publish(self, key: str, target: T_contra, ref: str,
                      publication: Publication) -> str:
        """Make the output visible; return the version published. Safe to repeat."""

    async def discard(self, target: T_contra, ref: str, adapters: Adapters) -> None:
        """Remove what a failed run staged at ``ref``."""


def folder(uri: str) -> str:
    """The URI as a folder prefix: storage lists by plain prefix, as GCS does."""
    return uri.rstrip("/") + "/"


def fresh_uri(prefix: str, target: RegistryTarget) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    base = (target.uri_prefix or prefix).rstrip("/")
    return f"{base}/{target.endpoint}/{target.partition}/{stamp}-{secrets.token_hex(6)}"


def publication_key(run: Run, output: str) -> str:
    """The registry's idempotency key for one output of one publication.

    It names the logical publication — task, fingerprint, generation, output — not the
    attempt: every attempt that finishes the same publication (a resumer, a worker
    waking from a pause) presents the same key and gets the first revision back.
    """
    name = json.dumps([run.task_id, run.fingerprint, run.generation, output])
    return "charon-" + hashlib.sha256(name.encode()).hexdigest()[:48]


class RegistryOutputs:
    """Written under a fresh URI, published as a revision with the run's lineage."""

    publishes_last = True

    async def stage(self, key: str, target: RegistryTarget, adapters: Adapters) -> str:
        return fresh_uri(adapters.output_prefix, target)

    async def validate(self, key: str, target: RegistryTarget, ref: str,
                       adapters: Adapters) -> None:
        if not await adapters.storage.list(folder(ref)):
            raise OutputInvalid(f"output {key!r}: the job wrote nothing under {ref}")

    async def publish(self, key: str, target: RegistryTarget, ref: str,
                      publication: Publication) -> str:
        """A revision is published under its publication key, so a repeated publish
        returns the first revision. When that one points elsewhere (another attempt
        staged its own copy), this attempt's copy is removed."""
        log = get_logger("charon.commit")
        run, adapters = publication.run, publication.adapters
        await publication.fence()
        revision = await adapters.registry.publish(
            target.endpoint, target.partition, ref, [i.revision_id for i in run.inputs],
            idempotency_key=publication_key(run, key),
        )
        if revision.uri != ref:
            log.info("this publication was made by another attempt; discarding this"
                     " attempt's copy", revision=revision.id, uri=ref)
            await adapters.storage.delete_prefix(folder(ref))
        log.info("published revision", endpoint=target.endpoint,
                 partition=target.partition, revision=revision.id, uri=revision.uri)
        return revision.id

    async def discard(self, target: RegistryTarget, ref: str, adapters: Adapters) -> None:
        await adapters.storage.delete_prefix(folder(ref))


class WarehouseOutputs:
    """Written to a staging table, moved to the final table by one atomic copy."""

    publishes_last = False

    async def stage(self, key: str, target: WarehouseTable, adapters: Adapters) -> str:
        return str(await adapters.warehouse.staging_table(target.spec))

    async def validate(self, key: str, target: WarehouseTable, ref: str,
                       adapters: Adapters) -> None:
        if await adapters.warehouse.table_info(TableSpec.parse(ref)) is None:
            raise OutputInvalid(f"output {key!r}: the job did not write {ref}")

    async def publish(self, key: str, target: WarehouseTable, ref: str,
                      publication: Publication) -> str:
        """The move is keyed by its staging table, so a repeated move finds the first
        instead of copying twice."""
        warehouse, staging = publication.adapters.warehouse, TableSpec.parse(ref)
        await publication.fence()
        get_logger("charon.commit").info(
            "moving staging table", staging=str(staging), final=str(target.spec))
        info = await warehouse.replace_from_staging(staging, target.spec,
                                                    f"{publication.run.id}:{staging}")
        await warehouse.drop_table(staging)
        return f"{info.spec}@{info.last_modified.isoformat()}"

    async def discard(self, target: WarehouseTable, ref: str, adapters: Adapters) -> None:
        await adapters.warehouse.drop_table(TableSpec.parse(ref))


class PostgresOutputs:
    """Loaded in place by the run's own transaction, which is its publication."""

    publishes_last = False

    async def stage(self, key: str, target: PostgresTable, adapters: Adapters) -> str:
        return target.table

    async def validate(self, key: str, target: PostgresTable, ref: str,
                       adapters: Adapters) -> None:
        if await require(adapters.database, target).marker(target.table, target.marker) is None:
            raise OutputInvalid(f"output {key!r}: the run did not load {target}")

    async def publish(self, key: str, target: PostgresTable, ref: str,
                      publication: Publication) -> str:
        return f"{target.table}#{target.marker}"  # committed by the run

    async def discard(self, target: PostgresTable, ref: str, adapters: Adapters) -> None:
        """A load that failed rolled back: nothing to remove."""


class InputsOnly:
    """A kind no run may write: refused when the run stages its outputs."""

    publishes_last = False

    async def stage(self, key: str, target: StorageTarget, adapters: Adapters) -> str:
        _refuse(key, target)

    async def validate(self, key: str, target: StorageTarget, ref: str,
                       adapters: Adapters) -> None:
        _refuse(key, target)

    async def publish(self, key: str, target: StorageTarget, ref: str,
                      publication: Publication) -> str:
        _refuse(key, target)

    async def discard(self, target: StorageTarget, ref: str, adapters: Adapters) -> None:
        """Nothing was staged for it."""


def _refuse(key: str, target: StorageTarget) -> NoReturn:
    raise UsageError(
        f"output {key!r}: {target} is an input target; write outputs to a "
        "RegistryTarget, which publishes them atomically with lineage"
    )


OUTPUT_KINDS = TargetKinds[OutputKind[Any]]("commit", {
    RegistryTarget: RegistryOutputs(),
    WarehouseTable: WarehouseOutputs(),
    PostgresTable: PostgresOutputs(),
    StorageTarget: InputsOnly(),
})


async def stage(targets: Mapping[str, Target], adapters: Adapters) -> dict[str, str]:
    """Where the run writes each output: a fresh URI or a staging table spec."""
    return {key: await OUTPUT_KINDS(target).stage(key, target, adapters)
            for key, target in targets.items()}


async def validate(targets: Mapping[str, Target], refs: Mapping[str, str],
                   adapters: Adapters) -> None:
    for key, target in targets.items():
        await OUTPUT_KINDS(target).validate(key, target, refs[key], adapters)


async def publish(targets: Mapping[str, Target], refs: Mapping[str, str],
                  publication: Publication) -> dict[str, str]:
    """Make every output visible; return output key → the version it published.

    Registry revisions are published last (see :attr:`OutputKind.publishes_last`).
    ``publication.fence`` is awaited before each irreversible step; it raises when the
    run's lease is lost. Safe to repeat, by this worker or whoever resumes the run.
    """
    ordered = sorted(targets.items(), key=lambda item: OUTPUT_KINDS(item[1]).publishes_last)
    return {key: await OUTPUT_KINDS(target).publish(key, target, refs[key], publication)
            for key, target in ordered}


async def discard(targets: Mapping[str, Target], refs: Mapping[str, str],
                  adapters: Adapters) -> None:
    """Remove what a failed run staged; keep going past errors so all of it is tried."""
    log = get_logger("charon.commit")
    for key, target in targets.items():
        if key not in refs:
            continue
        try:
            await OUTPUT_KINDS(target).discard(target, refs[key], adapters)
        except CharonError as exc:
            log.warning("could not discard staged output", output=key, ref=refs[key],
                        error=str(exc))
