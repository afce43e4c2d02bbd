"""What the daemon watches: every (workflow, day) root and the targets its graph touches.

The index maps a target key to the roots whose graphs contain it, so a sensor fact
("this partition has a new revision") turns into exactly the evaluations it affects.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar

from orchestrator.core.graph import resolve
from orchestrator.daemon.input_days import InputDays
from orchestrator.tasks.roots import root_task
from orchestrator.tasks.targets import (
    PostgresTable,
    RegistryTarget,
    StorageTarget,
    Target,
    TargetKinds,
    WarehouseTable,
)
from orchestrator.tasks.task import ExternalTask, Task, outputs
from orchestrator.workflows import WorkflowSettings
from sensors.facts import Root, registry_key, storage_key, table_key


@dataclass
class Watched:
    """What the sensors look at beside the registry feed, and where the janitor sweeps."""

    tables: dict[tuple[str, str], set[str]] = field(default_factory=lambda: defaultdict(set))
    objects: set[StorageTarget] = field(default_factory=set)
    output_prefixes: set[str] = field(default_factory=set)
    output_projects: set[str] = field(default_factory=set)


T_contra = TypeVar("T_contra", contravariant=True)


class WatchKind(Protocol[T_contra]):
    """How the daemon watches one kind of target."""

    def key(self, target: T_contra) -> str:
        """The key the sensors' facts about this target carry."""

    def watch(self, target: T_contra, watched: Watched) -> None:
        """Note what a sensor must look at to notice the target change."""

    def output(self, target: T_contra, watched: Watched) -> None:
        """Note where a run writing this target stages (for the janitor)."""


class _RegistryWatch:
    def key(self, target: RegistryTarget) -> str:
        return registry_key(target.endpoint, target.partition)

    def watch(self, target: RegistryTarget, watched: Watched) -> None:
        """The registry feed reports every partition: nothing to add."""

    def output(self, target: RegistryTarget, watched: Watched) -> None:
        if target.uri_prefix:
            watched.output_prefixes.add(target.uri_prefix)


class _TableWatch:
    def key(self, target: WarehouseTable) -> str:
        return table_key(str(target.spec))

    def watch(self, target: WarehouseTable, watched: Watched) -> None:
        spec = target.spec
        watched.tables[(spec.project, spec.dataset)].add(str(spec))

    def output(self, target: WarehouseTable, watched: Watched) -> None:
        watched.output_projects.add(target.spec.project)


class _StorageWatch:
    def key(self, target: StorageTarget) -> str:
        return storage_key(target.uri)

    def watch(self, target: StorageTarget, watched: Watched) -> None:
        watched.objects.add(target)

    def output(self, target: StorageTarget, watched: Watched) -> None:
        """Never an output (the commit protocol refuses it)."""


class _PostgresWatch:
    def key(self, target: PostgresTable) -> str:
        return f"postgres:{target.table}:{target.marker}"

    def watch(self, target: PostgresTable, watched: Watched) -> None:
        """Looked up at each evaluation: no sensor watches marker tables."""

    def output(self, target: PostgresTable, watched: Watched) -> None:
        """Loaded in place: no staging to sweep."""


WATCH_KINDS = TargetKinds[WatchKind[Any]]("watch", {
    RegistryTarget: _RegistryWatch(),
    WarehouseTable: _TableWatch(),
    StorageTarget: _StorageWatch(),
    PostgresTable: _PostgresWatch(),
})


def target_key(target: Target) -> str:
    return WATCH_KINDS(target).key(target)


class Watchlist:
    def __init__(self, workflows: Sequence[WorkflowSettings]) -> None:
        self.workflows = {workflow.name: workflow for workflow in workflows}
        self._tasks: dict[Root, Task] = {}
        self._roots_by_key: dict[str, set[Root]] = defaultdict(set)
        self._watched = Watched()
        self._roots_by_task: dict[str, set[Root]] = defaultdict(set)
        self._input_days: list[InputDays] | None = None
        self._refreshed_for: date | None = None
        self._newest_first: list[Root] | None = None
        self._oldest_first: list[Root] | None = None
        self._by_day: dict[date, list[Root]] = defaultdict(list)
        self._days_newest_first: list[date] | None = None
        self._count = Counter[str]()

    def refresh(self, today: date) -> list[Root]:
        """Add the roots that today's calendar windows bring in; return the new ones.
        Only the days since the last refresh are looked at: a window only gains days,
        so checking it every minute costs nothing until the date changes."""
        if today == self._refreshed_for:
            return []
        after, self._refreshed_for = self._refreshed_for, today
        if self._input_days is None:
            # Built once, from today's roots; their outputs are where the janitor sweeps
            # before any day with inputs is known.
            self._input_days = [InputDays(w, today) for w in self.workflows.values()
                                if w.window == "inputs"]
            for days in self._input_days:
                self._add_outputs(days.probe_tasks)
        added = [
            Root(name, day)
            for name, workflow in self.workflows.items()
            for day in workflow.partition_days(today, after=after)
            if Root(name, day) not in self._tasks
        ]
        for root in added:
            self.add(root)
        return added

    def discover(self, keys: Iterable[str]) -> list[Root]:
        """Watch the days of ``window = "inputs"`` workflows whose inputs these changed
        target keys are (the registry feed's); return the new roots."""
        added: list[Root] = []
        for days in self._input_days or ():
            for key in keys:
                for day in days.candidates(key):
                    root = Root(days.workflow.name, day)
                    if root not in self._tasks and days.reads(day, key):
                        self.add(root)
                        added.append(root)
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
            self._newest_first = self._oldest_first = self._days_newest_first = None
            self._by_day[root.day].append(root)
            self._count[root.workflow] += 1
            tasks = resolve(task).tasks.values()
            self._add_outputs(tasks)
            for each in tasks:
                self._roots_by_task[each.task_id].add(root)
            for target in _targets(tasks):
                kind = WATCH_KINDS(target)
                self._roots_by_key[kind.key(target)].add(root)
                kind.watch(target, self._watched)
        return self._tasks[root]

    def _add_outputs(self, tasks: Iterable[Task]) -> None:
        for task in tasks:
            if isinstance(task, ExternalTask):
                continue  # its outputs are someone else's: inputs to charon
            for target in outputs(task).values():
                WATCH_KINDS(target).output(target, self._watched)

    @property
    def output_prefixes(self) -> set[str]:
        """The uri_prefix of every registry output with one of its own (for the janitor)."""
        return set(self._watched.output_prefixes)

    @property
    def output_projects(self) -> set[str]:
        """The project of every warehouse output (its staging tables live there)."""
        return set(self._watched.output_projects)

    def roots_of_task(self, task_id: str) -> set[Root]:
        """The watched roots whose graphs hold that task."""
        return set(self._roots_by_task.get(task_id, ()))

    def task(self, root: Root) -> Task:
        return self._tasks[self.canonical(root)]

    @property
    def roots(self) -> list[Root]:
        """Every watched root, by workflow then oldest day first; sorted again only after
        roots were added (ten thousand of them take a tenth of a second to sort)."""
        if self._oldest_first is None:
            self._oldest_first = sorted(self._tasks)
        return self._oldest_first

    def newest_first(self) -> list[Root]:
        """Every watched root, newest day first, then by workflow (``newest_first_key``);
        sorted again only after roots were added."""
        if self._newest_first is None:
            self._newest_first = sorted(self._tasks, key=newest_first_key)
        return self._newest_first

    def days_newest_first(self) -> list[date]:
        """Every day with a watched root, newest first; sorted again only after roots
        were added."""
        if self._days_newest_first is None:
            self._days_newest_first = sorted(self._by_day, reverse=True)
        return self._days_newest_first

    def roots_on(self, day: date) -> list[Root]:
        """The watched roots of ``day``, one per workflow watching it."""
        return list(self._by_day.get(day, ()))

    def count(self, workflow: str) -> int:
        """How many roots of ``workflow`` are watched."""
        return self._count[workflow]

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
        return set(self._watched.objects)

    @property
    def datasets(self) -> dict[tuple[str, str], set[str]]:
        """(project, dataset) → the watched table specs in it."""
        return {dataset: set(specs) for dataset, specs in self._watched.tables.items()}


def newest_first_key(root: Root) -> tuple[int, str]:
    return -root.day.toordinal(), root.workflow


def _targets(tasks: Iterable[Task]) -> list[Target]:
    return [target for task in tasks for target in outputs(task).values()]
