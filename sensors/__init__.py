"""Async sensors: sources of "this input now has revision R" facts, one module per source."""

from __future__ import annotations

from orchestrator.model import InputRevision
from orchestrator.stores.database.base import Database
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tasks.targets import PostgresTable, RegistryTarget, StorageTarget, Target
from sensors.database import DatabaseSensor
from sensors.registry import RegistrySensor
from sensors.storage import StorageSensor
from sensors.warehouse import WarehouseSensor

__all__ = ["DatabaseSensor", "RegistrySensor", "Sensors", "StorageSensor", "WarehouseSensor"]


class Sensors:
    """Looks any target up with the sensor for its kind.

    ``storage`` and ``database`` are optional so that callers which only sense registry
    partitions and tables need not build them; a target of a missing kind is an error.
    """

    def __init__(
        self, registry: Registry, warehouse: Warehouse, *,
        storage: Storage | None = None, data_prefix: str = "",
        database: Database | None = None,
    ) -> None:
        self._registry = RegistrySensor(registry)
        self._warehouse = WarehouseSensor(warehouse)
        self._storage = None if storage is None else StorageSensor(storage, data_prefix)
        self._database = DatabaseSensor(database)

    async def lookup(self, key: str, target: Target) -> InputRevision | None:
        if isinstance(target, RegistryTarget):
            return await self._registry.lookup(key, target)
        if isinstance(target, StorageTarget):
            if self._storage is None:
                raise TypeError("no storage sensor: Sensors was built without storage")
            return await self._storage.lookup(key, target)
        if isinstance(target, PostgresTable):
            return await self._database.lookup(key, target)
        return await self._warehouse.lookup(key, target)
