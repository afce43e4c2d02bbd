"""The dependency graph of a task: one node per task instance, edges from requires()."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from orchestrator.errors import DependencyCycle
from orchestrator.tasks.targets import Target
from orchestrator.tasks.task import ExternalTask, Task, outputs, requirements


@dataclass(frozen=True)
class Graph:
    """Every task reachable from ``root``; ``order`` lists dependencies before dependents."""

    root: Task
    tasks: dict[str, Task]
    requires: dict[str, dict[str, Task]]
    order: tuple[str, ...]
    dependencies: dict[str, tuple[str, ...]]
    """Task id → the ids of the tasks it requires, each once."""
    dependents: dict[str, tuple[str, ...]]
    """Task id → the ids of the tasks that require it, each once."""

    @cached_property
    def external_outputs(self) -> dict[str, Target]:
        """The outputs of the external tasks that require nothing, by
        :func:`output_key`: what looking the graph's inputs up asks for. Made once: a
        day's first evaluation asks twice (its batch's lookup, then the evaluation)."""
        return {
            output_key(task_id, key): target
            for task_id in self.order if not self.requires[task_id]
            and isinstance(task := self.tasks[task_id], ExternalTask)
            for key, target in outputs(task).items()
        }


def output_key(task_id: str, key: str) -> str:
    """One output of one task of a graph, as a single key."""
    return f"{task_id}\0{key}"


def resolve(root: Task) -> Graph:
    """Walk requires() from ``root``; raise DependencyCycle on a loop.

    Depth first, with a stack of its own rather than Python's: a day that requires the
    day before it (a running total since a start date) is a chain as long as the days,
    and recursing a level a task ended in RecursionError past about 990 of them.
    """
    tasks: dict[str, Task] = {}
    requires: dict[str, dict[str, Task]] = {}
    order: list[str] = []
    path: dict[str, int] = {}
    """The tasks being walked, from the root down, by id: each one's place on the path."""
    stack: list[tuple[Task, str, Iterator[Task]]] = []
    _enter(root, tasks, requires, path, stack)
    while stack:
        task, task_id, deps = stack[-1]
        if (dep := next(deps, None)) is not None:
            _enter(dep, tasks, requires, path, stack)
            continue
        stack.pop()
        del path[task_id]
        tasks[task_id] = task
        order.append(task_id)
    dependencies = {task_id: tuple(dict.fromkeys(dep.task_id for dep in requires[task_id].values()))
                    for task_id in order}
    dependents: dict[str, list[str]] = {task_id: [] for task_id in order}
    for task_id in order:
        for dep_id in dependencies[task_id]:
            dependents[dep_id].append(task_id)
    return Graph(root, tasks, requires, tuple(order), dependencies,
                 {task_id: tuple(ids) for task_id, ids in dependents.items()})


def _enter(task: Task, tasks: dict[str, Task], requires: dict[str, dict[str, Task]],
           path: dict[str, int], stack: list[tuple[Task, str, Iterator[Task]]]) -> None:
    """Begin walking ``task`` unless it was walked already. A function of the module,
    not a closure: a closure of resolve() would be held by the graph's dicts through
    its cell, a cycle left for the collector."""
    task_id = task.task_id
    if task_id in tasks:
        return
    if task_id in path:
        cycle = " -> ".join([*list(path)[path[task_id]:], task_id])
        raise DependencyCycle(f"dependency cycle: {cycle}")
    deps = requirements(task)
    requires[task_id] = deps
    path[task_id] = len(path)
    stack.append((task, task_id, iter(deps.values())))
