"""The roots waiting for one of the daemon's evaluators, in the order they were
scheduled, and the evaluators' loop; their first evaluations, begun together in the
start-up sweep.

A day's first evaluation resolves its graph, indexes it (from then on the sensors' facts
about it reach it) and looks its external inputs up. When an evaluator takes a day
whose first evaluation this is and more such days are queued behind it, it does the
first two for up to BATCH of them and looks all their external inputs up in one
batched call: a sweep of 100,000 days makes 391 registry calls, not 100,000. The days
are indexed before that lookup, so a fact about one of them from then on marks it
(:meth:`ReadyRoots.stale`), and its evaluation looks its inputs up afresh.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from itertools import islice

import anyio
import anyio.lowlevel

from orchestrator.core.engine import Engine
from orchestrator.core.graph import Graph
from orchestrator.core.lookups import Externals
from orchestrator.daemon.lifecycle import Lifecycle
from orchestrator.daemon.watch import Watchlist
from orchestrator.tasks.task import Task
from sensors.facts import Root

BATCH = 256
"""Days whose external inputs one lookup asks for; each batch's graphs are held until
the days' evaluations take them."""
INDEX_CHECKPOINT = 32
"""Graphs resolved and indexed between two checkpoints: a batch never blocks the loop."""


@dataclass
class Begun:
    """What a day's evaluation begins with."""

    task: Task
    graph: Graph | None = None
    """Its graph when this is its first evaluation (the engine resolves it otherwise)."""
    externals: Externals | None = None
    """Its external inputs, looked up with other days' (the engine looks them up otherwise)."""


@dataclass
class _Batched:
    done: anyio.Event
    """Its batch's, set when the batch is ready (one event a batch, not a day)."""
    begun: Begun | None = None
    """None while its batch is not ready, or if its graph could not be built."""
    stale: bool = False


class ReadyRoots:
    """A queue without a bound of its own: the daemon puts a root in at most once at a
    time (while it is queued or evaluated it is only marked to be evaluated again), so
    it never holds more than the watched roots."""

    def __init__(self, watch: Watchlist, engine: Engine) -> None:
        self._roots: deque[Root] = deque()
        self._more = anyio.Event()
        self._watch = watch
        self._engine = engine
        self._batched: dict[Root, _Batched] = {}

    def put(self, root: Root) -> None:
        self._roots.append(root)
        self._more.set()

    async def get(self) -> Root:
        while not self._roots:
            if self._more.is_set():
                self._more = anyio.Event()
            await self._more.wait()
        return self._roots.popleft()

    async def evaluator(self, life: Lifecycle, evaluate: Callable[[Root], Awaitable[None]],
                        ) -> None:
        """One of the daemon's evaluators: evaluate the roots queued, one after another,
        until the daemon stops; only its wait for the next root is cut short by a stop,
        never an evaluation."""
        while not life.stopping:
            with life.sensing() as waiting:
                root = await self.get()
            if waiting.cancel_called or life.stopping:
                return
            await life.working_task(partial(self._evaluate_from, life, evaluate, root))

    async def _evaluate_from(self, life: Lifecycle, evaluate: Callable[[Root], Awaitable[None]],
                             root: Root | None) -> None:
        """Evaluate ``root``, then each root queued meanwhile, until none is or a stop
        begins: a run of them is one working scope (a sweep of 100,000 days was two
        cancel scopes a day, a sixth of its time)."""
        while root is not None:
            await evaluate(root)
            root = None if life.stopping or not self._roots else self._roots.popleft()

    def stale(self, root: Root) -> None:
        """Something ``root`` reads may have changed: a lookup made for it before now
        must not be used."""
        if (batched := self._batched.get(root)) is not None:
            batched.stale = True

    async def begin(self, root: Root) -> Begun:
        """The root's task; on its first evaluation its graph too, resolved and indexed,
        and, when more first evaluations are queued behind it, its external inputs
        looked up with theirs. Raises what building its graph raises."""
        batched = self._batched.pop(root, None)
        if batched is not None:
            await batched.done.wait()
            if batched.begun is not None:
                return batched.begun if not batched.stale else Begun(batched.begun.task,
                                                                     batched.begun.graph)
        task, graph = self._watch.index(root)
        if graph is None:
            return Begun(task)
        behind = [queued for queued in islice(self._roots, BATCH - 1)
                  if queued not in self._batched and not self._watch.indexed(queued)]
        if not behind:
            return Begun(task, graph)
        return Begun(task, graph, await self._begin_together(graph, behind))

    async def _begin_together(self, graph: Graph, roots: list[Root]) -> Externals:
        """Index ``roots`` and look their external inputs up with ``graph``'s, in one call."""
        done = anyio.Event()
        batch = {root: _Batched(done) for root in roots}
        self._batched.update(batch)
        begun: list[tuple[_Batched, Task, Graph]] = []
        try:
            for index, (root, batched) in enumerate(batch.items()):
                if index and index % INDEX_CHECKPOINT == 0:
                    await anyio.lowlevel.checkpoint()
                try:
                    task, indexed = self._watch.index(root)
                except Exception:  # noqa: S112  # its own evaluation tries again and says why
                    continue
                if indexed is not None:
                    begun.append((batched, task, indexed))
            externals = await self._engine.lookup_externals(
                [graph, *(indexed for _, _, indexed in begun)])
            for batched, task, indexed in begun:
                batched.begun = Begun(task, indexed, externals)
            return externals
        finally:
            done.set()
