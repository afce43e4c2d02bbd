"""What an in-process task's ``run()`` is handed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.model import InputRevision
from orchestrator.ports import Storage, Warehouse


@dataclass(frozen=True)
class RunContext:
    """``inputs`` by requires() key; ``outputs`` maps output() keys to where to write.

    An output ref is a fresh storage URI (registry outputs) or a staging table spec
    (warehouse outputs); the engine publishes them only after ``run()`` returns.
    """

    inputs: Mapping[str, InputRevision]
    outputs: Mapping[str, str]
    storage: Storage
    warehouse: Warehouse
