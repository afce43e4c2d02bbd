"""The warehouse sensor: is this table there, and which version (the golden path's TrackEntity)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from anyio.streams.memory import MemoryObjectSendStream

from orchestrator.model import InputRevision, micros
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tasks.targets import WarehouseTable
from sensors.facts import Trigger, table_key


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
        return InputRevision(key=key, ref=str(target.spec), revision_id=version,
                             order=micros(info.last_modified))


class TableWatch:
    """Watches tables by listing each dataset once per cycle, not one call per table."""

    def __init__(
        self,
        warehouse: Warehouse,
        datasets: Callable[[], dict[tuple[str, str], set[str]]],
        send: MemoryObjectSendStream[Trigger],
    ) -> None:
        self._warehouse = warehouse
        self._datasets = datasets
        self._send = send
        self._seen: dict[str, datetime] = {}

    async def poll_once(self) -> bool:
        changed: list[str] = []
        for dataset, specs in self._datasets().items():
            tables = await self._warehouse.list_tables(*dataset)
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
            await self._send.send(Trigger("warehouse", keys, received=time.perf_counter()))
        return False
