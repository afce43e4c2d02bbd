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

import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

import structlog

from orchestrator.errors import CharonError, OutputInvalid, UsageError
from orchestrator.model import Run
from orchestrator.stores.database.base import Database
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.targets import (
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


def publication_key(run: Run, output: str) -> str:
    """The registry's idempotency key for one output of one publication.

    It names the logical publication — task, fingerprint, generation, output — not the
    attempt: every attempt that finishes the same publication (a resumer, a worker
    waking from a pause) presents the same key and gets the first revision back.
    """
    name = json.dumps([run.task_id, run.fingerprint, run.generation, output])
    return "charon-" + hashlib.sha256(name.encode()).hexdigest()[:48]


async def publish(
    targets: Mapping[str, Target],
    refs: Mapping[str, str],
    *,
    run: Run,
    fence: Callable[[], Awaitable[object]],
    registry: Registry,
    warehouse: Warehouse,
    storage: Storage,
) -> dict[str, str]:
    """Make every output visible; return output key → the version it published.

    Tables move first and revisions are published last, so a registry revision
    (what downstream sensors react to) never points at tables not yet in place.
    ``fence`` is awaited before each irreversible step; it raises when the run's
    lease is lost. Safe to repeat, by this worker or whoever resumes the run: a move
    is keyed by its staging table, so a repeated move finds the first instead of
    copying twice, and a revision is published under its publication key, so a
    repeated publish returns the first revision. When that first revision points
    elsewhere (another attempt staged its own copy), this attempt's copy is removed.
    """
    log = structlog.get_logger("charon.commit")
    published: dict[str, str] = {}
    for key, target in targets.items():
        if isinstance(target, WarehouseTable):
            staging = TableSpec.parse(refs[key])
            await fence()
            log.info("moving staging table", staging=str(staging), final=str(target.spec))
            info = await warehouse.replace_from_staging(staging, target.spec,
                                                        f"{run.id}:{staging}")
            await warehouse.drop_table(staging)
            published[key] = f"{info.spec}@{info.last_modified.isoformat()}"
        elif isinstance(target, PostgresTable):
            published[key] = f"{target.table}#{target.marker}"  # committed by the run
    lineage = [i.revision_id for i in run.inputs]
    for key, target in targets.items():
        if isinstance(target, RegistryTarget):
            await fence()
            revision = await registry.publish(
                target.endpoint, target.partition, refs[key], lineage,
                idempotency_key=publication_key(run, key),
            )
            if revision.uri != refs[key]:
                log.info("this publication was made by another attempt; discarding this"
                         " attempt's copy", revision=revision.id, uri=refs[key])
                await storage.delete_prefix(folder(refs[key]))
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
