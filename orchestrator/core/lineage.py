"""A run's OpenLineage events: START as its work begins, COMPLETE once published (its
outputs the versions published), FAIL with the error, ABORT when superseded.

The naming of datasets is the lineage port's (``stores/lineage/base.py``); here each
target kind picks its rule. Lineage is a by-product: whatever goes wrong building an
event is logged, never raised into the run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from orchestrator.core.ports import Adapters
from orchestrator.log import get_logger
from orchestrator.model import InputRevision, Run
from orchestrator.stores.lineage.base import (
    ABORT,
    COMPLETE,
    FAIL,
    START,
    Dataset,
    Naming,
    run_event,
    storage_dataset,
)
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    TargetKinds,
    WarehouseTable,
)
from orchestrator.tasks.task import Task, input_targets, outputs, requirements

DatasetRule = Callable[[Any, Naming, str, str | None], Dataset]
"""(target, naming, data prefix, version or None) → its dataset."""

DATASETS = TargetKinds[DatasetRule]("lineage", {
    RegistryTarget: lambda t, naming, _, version: naming.registry_dataset(
        t.endpoint, t.partition, version),
    WarehouseTable: lambda t, naming, _, version: naming.table_dataset(
        t.project_id, t.dataset_id, t.table_id, version),
    StorageTarget: lambda t, _, prefix, version: storage_dataset(t.resolve(prefix), version),
    PostgresTable: lambda t, naming, _, version: naming.postgres_dataset(t.table, version),
})


class RunLineage:
    """Emits the events of the runs one executor works on."""

    def __init__(self, adapters: Adapters) -> None:
        self._lineage = adapters.lineage
        self._prefix = adapters.data_prefix
        self._log = get_logger("charon.lineage")

    async def started(self, task: Task, run: Run, inputs: Mapping[str, InputRevision]) -> None:
        await self._emit(START, task, run, inputs=inputs)

    async def completed(self, task: Task, run: Run, published: Mapping[str, str]) -> None:
        await self._emit(COMPLETE, task, run, published=published)

    async def failed(self, task: Task, run: Run, error: str) -> None:
        await self._emit(FAIL, task, run, error=error)

    async def aborted(self, task: Task, run: Run, why: str) -> None:
        await self._emit(ABORT, task, run, error=why)

    async def _emit(self, kind: str, task: Task, run: Run, *,
                    inputs: Mapping[str, InputRevision] | None = None,
                    published: Mapping[str, str] | None = None,
                    error: str | None = None) -> None:
        """``inputs``: the revisions read (by default, those recorded with ``run``)."""
        if self._lineage.off:
            return
        if inputs is None:
            inputs = {i.key: i for i in run.inputs}
        try:
            event = run_event(kind, run, self._lineage.naming,
                              inputs=self._inputs(task, inputs),
                              outputs=self._outputs(task, published or {}), error=error)
        except Exception as exc:  # a by-product: the run goes on without it
            self._log.warning("cannot describe the run's lineage", error=str(exc),
                              event_type=kind)
            return
        await self._lineage.emitter.emit(event)

    def _inputs(self, task: Task, found: Mapping[str, InputRevision]) -> list[Dataset]:
        targets = input_targets(requirements(task))
        return [self._dataset(target, found[key].revision_id if key in found else None)
                for key, (_, target) in targets.items()]

    def _outputs(self, task: Task, published: Mapping[str, str]) -> list[Dataset]:
        return [self._dataset(target, published.get(key))
                for key, target in outputs(task).items()]

    def _dataset(self, target: Target, version: str | None) -> Dataset:
        return DATASETS(target)(target, self._lineage.naming, self._prefix, version)
