"""The commit protocol: stage → validate → publish, or discard.

Nothing a run writes is visible before it succeeded: tables are written to a
staging table and moved to the final table by one atomic copy; text outputs are
written under a fresh random URI that becomes visible only as a published revision.

A PostgreSQL table (``PostgresTable``, Luigi's CopyToTable) is the exception that
proves the rule: the run's own transaction — COPY plus marker row — *is* the atomic
publication, so its stage is just a name, validate checks the marker committed,
publish has nothing left to do and discard nothing to remove (a failed transaction
rolled back). Storage objects (``StorageTarget``) are inputs only.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import structlog

from orchestrator.errors import CharonError, OutputInvalid, UsageError
from orchestrator.model import InputRevision
from orchestrator.ports import Database, Registry, Storage, Warehouse
from orchestrator.tablespec import TableSpec
from orchestrator.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    WarehouseTable,
)
from sensors.database import require


def folder(uri: str) -> str:
    """The URI as a folder prefix: storage lists by plain prefix, as GCS does."""
    return uri.rstrip("/") + "/"


def fresh_uri(prefix: str, target: RegistryTarget) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
    base = (target.uri_prefix or prefix).rstrip("/")
    return f"{base}/{target.endpoint}/{target.partition}/{stamp}-{secrets.token_hex(6)}"


async def stage(
    targets: Mapping[str, Target], *, warehouse: Warehouse, output_prefix: str
) -> dict[str, str]:
    """Where the run writes each output: a fresh URI or a staging table spec."""
    refs: dict[str, str] = {}
    for key, target in targets.items():
        if isinstance(target, RegistryTarget):
            refs[key] = fresh_uri(output_prefix, target)
        elif isinstance(target, PostgresTable):
            refs[key] = target.table  # the run's transaction publishes it in place
        elif isinstance(target, StorageTarget):
            raise UsageError(
                f"output {key!r}: {target} is an input target; write outputs to a "
                "RegistryTarget, which publishes them atomically with lineage"
            )
        else:
            refs[key] = str(await warehouse.staging_table(target.spec))
    return refs


async def validate(
    targets: Mapping[str, Target], refs: Mapping[str, str], *, warehouse: Warehouse,
    storage: Storage, database: Database | None = None,
) -> None:
    for key, target in targets.items():
        if isinstance(target, RegistryTarget):
            if not await storage.list(folder(refs[key])):
                raise OutputInvalid(f"output {key!r}: the job wrote nothing under {refs[key]}")
        elif isinstance(target, PostgresTable):
            if await require(database, target).marker(target.table, target.marker) is None:
                raise OutputInvalid(f"output {key!r}: the run did not load {target}")
        elif isinstance(target, StorageTarget):
            continue  # refused by stage()
        elif await warehouse.table_info(TableSpec.parse(refs[key])) is None:
            raise OutputInvalid(f"output {key!r}: the job did not write {refs[key]}")


async def publish(
    targets: Mapping[str, Target],
    refs: Mapping[str, str],
    *,
    inputs: Sequence[InputRevision],
    run_id: str,
    resuming: bool,
    registry: Registry,
    warehouse: Warehouse,
) -> dict[str, str]:
    """Make every output visible; return output key → the version it published.

    Tables move first and revisions are published last, so a registry revision
    (what downstream sensors react to) never points at tables not yet in place.
    Safe to repeat after a crash (``resuming``): a move is keyed by its staging
    table, so a retried move finds the first instead of copying twice, and a
    revision already published for the staged URI is reused, not published again.
    """
    log = structlog.get_logger("charon.commit")
    published: dict[str, str] = {}
    for key, target in targets.items():
        if isinstance(target, WarehouseTable):
            staging = TableSpec.parse(refs[key])
            log.info("moving staging table", staging=str(staging), final=str(target.spec))
            info = await warehouse.replace_from_staging(staging, target.spec,
                                                        f"{run_id}:{staging}")
            await warehouse.drop_table(staging)
            published[key] = f"{info.spec}@{info.last_modified.isoformat()}"
        elif isinstance(target, PostgresTable):
            published[key] = f"{target.table}#{target.marker}"  # committed by the run
    lineage = [i.revision_id for i in inputs]
    for key, target in targets.items():
        if isinstance(target, RegistryTarget):
            earlier = [
                r for r in await registry.list(target.endpoint, target.partition)
                if r.uri == refs[key]
            ] if resuming else []
            revision = earlier[0] if earlier else await registry.publish(
                target.endpoint, target.partition, refs[key], lineage
            )
            log.info("published revision", endpoint=target.endpoint,
                     partition=target.partition, revision=revision.id, uri=revision.uri)
            published[key] = revision.id
    return published


async def discard(
    targets: Mapping[str, Target], refs: Mapping[str, str], *, warehouse: Warehouse,
    storage: Storage,
) -> None:
    """Remove what a failed run staged; keep going past errors so all of it is tried."""
    log = structlog.get_logger("charon.commit")
    for key, target in targets.items():
        if key not in refs:
            continue
        try:
            if isinstance(target, WarehouseTable):
                await warehouse.drop_table(TableSpec.parse(refs[key]))
            elif isinstance(target, RegistryTarget):
                await storage.delete_prefix(folder(refs[key]))
            # A PostgresTable load that failed rolled back: nothing to remove.
        except CharonError as exc:
            log.warning("could not discard staged output", output=key, ref=refs[key],
                        error=str(exc))
