"""The warehouse table sensor: does this table exist, and which version (the seed's TrackEntity)."""

from __future__ import annotations

from orchestrator.model import InputRevision
from orchestrator.ports import Warehouse
from orchestrator.targets import WarehouseTable


class WarehouseSensor:
    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    async def lookup(self, key: str, target: WarehouseTable) -> InputRevision | None:
        info = await self._warehouse.table_info(target.spec)
        if info is None:
            return None
        # A table has no revision ids; its modification time identifies its version,
        # so a rewritten table yields a new fingerprint downstream.
        version = f"{info.spec}@{info.last_modified.isoformat()}"
        return InputRevision(key=key, ref=str(target.spec), revision_id=version)
