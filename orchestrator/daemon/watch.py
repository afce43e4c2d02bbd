"""What the daemon watches: every (workflow, day) root and the targets its graph touches.

The index maps a target key to the roots whose graphs contain it, so a sensor fact
("this partition has a new revision") turns into exactly the evaluations it affects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

from orchestrator.core.graph import resolve
from orchestrator.tasks.roots import root_task
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    WarehouseTable,
)
from orchestrator.tasks.task import ExternalTask, Task, outputs
from orchestrator.workflows import WorkflowSettings


@dataclass(frozen=True, order=True)
class Root:
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


def target_key(target: Target) -> str:
    if isinstance(target, RegistryTarget):
        return registry_key(target.endpoint, target.partition)
    if isinstance(target, StorageTarget):
        return storage_key(target.uri)
    if isinstance(target, PostgresTable):
        return f"postgres:{target.table}:{target.marker}"
    return table_key(str(target.spec))


class Watchlist:
    def __init__(self, workflows: Sequence[WorkflowSettings]) -> None:
        self.workflows = {workflow.name: workflow for workflow in workflows}
        self._tasks: dict[Root, Task] = {}
        self._roots_by_key: dict[str, set[Root]] = defaultdict(set)
        self._tables: dict[tuple[str, str], set[str]] = defaultdict(set)
        self._objects: set[StorageTarget] = set()
        self.output_prefixes: set[str] = set()
        """The uri_prefix of every registry output with one of its own (for the janitor)."""
        self.output_projects: set[str] = set()
        """The project of every warehouse output (its staging tables live there)."""
        self._roots_by_task: dict[str, set[Root]] = defaultdict(set)

    def refresh(self, today: date) -> list[Root]:
        """Add the roots that today's windows bring in; return the new ones."""
        added = [
            Root(name, day)
            for name, workflow in self.workflows.items()
            for day in workflow.partition_days(today)
            if Root(name, day) not in self._tasks
        ]
        for root in added:
            self.add(root)
        return added

    def canonical(self, root: Root) -> Root:
        """The root of the period containing ``root.day`` (its first day)."""
        return Root(root.workflow, self.workflows[root.workflow].partition_day(root.day))

    def add(self, root: Root) -> Task:
        """Watch one root (also one outside its window, when a run is requested)."""
        root = self.canonical(root)
        if root not in self._tasks:
            task = root_task(self.workflows[root.workflow], root.day)
            self._tasks[root] = task
            tasks = resolve(task).tasks.values()
            self._add_outputs(tasks)
            for each in tasks:
                self._roots_by_task[each.task_id].add(root)
            for target in _targets(tasks):
                self._roots_by_key[target_key(target)].add(root)
                if isinstance(target, WarehouseTable):
                    spec = target.spec
                    self._tables[(spec.project, spec.dataset)].add(str(spec))
                elif isinstance(target, StorageTarget):
                    self._objects.add(target)
        return self._tasks[root]

    def _add_outputs(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            if isinstance(task, ExternalTask):
                continue  # its outputs are someone else's: inputs to charon
            for target in outputs(task).values():
                if isinstance(target, RegistryTarget) and target.uri_prefix:
                    self.output_prefixes.add(target.uri_prefix)
                elif isinstance(target, WarehouseTable):
                    self.output_projects.add(target.spec.project)

    def roots_of_task(self, task_id: str) -> set[Root]:
        """The watched roots whose graphs hold that task."""
        return set(self._roots_by_task.get(task_id, ()))

    def task(self, root: Root) -> Task:
        return self._tasks[self.canonical(root)]

    @property
    def roots(self) -> list[Root]:
        return sorted(self._tasks)

    def roots_for(self, keys: Iterable[str]) -> set[Root]:
        found: set[Root] = set()
        for key in keys:
            found |= self._roots_by_key.get(key, set())
        return found

    def watches(self, key: str) -> bool:
        return key in self._roots_by_key

    @property
    def objects(self) -> set[StorageTarget]:
        """The watched storage objects."""
        return set(self._objects)

    @property
    def datasets(self) -> dict[tuple[str, str], set[str]]:
        """(project, dataset) → the watched table specs in it."""
        return {dataset: set(specs) for dataset, specs in self._tables.items()}


def _targets(tasks: Iterable[Task]) -> list[Target]:
    return [target for task in tasks for target in outputs(task).values()]


@dataclass(frozen=True)
class Trigger:
    """A fact that may make roots ready: changed target keys, or roots named outright."""

    source: str
    keys: tuple[str, ...] = ()
    roots: tuple[Root, ...] = ()
    received: float = 0.0
    """``time.perf_counter()`` when the fact reached the daemon, for trigger latency."""
