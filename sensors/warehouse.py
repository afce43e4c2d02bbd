"""The warehouse sensor: is this table there, and which version (the golden path's TrackEntity)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping

from orchestrator.model import InputRevision, TableInfo, micros
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tablespec import TableSpec
from orchestrator.tasks.targets import WarehouseTable


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
