"""Whether a task's outputs are still there, as Luigi's ``complete()`` asks, and whether
their presence alone makes the task complete.

A sensor answers "which revision is current"; for an output charon wrote that is not
enough: a registry revision outlives the files it points at when someone deletes them,
and reading them then would read nothing. So an output is present only when what its
revision stands for is in storage too. Each target kind brings its own rule.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from orchestrator.core.ports import Adapters
from orchestrator.model import InputRevision
from orchestrator.tasks.runcontext import stored_objects
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    TargetKinds,
    WarehouseTable,
)

T_contra = TypeVar("T_contra", contravariant=True)


class Presence(Protocol[T_contra]):
    """How one kind of output is judged present."""

    fingerprinted: bool
    """True: present is not enough, the task's run must have consumed its current inputs.
    False: the output records no inputs and may be written only once per task (Luigi's
    marker row), so being there makes the task complete whatever its inputs now are."""
    reads_storage: bool
    """True: it asks storage (bounded then as storage's lookups are, sensors/guard.py)."""

    async def present(self, target: T_contra, found: InputRevision, adapters: Adapters) -> bool:
        """Whether the output the sensor found still holds its data."""


class _RegistryPresence:
    fingerprinted = True
    reads_storage = True

    async def present(self, target: RegistryTarget, found: InputRevision,
                      adapters: Adapters) -> bool:
        return bool(await stored_objects(adapters.storage, found.ref))


class _FoundIsPresent:
    """The sensor's lookup already reads the thing itself: the table, the object, the marker."""

    reads_storage = False

    def __init__(self, *, fingerprinted: bool) -> None:
        self.fingerprinted = fingerprinted

    async def present(self, target: Target, found: InputRevision, adapters: Adapters) -> bool:
        return True


PRESENCE = TargetKinds[Presence[Any]]("completeness", {
    RegistryTarget: _RegistryPresence(),
    WarehouseTable: _FoundIsPresent(fingerprinted=True),
    StorageTarget: _FoundIsPresent(fingerprinted=True),
    PostgresTable: _FoundIsPresent(fingerprinted=False),
})


async def present(target: Target, found: InputRevision | None, adapters: Adapters) -> bool:
    """Whether an output the sensor looked up (``found``, None if absent) is there."""
    return found is not None and await PRESENCE(target).present(target, found, adapters)


def reads_storage(target: Target) -> bool:
    """Whether judging the output present asks storage."""
    return PRESENCE(target).reads_storage


def complete_when_present(targets: list[Target]) -> bool:
    """Whether these outputs, once present, make their task complete whatever its inputs:
    every one is written once per task (and a task with no outputs is never so)."""
    return bool(targets) and not any(PRESENCE(target).fingerprinted for target in targets)
