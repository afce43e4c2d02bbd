"""The warehouse sensor: is this table there, and which version (the golden path's TrackEntity)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from datetime import datetime

from anyio.streams.memory import MemoryObjectSendStream

from orchestrator.model import InputRevision, TableInfo, micros
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.targets import WarehouseTable
from sensors.facts import Trigger, table_key


class WarehouseSensor:
    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse

    async def lookup(self, key: str, target: WarehouseTable) -> InputRevision | None:
        info = await self._warehouse.table_info(target.spec)
        return None if info is None else _input(key, info)

    async def lookup_many(
        self, targets: Mapping[str, WarehouseTable]
    ) -> dict[str, InputRevision | None]:
        """One table listing per dataset holding several of them."""
        by_dataset: dict[tuple[str, str], set[TableSpec]] = defaultdict(set)
        for target in targets.values():
            by_dataset[target.spec.project, target.spec.dataset].add(target.spec)
        tables: dict[str, TableInfo] = {}
        for dataset, specs in by_dataset.items():
            if len(specs) == 1:  # a lone table is looked up, not its whole dataset
                info = await self._warehouse.table_info(next(iter(specs)))
                listed = [] if info is None else [info]
            else:
                listed = await self._warehouse.list_tables(*dataset)
            wanted = {str(spec) for spec in specs}
            tables.update((i.spec, i) for i in listed if i.spec in wanted)
        return {
            key: _input(key, tables[str(target.spec)]) if str(target.spec) in tables else None
            for key, target in targets.items()
        }


def _input(key: str, info: TableInfo) -> InputRevision:
    # A table has no revision ids; its modification time identifies its version,
    # so a rewritten table yields a new fingerprint downstream.
    version = f"{info.spec}@{info.last_modified.isoformat()}"
    return InputRevision(key=key, ref=str(info.spec), revision_id=version,
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
            await self._send.send(Trigger("warehouse", keys, received=time.perf_counter(),
                                          shared=True))
        return False
