"""The daemon's watches: each polls one kind of source, whatever the number of targets
watched, and sends the keys that changed as one trigger (``facts.py``).

Kept apart from the sensors' lookups, which every command evaluating tasks uses: only
the daemon watches, so only it imports this module and the facts. The table and object
listings are bounded as lookups are (``guard.py``): a source that does not answer fails
its poll, and the daemon's status says so, within the lookup timeout. The registry's
feed is left to its own timeouts, as a long-poll waits on purpose.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from anyio.streams.memory import MemoryObjectSendStream

from orchestrator.stores.registry.base import Registry
from orchestrator.stores.storage.base import Storage, folder_of
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tasks.targets import StorageTarget
from sensors.facts import Trigger, registry_key, storage_key, table_key
from sensors.guard import SourceGuard
from sensors.registry import LongPollRegistry
from sensors.storage import version


class RegistryFeed:
    """Follows the registry's change feed: one request per cycle, whatever the partitions."""

    def __init__(
        self, registry: Registry, send: MemoryObjectSendStream[Trigger], *,
        page: int = 1000, long_poll_seconds: float = 30.0,
    ) -> None:
        self._registry = registry
        self._send = send
        self._page = page
        self._long_poll_seconds = long_poll_seconds
        self.cursor = 0

    async def poll_once(self) -> bool:
        if isinstance(self._registry, LongPollRegistry):
            changes = await self._registry.wait_for_changes(self.cursor, self._long_poll_seconds)
        else:
            changes = await self._registry.changes(self.cursor, limit=self._page)
        if changes:
            self.cursor = max(revision.seq for revision in changes)
            keys = tuple(dict.fromkeys(registry_key(r.endpoint, r.partition) for r in changes))
            await self._send.send(Trigger("registry", keys, received=time.perf_counter(),
                                          shared=True))
        # A long-poll already waited; a full page means more is waiting.
        return isinstance(self._registry, LongPollRegistry) or len(changes) == self._page


class TableWatch:
    """Watches tables by listing each dataset once per cycle, not one call per table."""

    def __init__(
        self,
        warehouse: Warehouse,
        datasets: Callable[[], dict[tuple[str, str], set[str]]],
        send: MemoryObjectSendStream[Trigger],
        guard: SourceGuard,
    ) -> None:
        self._warehouse = warehouse
        self._datasets = datasets
        self._send = send
        self._guard = guard
        self._seen: dict[str, datetime] = {}

    async def poll_once(self) -> bool:
        changed: list[str] = []
        for dataset, specs in self._datasets().items():
            tables = await self._guard.ask(partial(self._warehouse.list_tables, *dataset))
            fresh = [
                info.spec for info in tables
                if info.spec in specs and self._seen.get(info.spec) != info.last_modified
            ]
            self._seen.update((i.spec, i.last_modified) for i in tables if i.spec in specs)
            # The first listing reports everything it finds too: a table written
            # between the start-up sweep and this listing must not go unnoticed, and
            # evaluating a root that is already complete does nothing.
            changed.extend(fresh)
        if changed:
            keys = tuple(table_key(spec) for spec in changed)
            await self._send.send(Trigger("warehouse", keys, received=time.perf_counter(),
                                          shared=True))
        return False


class StorageWatch:
    """Watches objects by listing each folder once per cycle, not one call per object."""

    def __init__(
        self,
        storage: Storage,
        data_prefix: str,
        watched: Callable[[], Iterable[StorageTarget]],
        send: MemoryObjectSendStream[Trigger],
        guard: SourceGuard,
    ) -> None:
        self._storage = storage
        self._data_prefix = data_prefix
        self._watched = watched
        self._send = send
        self._guard = guard
        self._seen: dict[str, str] = {}

    def _folders(self) -> dict[str, dict[str, str]]:
        """folder → {absolute URI: the target's own spelling (the watch key's)}."""
        folders: dict[str, dict[str, str]] = defaultdict(dict)
        for target in self._watched():
            uri = target.resolve(self._data_prefix)
            folders[folder_of(uri)][uri] = target.uri
        return folders

    async def poll_once(self) -> bool:
        changed: list[str] = []
        for folder, uris in self._folders().items():
            listed = await self._guard.ask(partial(self._storage.list, folder))
            objects = [i for i in listed if i.uri in uris]
            fresh = [i for i in objects if self._seen.get(i.uri) != version(i)]
            self._seen.update((i.uri, version(i)) for i in objects)
            # The first listing reports everything it finds too: an object written
            # between the start-up sweep and this listing must not go unnoticed, and
            # evaluating a root that is already complete does nothing.
            changed.extend(uris[i.uri] for i in fresh)
        if changed:
            keys = tuple(storage_key(uri) for uri in changed)
            await self._send.send(Trigger("storage", keys, received=time.perf_counter(),
                                          shared=True))
        return False
