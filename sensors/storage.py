"""The storage sensor: is this object there, and which version (Luigi example's Streams files)."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.model import InputRevision, micros
from orchestrator.stores.storage.base import ObjectInfo, Storage
from orchestrator.tasks.targets import StorageTarget


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
