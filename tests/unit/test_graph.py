import gc

import pytest

from orchestrator.core.graph import resolve
from orchestrator.core.nodes import Nodes
from orchestrator.core.report import Outcome, Status
from orchestrator.errors import DependencyCycle
from orchestrator.tasks.params import IntParameter
from orchestrator.tasks.task import Task


class Leaf(Task):
    n = IntParameter()


class Middle(Task):
    n = IntParameter()

    def requires(self) -> list[Task]:
        return [Leaf(n=self.n), Leaf(n=self.n + 1)]


class Root(Task):
    def requires(self) -> dict[str, Task]:
        return {"a": Middle(n=1), "b": Middle(n=2)}


def test_graph_has_one_node_per_task_and_dependencies_first() -> None:
    graph = resolve(Root())
    assert set(graph.tasks) == {
        "Root()", "Middle(n=1)", "Middle(n=2)", "Leaf(n=1)", "Leaf(n=2)", "Leaf(n=3)"
    }
    position = {task_id: index for index, task_id in enumerate(graph.order)}
    for task_id, deps in graph.requires.items():
        assert all(position[dep.task_id] < position[task_id] for dep in deps.values())
    assert sorted(graph.dependents["Leaf(n=2)"]) == ["Middle(n=1)", "Middle(n=2)"]
    assert graph.dependents["Root()"] == ()


class Ping(Task):
    def requires(self) -> Task:
        return Pong()


class Pong(Task):
    def requires(self) -> Task:
        return Ping()


def test_cycles_are_reported_with_their_path() -> None:
    with pytest.raises(DependencyCycle, match=r"Ping\(\) -> Pong\(\) -> Ping\(\)"):
        resolve(Ping())


def test_a_resolved_graph_leaves_nothing_for_the_cyclic_collector() -> None:
    """A daemon resolves a graph per watched day: what that leaves in reference cycles
    waits for the collector's full passes, each of which blocks the event loop."""
    gc.collect()
    gc.disable()
    try:
        for n in range(50):
            resolve(Middle(n=n))
        assert gc.collect() == 0
    finally:
        gc.enable()


class Twice(Task):
    """Requires one task under two keys, as a task reading two outputs of one job may."""

    def requires(self) -> dict[str, Task]:
        return {"first": Leaf(n=1), "again": Leaf(n=1)}


def test_a_dependency_required_twice_is_one_dependency() -> None:
    graph = resolve(Twice())
    assert graph.dependencies["Twice()"] == ("Leaf(n=1)",)
    assert graph.dependents["Leaf(n=1)"] == ("Twice()",)
    nodes = Nodes(graph)
    assert nodes.next_ready() == "Leaf(n=1)"
    nodes.settle("Leaf(n=1)", Outcome("Leaf(n=1)", Status.FAILED, "it failed"))
    assert nodes.next_ready() is None
    blocked = nodes.outcomes["Twice()"]
    assert (blocked.status, blocked.detail, blocked.blocked_by) == (
        Status.BLOCKED, "waiting for Leaf(n=1)", ("Leaf(n=1)",))


class Chain(Task):
    """A running total: each day requires the day before, back to day 0."""

    n = IntParameter()

    def requires(self) -> list[Task]:
        return [Chain(n=self.n - 1)] if self.n else []


def test_a_chain_of_ten_thousand_days_resolves_each_after_the_day_before() -> None:
    """Python's own stack ran out about 990 days down (RecursionError)."""
    graph = resolve(Chain(n=10_000))
    assert graph.order == tuple(f"Chain(n={n})" for n in range(10_001))
    assert graph.dependencies["Chain(n=10000)"] == ("Chain(n=9999)",)


class Loop(Task):
    """Down a chain, the fifth link requires the second again."""

    n = IntParameter()

    def requires(self) -> Task:
        return Loop(n=2 if self.n == 5 else self.n + 1)


def test_a_cycle_down_a_chain_is_reported_from_where_it_closes() -> None:
    with pytest.raises(DependencyCycle, match=r"cycle: Loop\(n=2\) -> Loop\(n=3\) -> "
                                              r"Loop\(n=4\) -> Loop\(n=5\) -> Loop\(n=2\)$"):
        resolve(Loop(n=0))
