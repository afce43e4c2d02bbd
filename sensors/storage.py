"""The storage sensor: is this object there, and which version (Luigi example's Streams files)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping

from anyio.streams.memory import MemoryObjectSendStream

from orchestrator.model import InputRevision, micros
from orchestrator.stores.storage.base import ObjectInfo, Storage, folder_of
from orchestrator.tasks.targets import StorageTarget
from sensors.facts import Trigger, storage_key


def version(info: ObjectInfo) -> str:
    # Objects have no revision ids; the update time and size identify a version, so a
    # rewritten file yields a new fingerprint downstream.
    return f"{info.uri}@{info.updated.isoformat()}#{info.size}"


class StorageSensor:
    def __init__(self, storage: Storage, data_prefix: str) -> None:
        self._storage = storage
        self._data_prefix = data_prefix

    async def lookup(self, key: str, target: StorageTarget) -> InputRevision | None:
        uri = target.resolve(self._data_prefix)
        found = [info for info in await self._storage.list(uri) if info.uri == uri]
        return _input(key, found[0]) if found else None

    async def lookup_many(
        self, targets: Mapping[str, StorageTarget]
    ) -> dict[str, InputRevision | None]:
        """One storage call for them all: a listing per folder, not a call per object."""
        uris = {key: target.resolve(self._data_prefix) for key, target in targets.items()}
        objects = await self._storage.objects(list(uris.values()))
        return {
            key: _input(key, objects[uri]) if uri in objects else None
            for key, uri in uris.items()
        }


def _input(key: str, info: ObjectInfo) -> InputRevision:
    return InputRevision(key=key, ref=info.uri, revision_id=version(info),
                         order=micros(info.updated))


class StorageWatch:
    """Watches objects by listing each folder once per cycle, not one call per object."""

    def __init__(
        self,
        storage: Storage,
        data_prefix: str,
        watched: Callable[[], Iterable[StorageTarget]],
        send: MemoryObjectSendStream[Trigger],
    ) -> None:
        self._storage = storage
        self._data_prefix = data_prefix
        self._watched = watched
        self._send = send
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
            objects = [i for i in await self._storage.list(folder) if i.uri in uris]
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
