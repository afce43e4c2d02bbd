"""What the daemon watches: every (workflow, day) root and the targets its graph touches.

The index maps a target key to the roots whose graphs contain it, so a sensor fact
("this partition has a new revision") turns into exactly the evaluations it affects.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar

from orchestrator.core.graph import Graph, resolve
from orchestrator.daemon.input_days import InputDays
from orchestrator.tasks.roots import RootMaker, root_maker
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
    """The watched roots. A root's graph is resolved, and its tasks and targets indexed,
    when it is first evaluated (:meth:`index`), not as the window is read: a window of
    100,000 days costs start-up a root each, not a graph each. Until then the root is
    queued for that evaluation, which reads its inputs as they are then, so a fact about
    it that arrives first is not missed."""

    def __init__(self, workflows: Sequence[WorkflowSettings]) -> None:
        self.workflows = {workflow.name: workflow for workflow in workflows}
        self._ids: dict[Root, str | None] = {}
        """Each watched root's task id, None until its graph is indexed."""
        self._labels: dict[Root, str] = {}
        """A root's partition label, where it is not its day (a period's interval)."""
        self._unindexed = 0
        """Roots whose first evaluation has not begun yet."""
        self._unbuilt: set[Root] = set()
        """Roots whose graph could not be built when tried (tried again each evaluation)."""
        self._roots_by_key: dict[str, Linked] = {}
        self._watched = Watched()
        self._roots_by_task: dict[str, Linked] = {}
        self._input_days: list[InputDays] | None = None
        self._refreshed_for: date | None = None
        self._oldest_first: list[Root] = []
        self._newest_first: list[Root] = []
        self._days_newest_first: list[date] = []
        self._unsorted: list[Root] = []
        """Roots added since the lists above were last brought up to date."""
        self._count = Counter[str]()
        self._makers: dict[str, RootMaker] = {}
        """Each workflow's, made the first time one of its tasks is built."""

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
        added = []
        for name, workflow in self.workflows.items():
            for day in workflow.partition_days(today, after=after):
                if (root := Root(name, day)) not in self._ids:
                    self._watch(root)
                    added.append(root)
        self._sort()  # start-up's 100,000 days are sorted before the daemon listens
        return added

    def discover(self, keys: Iterable[str]) -> list[Root]:
        """Watch the days of ``window = "inputs"`` workflows whose inputs these changed
        target keys are (the registry feed's); return the new roots."""
        added: list[Root] = []
        for days in self._input_days or ():
            for key in keys:
                for day in days.candidates(key):
                    root = Root(days.workflow.name, day)
                    if root not in self._ids and days.reads(day, key):
                        self._watch(root)
                        added.append(root)
        return added

    def canonical(self, root: Root) -> Root:
        """The root of the period containing ``root.day`` (its first day)."""
        return Root(root.workflow, self.workflows[root.workflow].partition_day(root.day))

    def add(self, root: Root) -> Root:
        """Watch one root (also one outside its window, when a run is requested); its
        graph is indexed by its first evaluation. Returns it canonical."""
        root = self.canonical(root)
        if root not in self._ids:
            self._watch(root)
        return root

    def _watch(self, root: Root) -> None:
        self._ids[root] = None
        self._unindexed += 1
        self._unsorted.append(root)
        self._count[root.workflow] += 1

    def _sort(self) -> None:
        """Bring the sorted lists up to date: the few roots added since (a new day, a
        day asked for) go in their places; many sort the lists again (100,000 roots
        take a few tenths of a second, which a page asking for them would wait)."""
        if len(self._unsorted) > RESORT_AFTER:
            self._oldest_first = sorted(self._ids)
            self._newest_first = sorted(self._ids, key=newest_first_key)
            self._days_newest_first = sorted({root.day for root in self._ids}, reverse=True)
        elif self._unsorted:
            # New lists, not changed in place: a page may be walking the old ones.
            oldest, newest = list(self._oldest_first), list(self._newest_first)
            days = list(self._days_newest_first)
            for root in self._unsorted:
                insort(oldest, root)
                insort(newest, root, key=newest_first_key)
                at = bisect_left(days, -root.day.toordinal(), key=_newest_day_first)
                if at == len(days) or days[at] != root.day:
                    days.insert(at, root.day)
            self._oldest_first, self._newest_first, self._days_newest_first = (
                oldest, newest, days)
        self._unsorted.clear()

    def index(self, root: Root) -> tuple[Task, Graph | None]:
        """The root's task; the first time, with its graph, resolved and its tasks and
        targets indexed, so that facts about them reach it from then on."""
        if self._ids.get(root, "") is not None:
            return self._root_task(root), None
        try:
            task = self._root_task(root)
            graph = resolve(task)
        except Exception:
            # Tried: until it can be built, it names nothing, and must not keep every key
            # watched (nor every abandoned run adopted) for ever.
            if root not in self._unbuilt:
                self._unbuilt.add(root)
                self._unindexed -= 1
            raise
        for each in graph.tasks.values():
            _link(self._roots_by_task, each.task_id, root)
            produced = not isinstance(each, ExternalTask)  # else inputs to charon
            for target in outputs(each).values():
                kind = WATCH_KINDS(target)
                _link(self._roots_by_key, kind.key(target), root)
                kind.watch(target, self._watched)
                if produced:
                    kind.output(target, self._watched)
        self._ids[root] = task.task_id
        if task.partition_label != root.day.isoformat():
            self._labels[root] = task.partition_label
        if root in self._unbuilt:
            self._unbuilt.discard(root)
        else:
            self._unindexed -= 1
        return task, graph

    def indexed(self, root: Root) -> bool:
        """Whether the root's graph is indexed (its first evaluation has begun)."""
        return self._ids.get(root) is not None

    @property
    def indexing(self) -> bool:
        """Whether some watched root's graph is not indexed yet, its first evaluation
        not begun: the indexes may not name everything watched."""
        return self._unindexed > 0

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
        """The watched roots whose (indexed) graphs hold that task."""
        return _linked(self._roots_by_task, task_id)

    def task(self, root: Root) -> Task:
        """The root's task, built again: tasks are not kept, only their ids."""
        return self._root_task(self.canonical(root))

    def _root_task(self, root: Root) -> Task:
        maker = self._makers.get(root.workflow)
        if maker is None:
            maker = self._makers[root.workflow] = root_maker(self.workflows[root.workflow])
        return maker(root.day)

    def task_id(self, root: Root) -> str:
        return self._ids.get(root) or self.task(root).task_id

    def partition_label(self, root: Root) -> str:
        if self._ids.get(root) is None:
            return self.task(root).partition_label
        return self._labels.get(root) or root.day.isoformat()

    @property
    def roots(self) -> list[Root]:
        """Every watched root, by workflow then oldest day first."""
        self._sort()
        return self._oldest_first

    def of_workflow(self, workflow: str) -> list[Root]:
        """The workflow's watched roots, oldest day first: a slice of :attr:`roots`,
        found by bisection, so a page about one day never walks 100,000."""
        roots = self.roots
        return roots[bisect_left(roots, Root(workflow, date.min)):
                     bisect_right(roots, Root(workflow, date.max))]

    def newest_first(self) -> list[Root]:
        """Every watched root, newest day first, then by workflow (``newest_first_key``)."""
        self._sort()
        return self._newest_first

    def days_newest_first(self) -> list[date]:
        """Every day with a watched root, newest first."""
        self._sort()
        return self._days_newest_first

    def roots_on(self, day: date) -> list[Root]:
        """The watched roots of ``day``, one per workflow watching it."""
        return [root for name in self.workflows if (root := Root(name, day)) in self._ids]

    def count(self, workflow: str) -> int:
        """How many roots of ``workflow`` are watched."""
        return self._count[workflow]

    def roots_for(self, keys: Iterable[str]) -> set[Root]:
        found: set[Root] = set()
        for key in keys:
            found |= _linked(self._roots_by_key, key)
        return found

    def watches(self, key: str) -> bool:
        """Whether a watched root reads or writes the target: yes while some root is not
        indexed yet (the fact then reaches it through its first evaluation)."""
        return key in self._roots_by_key or self.indexing

    @property
    def objects(self) -> set[StorageTarget]:
        """The watched storage objects."""
        return set(self._watched.objects)

    @property
    def datasets(self) -> dict[tuple[str, str], set[str]]:
        """(project, dataset) → the watched table specs in it."""
        return {dataset: set(specs) for dataset, specs in self._watched.tables.items()}


RESORT_AFTER = 1000
"""More roots added than this sort the lists again rather than go in one by one."""
Linked = Root | set[Root]
"""The roots an index entry names: most keys and tasks belong to one root's graph, and a
root alone costs a set less (about 200 bytes, 100,000 times over)."""


def _link(index: dict[str, Linked], key: str, root: Root) -> None:
    linked = index.get(key)
    if linked is None or linked == root:
        index[key] = root
    elif isinstance(linked, Root):
        index[key] = {linked, root}
    else:
        linked.add(root)


def _linked(index: dict[str, Linked], key: str) -> set[Root]:
    linked = index.get(key)
    if linked is None:
        return set()
    return {linked} if isinstance(linked, Root) else set(linked)


def newest_first_key(root: Root) -> tuple[int, str]:
    return -root.day.toordinal(), root.workflow


def _newest_day_first(day: date) -> int:
    return -day.toordinal()
