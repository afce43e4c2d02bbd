"""Async sensors: sources of "this input now has revision R" facts, one module per source."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, TypeVar

from orchestrator.errors import CharonError
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
from sensors.guard import DATABASE, REGISTRY, STORAGE, WAREHOUSE, SourceGuard, SourceGuards
from sensors.registry import RegistrySensor
from sensors.storage import StorageSensor
from sensors.warehouse import WarehouseSensor

__all__ = ["DatabaseSensor", "RegistrySensor", "Sensors", "StorageSensor", "WarehouseSensor"]

T = TypeVar("T")
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
    """Looks any target up with the sensor for its kind, each source's lookups bounded
    by its guard (sensors/guard.py).

    ``storage`` and ``database`` are optional so that callers which only sense registry
    partitions and tables need not build them; a target of a missing kind is an error.
    """

    def __init__(
        self, registry: Registry, warehouse: Warehouse, *,
        storage: Storage | None = None, data_prefix: str = "",
        database: Database | None = None,
        guards: SourceGuards | None = None,
    ) -> None:
        """``guards``: the sources' guards, shared with whatever else asks them (the
        daemon's polls); the default timeout's own otherwise."""
        shared = guards or SourceGuards()

        def guarded(source: str, sensor: Sensor[Any]) -> _Guarded:
            return _Guarded(sensor, shared[source])

        self._storage = guarded(STORAGE, _NoStorage() if storage is None
                                else StorageSensor(storage, data_prefix))
        self._by_kind = TargetKinds[_Guarded]("sensor", {
            RegistryTarget: guarded(REGISTRY, RegistrySensor(registry)),
            WarehouseTable: guarded(WAREHOUSE, WarehouseSensor(warehouse)),
            StorageTarget: self._storage,
            PostgresTable: guarded(DATABASE, DatabaseSensor(database)),
        })

    async def ask_storage(self, call: Callable[[], Awaitable[T]]) -> T:
        """``call()``, which asks storage for a sensor's sake (are an output's objects
        still there?), bounded as storage's lookups are, under the same guard."""
        return await self._storage.guard.ask(call)

    async def lookup(self, key: str, target: Target) -> InputRevision | None:
        source = self._by_kind(target)
        return await source.guard.ask(partial(source.sensor.lookup, key, target))

    async def lookup_many(self, targets: Mapping[str, Target]) -> dict[str, InputRevision | None]:
        """Every target looked up, by key: one batched call per kind (and per endpoint,
        folder or dataset within it), not one per target."""
        found, failures = await self.lookup_answered(targets)
        if failures:
            raise failures[0]
        return {key: found[key] for key in targets}

    async def lookup_answered(
        self, targets: Mapping[str, Target]
    ) -> tuple[dict[str, InputRevision | None], list[CharonError]]:
        """As :meth:`lookup_many`, but the targets of a kind whose lookup fails (or that
        no sensor knows) are left out, and the error listed: one source down or hung
        keeps no other's answers."""
        by_kind: dict[int, tuple[_Guarded, dict[str, Target]]] = {}
        failures: list[CharonError] = []
        for key, target in targets.items():
            try:
                source = self._by_kind(target)
            except CharonError as exc:  # a kind no sensor knows
                failures.append(exc)
                continue
            by_kind.setdefault(id(source), (source, {}))[1][key] = target
        found: dict[str, InputRevision | None] = {}
        for source, batch in by_kind.values():
            try:
                found.update(await source.guard.ask(partial(source.sensor.lookup_many, batch)))
            except CharonError as exc:
                failures.append(exc)
        return found, failures


@dataclass(frozen=True)
class _Guarded:
    sensor: Sensor[Any]
    guard: SourceGuard
