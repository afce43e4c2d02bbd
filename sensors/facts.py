"""What sensors tell the daemon: the keys of targets that changed, as triggers.

A target key names one watched thing (a registry partition, a table, a storage object)
the same way whoever computes it; a trigger carries changed keys, or names roots (a
workflow's day) outright, as a webhook or a retry does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date


@dataclass(frozen=True, order=True, slots=True)
class Root:
    """One watched (workflow, day); a daemon holds one per day watched, so no __dict__."""

    workflow: str
    day: date

    def __str__(self) -> str:
        return f"{self.workflow} {self.day.isoformat()}"


def registry_key(endpoint: str, partition: str) -> str:
    return f"registry:{endpoint}:{partition}"


def table_key(spec: str) -> str:
    return f"table:{spec}"


def storage_key(uri: str) -> str:
    """An object's key, from the target's own spelling of its URI (maybe relative)."""
    return f"storage:{uri}"


@dataclass(frozen=True)
class Trigger:
    """A fact that may make roots ready: changed target keys, or roots named outright."""

    source: str
    keys: tuple[str, ...] = ()
    roots: tuple[Root, ...] = ()
    received: float = 0.0
    """``time.perf_counter()`` when the fact reached the daemon, for trigger latency."""
    shared: bool = False
    """Every daemon replica senses the fact itself (its sensors poll the same source),
    so only the owner of a day it touches evaluates that day; a fact only this replica
    was told (a webhook, a request) is evaluated here whoever owns the day."""
    asked: tuple[str, ...] = ()
    """The kept requests (orchestrator.model.Asked) the evaluation of its roots serves."""
