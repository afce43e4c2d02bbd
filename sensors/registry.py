"""The registry sensor: does a partition have a revision, and which (the seed's LookupDaily)."""

from __future__ import annotations

from orchestrator.model import InputRevision
from orchestrator.ports import Registry
from orchestrator.targets import RegistryTarget


class RegistrySensor:
    def __init__(self, registry: Registry) -> None:
        self._registry = registry

    async def lookup(self, key: str, target: RegistryTarget) -> InputRevision | None:
        revision = await self._registry.latest(target.endpoint, target.partition)
        if revision is None:
            return None
        ref = f"{revision.uri.rstrip('/')}/{target.pattern}" if target.pattern else revision.uri
        return InputRevision(key=key, ref=ref, revision_id=revision.id)
