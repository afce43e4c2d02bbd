"""The janitor: removes staging that no live run owns, never what a revision points at.

Runs write under fresh staging locations (a folder per registry output, a table in
``_incoming_<location>`` per warehouse output), recorded in the state store before
their jobs start. Most are published or discarded by their run; the rest — left by a
process killed mid-run, written by a job that outlived its lease, or kept because
publication had begun when a run gave up — are found here and removed, once they are
older than ``min_age`` (one lease).

What is read, in this order, is what makes it safe: first the staging found, then the
runs still active, then the registry. A folder in use is either staged by a run that is
active when the runs are read (kept), or by one that finished before: published, so
the registry, read after it, holds its revision (kept), or failed or superseded
(garbage). Only folders of charon's own naming are ever considered.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from orchestrator.config import Settings
from orchestrator.core.commit import folder
from orchestrator.core.ports import Adapters
from orchestrator.errors import LeaseLost, StateStoreError
from orchestrator.log import get_logger
from orchestrator.model import Run, RunState
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.claims import MAX_LIST
from orchestrator.stores.storage.base import ObjectInfo, Storage
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tablespec import TableSpec

ABANDONED = "abandoned: its owner lost its lease and nobody took the run over for a lease"
# A staging folder as orchestrator.core.commit.fresh_uri names it:
# <prefix>/<endpoint>/<partition>/<UTC stamp>-<12 hex digits>
_STAGING_TAIL = (
    r"(?P<endpoint>[^/]+)/(?P<partition>[^/]+)/[0-9]{8}T[0-9]{6}\.[0-9]{6}-[0-9a-f]{12}"
)
_STAGING_END = re.compile(_STAGING_TAIL + "$")


@dataclass
class Sweep:
    """What one pass found and did."""

    removed_folders: list[str] = field(default_factory=list)
    removed_tables: list[str] = field(default_factory=list)
    kept_young: int = 0
    """Unowned staging not yet older than the minimum age: looked at again next time."""
    abandoned: list[str] = field(default_factory=list)
    """Runs that were running when their owner lost its lease, a lease ago or more, and
    that nobody took over since: ended as failed, so their staging goes next time."""
    adopted: list[str] = field(default_factory=list)
    """Such runs that the caller takes over instead (a daemon watching their task)."""
    stalled: list[str] = field(default_factory=list)
    """Runs publishing under a lease that ran out a lease ago or more: never ended here
    (a publication is only ever finished), but worth a look."""
    dry_run: bool = False

    @property
    def removed(self) -> int:
        return len(self.removed_folders) + len(self.removed_tables)


@dataclass(frozen=True)
class Janitor:
    storage: Storage
    warehouse: Warehouse
    registry: Registry
    state: StateStore
    min_age: timedelta
    location: str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    async def sweep(
        self, prefixes: Iterable[str], projects: Iterable[str], *, dry_run: bool = False,
        adopt: Callable[[Run], bool] = lambda run: False,
    ) -> Sweep:
        """One pass over the staging under ``prefixes`` and in ``projects``.

        ``adopt`` is offered each abandoned run first: a daemon that watches its task
        evaluates it (and so takes it over) instead of letting it be ended.
        """
        result = Sweep(dry_run=dry_run)
        prefixes = list(dict.fromkeys(p.rstrip("/") for p in prefixes))
        folders = await self._staged_folders(prefixes)
        tables = await self._staging_tables(projects)
        active = await self._active_runs()
        owned = {ref.rstrip("/") for run in active for ref in run.staged.values()}
        now = self.clock()
        for path, newest in sorted(folders.items()):
            if path in owned or await self._published(path):
                continue
            if now - newest < self.min_age:
                result.kept_young += 1
            else:
                result.removed_folders.append(path)
                if not dry_run:
                    await self.storage.delete_prefix(folder(path))
        for spec, modified in sorted(tables.items()):
            if spec in owned:
                continue
            if now - modified < self.min_age:
                result.kept_young += 1
            else:
                result.removed_tables.append(spec)
                if not dry_run:
                    await self.warehouse.drop_table(TableSpec.parse(spec))
        if not dry_run:
            await self._remove_empty_parents(prefixes, now)
        await self._finish_abandoned(active, now, result, adopt)
        if result.removed:
            get_logger("charon.janitor").info(
                "removed unowned staging", folders=result.removed_folders,
                tables=result.removed_tables, dry_run=dry_run,
            )
        return result

    async def _staged_folders(self, prefixes: Iterable[str]) -> dict[str, datetime]:
        """Staging folder → when an object in it was last written (or, for a folder a
        writer made and died before writing into, when the folder was made)."""
        found: dict[str, datetime] = {}
        for prefix in prefixes:
            staging = re.compile(re.escape(prefix) + "/" + _STAGING_TAIL + "(?=/|$)")
            listed = [*await self.storage.list(prefix + "/"),
                      *await self.storage.empty_folders(prefix + "/")]
            for info in listed:
                if match := staging.match(info.uri):
                    found[match[0]] = _newest(found.get(match[0]), info)
        return found

    async def _remove_empty_parents(self, prefixes: Iterable[str], now: datetime) -> None:
        """The endpoint and partition folders staging removal left empty, once as old as
        a lease: a run about to stage in one would have touched it since."""
        for prefix in prefixes:
            for info in await self.storage.empty_folders(prefix + "/"):
                if not _STAGING_END.search(info.uri) and now - info.updated >= self.min_age:
                    await self.storage.delete_prefix(folder(info.uri))

    async def _staging_tables(self, projects: Iterable[str]) -> dict[str, datetime]:
        dataset = f"_incoming_{self.location}"
        found: dict[str, datetime] = {}
        for project in dict.fromkeys(projects):
            for info in await self.warehouse.list_tables(project, dataset):
                found[info.spec] = info.last_modified
        return found

    async def _active_runs(self) -> list[Run]:
        """Every active run: its staging is owned, its owner may be writing it."""
        active: list[Run] = []
        for state in (RunState.RUNNING, RunState.PUBLISHING):
            runs = await self.state.list_runs(state=state, limit=MAX_LIST)
            if len(runs) == MAX_LIST:
                # Not every active run was read: some owned staging could look unowned.
                raise StateStoreError(
                    f"over {MAX_LIST} runs are {state}: the janitor cannot tell what they"
                    " own, and removes nothing"
                )
            active.extend(runs)
        return active

    async def _finish_abandoned(self, active: Iterable[Run], now: datetime, result: Sweep,
                                adopt: Callable[[Run], bool]) -> None:
        log = get_logger("charon.janitor")
        for run in active:
            if run.lease_expires is None or now - run.lease_expires < self.min_age:
                continue
            if run.state is RunState.PUBLISHING:
                result.stalled.append(run.id)
                log.warning("a publication has had no owner for a lease; a claim of its"
                            " task finishes it", run_id=run.id, task=run.task_id)
                continue
            if adopt(run):
                result.adopted.append(run.id)
                continue
            result.abandoned.append(run.id)
            if not result.dry_run:
                try:
                    await self.state.fail(run.id, run.attempt, ABANDONED)
                except LeaseLost:
                    continue  # taken over meanwhile: not abandoned after all

    async def _published(self, path: str) -> bool:
        match = _STAGING_END.search(path)
        assert match is not None  # only staging folders get here
        revisions = await self.registry.list(match["endpoint"], match["partition"])
        return any(revision.uri.rstrip("/") == path for revision in revisions)


def _newest(known: datetime | None, info: ObjectInfo) -> datetime:
    return info.updated if known is None else max(known, info.updated)


def build_janitor(settings: Settings, adapters: Adapters) -> Janitor:
    """The janitor over the configured backends: staging older than one lease goes."""
    return Janitor(adapters.storage, adapters.warehouse, adapters.registry, adapters.state,
                   timedelta(seconds=settings.engine.lease_seconds),
                   settings.warehouse.location)
