"""Where an evaluation stands in its graph: each node's outcome once settled, and the
nodes ready to be evaluated (every dependency settled)."""

from __future__ import annotations

from collections import deque

from orchestrator.core.graph import Graph
from orchestrator.core.report import Outcome, Status


class Nodes:
    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        self.outcomes: dict[str, Outcome] = {}
        self._pending = {  # task id -> how many of its dependencies have not settled
            task_id: len(graph.dependencies[task_id]) for task_id in graph.order
        }
        self.ready = deque(task_id for task_id, count in self._pending.items() if not count)

    @property
    def settled(self) -> bool:
        """Whether every node has its outcome."""
        return len(self.outcomes) == len(self._graph.order)

    def settle(self, task_id: str, outcome: Outcome) -> None:
        """Record a node's outcome; a dependent it leaves with every dependency settled
        is ready."""
        self.outcomes[task_id] = outcome
        for dependent in self._graph.dependents[task_id]:
            self._pending[dependent] -= 1
            if not self._pending[dependent]:
                self.ready.append(dependent)

    def next_ready(self) -> str | None:
        """The next ready node to evaluate, None when none is ready. Those before it that
        a dependency blocks (it did not finish OK) are settled on the way, BLOCKED, in
        turn: blocking asks nothing of anyone, so it takes no evaluator (a day whose
        input is missing is blocked where its input's check ends, not in a task)."""
        while self.ready:
            task_id = self.ready.popleft()
            if (blocked := blocked_by(self._graph, task_id, self.outcomes)) is None:
                return task_id
            self.settle(task_id, blocked)
        return None


def blocked_by(graph: Graph, task_id: str, outcomes: dict[str, Outcome]) -> Outcome | None:
    """The node's BLOCKED outcome if a dependency of it did not finish OK; None if all did."""
    unfinished = [dep_id for dep_id in graph.dependencies[task_id]
                  if not outcomes[dep_id].status.ok]
    if not unfinished:
        return None
    return Outcome(task_id, Status.BLOCKED, "waiting for " + ", ".join(unfinished),
                   blocked_by=tuple(unfinished))
