"""What an in-process task's ``run()`` is handed."""

from __future__ import annotations

import fnmatch
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass

from orchestrator.errors import ConfigError, EmptyInput
from orchestrator.model import InputRevision
from orchestrator.stores.database.base import Database
from orchestrator.stores.storage.base import ObjectInfo, Storage
from orchestrator.stores.warehouse.base import Warehouse

_GLOB = set("*?[")


@dataclass(frozen=True)
class RunContext:
    """``inputs`` by requires() key; ``outputs`` maps output() keys to where to write.

    An output ref is a fresh storage URI (registry outputs), a staging table spec
    (warehouse outputs) or a table name (PostgreSQL outputs, which the run loads in
    one transaction itself); the engine publishes them only after ``run()`` returns.
    """

    inputs: Mapping[str, InputRevision]
    outputs: Mapping[str, str]
    storage: Storage
    warehouse: Warehouse
    database: Database | None = None
    fence: Callable[[], Awaitable[object]] | None = None
    """Raises LeaseLost unless the run still holds its lease (see :meth:`check_fence`)."""
    allow_empty_inputs: bool = False
    """The task's ``allow_empty_inputs``: otherwise an input with no data is an error."""

    async def check_fence(self) -> None:
        """Call right before an irreversible step a task takes itself (a load into a
        database): it raises LeaseLost if another worker may have taken the run over."""
        if self.fence is not None:
            await self.fence()

    async def files(self, key: str) -> list[str]:
        """The objects an input stands for: its ref, or what its ``<folder>/<glob>`` matches.

        A registry input's ref is ``<revision uri>/<pattern>`` (``part-*`` for a folder
        of part files, as Spark writes them); sorted, so reading order is stable. A glob
        that matches nothing raises EmptyInput unless the task allows empty inputs: an
        empty result built from it would be published as if it were the answer.
        """
        ref = self.inputs[key].ref
        if not _GLOB & set(ref.rpartition("/")[2]):
            return [ref]  # one object: reading it raises ObjectNotFound if it is gone
        found = [info.uri for info in await stored_objects(self.storage, ref)]
        if not found:
            self._empty(key, "matches no object")
        return found

    async def lines(self, key: str) -> AsyncIterator[str]:
        """Every line of every file of one input, streamed: no file is loaded whole.

        An input with no line at all raises EmptyInput unless the task allows empty inputs.
        """
        read = False
        for uri in await self.files(key):
            async for line in self.storage.read_lines(uri):
                read = True
                yield line
        if not read:
            self._empty(key, "holds no line")

    def _empty(self, key: str, what: str) -> None:
        if not self.allow_empty_inputs:
            raise EmptyInput(f"input {key!r} is empty: {self.inputs[key].ref} {what}; a task"
                             " that accepts empty inputs sets allow_empty_inputs = True")

    def require_database(self) -> Database:
        if self.database is None:
            raise ConfigError(
                "this task loads into PostgreSQL: set postgres.dsn in the config"
                " or CHARON_POSTGRES__DSN in the environment"
            )
        return self.database


async def stored_objects(storage: Storage, ref: str) -> list[ObjectInfo]:
    """The objects in storage a ref stands for: the object itself, or those directly in
    its folder that its last part (a glob such as ``part-*``) matches; sorted by URI."""
    folder, _, pattern = ref.rpartition("/")
    if not _GLOB & set(pattern):
        return [info for info in await storage.list(ref) if info.uri == ref]
    return [
        info for info in await storage.list(folder + "/")
        if info.uri.rpartition("/")[0] == folder
        and fnmatch.fnmatchcase(info.uri.rpartition("/")[2], pattern)
    ]
