"""Async sensors: sources of "this input now has revision R" facts, one module per source."""

from __future__ import annotations

from orchestrator.model import InputRevision
from orchestrator.ports import Registry, Warehouse
from orchestrator.targets import RegistryTarget, Target, WarehouseTable
from sensors.registry import RegistrySensor
from sensors.warehouse import WarehouseSensor

__all__ = ["RegistrySensor", "Sensors", "WarehouseSensor"]


class Sensors:
    """Looks any target up with the sensor for its kind."""

    def __init__(self, registry: Registry, warehouse: Warehouse) -> None:
        self._registry = RegistrySensor(registry)
        self._warehouse = WarehouseSensor(warehouse)

    async def lookup(self, key: str, target: Target) -> InputRevision | None:
        if isinstance(target, RegistryTarget):
            return await self._registry.lookup(key, target)
        if isinstance(target, WarehouseTable):
            return await self._warehouse.lookup(key, target)
        raise TypeError(f"no sensor for {type(target).__name__}")
