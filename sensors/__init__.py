"""Async sensors: sources of "this input now has revision R" facts, one module per source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from orchestrator.model import InputRevision
from orchestrator.stores.database.base import Database
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.warehouse.base import Warehouse
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    TargetKinds,
    WarehouseTable,
)
from sensors.database import DatabaseSensor
from sensors.registry import RegistrySensor
from sensors.storage import StorageSensor
from sensors.warehouse import WarehouseSensor

__all__ = ["DatabaseSensor", "RegistrySensor", "Sensors", "StorageSensor", "WarehouseSensor"]

T_contra = TypeVar("T_contra", contravariant=True)


class Sensor(Protocol[T_contra]):
    """Looks one kind of target up: its current revision, None while it is absent."""

    async def lookup(self, key: str, target: T_contra) -> InputRevision | None: ...

    async def lookup_many(
        self, targets: Mapping[str, T_contra]
    ) -> dict[str, InputRevision | None]:
        """The same answers as ``lookup`` key by key, in as few calls as the source allows."""


class _NoStorage:
    async def lookup(self, key: str, target: StorageTarget) -> InputRevision | None:
        raise TypeError("no storage sensor: Sensors was built without storage")

    async def lookup_many(
        self, targets: Mapping[str, StorageTarget]
    ) -> dict[str, InputRevision | None]:
        raise TypeError("no storage sensor: Sensors was built without storage")


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
        self._by_kind = TargetKinds[Sensor[Any]]("sensor", {
            RegistryTarget: RegistrySensor(registry),
            WarehouseTable: WarehouseSensor(warehouse),
            StorageTarget: _NoStorage() if storage is None else StorageSensor(storage,
                                                                              data_prefix),
            PostgresTable: DatabaseSensor(database),
        })

    async def lookup(self, key: str, target: Target) -> InputRevision | None:
        return await self._by_kind(target).lookup(key, target)

    async def lookup_many(self, targets: Mapping[str, Target]) -> dict[str, InputRevision | None]:
        """Every target looked up, by key: one batched call per kind (and per endpoint,
        folder or dataset within it), not one per target."""
        by_sensor: dict[int, tuple[Sensor[Any], dict[str, Target]]] = {}
        for key, target in targets.items():
            sensor = self._by_kind(target)
            by_sensor.setdefault(id(sensor), (sensor, {}))[1][key] = target
        found: dict[str, InputRevision | None] = {}
        for sensor, batch in by_sensor.values():
            found.update(await sensor.lookup_many(batch))
        return {key: found[key] for key in targets}
