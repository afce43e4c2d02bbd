"""The registry sensor: does a partition have a revision, and which (golden path's LookupDaily)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from orchestrator.model import InputRevision, Revision
from orchestrator.stores.registry.base import Registry
from orchestrator.tasks.targets import RegistryTarget


class RegistrySensor:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def lookup(self, key: str, target: RegistryTarget) -> InputRevision | None:
        revision = await self._registry.latest(target.endpoint, target.partition)
        return None if revision is None else _input(key, target, revision)

    async def lookup_many(
        self, targets: Mapping[str, RegistryTarget]
    ) -> dict[str, InputRevision | None]:
        """One registry call per endpoint, whatever the number of partitions."""
        by_endpoint: dict[str, list[str]] = defaultdict(list)
        for target in targets.values():
            by_endpoint[target.endpoint].append(target.partition)
        latest = {
            endpoint: await self._registry.latest_many(endpoint, partitions)
            for endpoint, partitions in by_endpoint.items()
        }
        found: dict[str, InputRevision | None] = {}
        for key, target in targets.items():
            revision = latest[target.endpoint].get(target.partition)
            found[key] = None if revision is None else _input(key, target, revision)
        return found


def _input(key: str, target: RegistryTarget, revision: Revision) -> InputRevision:
    ref = f"{revision.uri.rstrip('/')}/{target.pattern}" if target.pattern else revision.uri
    return InputRevision(key=key, ref=ref, revision_id=revision.id, order=revision.seq)


@runtime_checkable
class LongPollRegistry(Protocol):
    """A registry whose change feed can wait for the next publish (the HTTP service)."""

    # The timeout is the server's long-poll wait, sent with the request; the client's own
    # deadline is the HTTP timeout around it.
    async def wait_for_changes(
        self, since_seq: int, timeout: float  # noqa: ASYNC109
    ) -> list[Revision]: ...
