"""The days whose runs found no place free, and what an evaluation of a day tells the
daemon as it goes (its launches, its readiness, a place it did not find)."""

from __future__ import annotations

import heapq
import itertools
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import anyio
import anyio.lowlevel

from orchestrator.daemon.status import RootState
from orchestrator.tasks.task import Task
from sensors.facts import Root

Turn = tuple[int, Root]
"""A waiting day's place in line: the number of its arrival, then the day."""


@dataclass(eq=False, slots=True)
class _Parked:
    limiter: anyio.CapacityLimiter | None
    turn: anyio.Event = field(default_factory=anyio.Event)


class AtLimit:
    """The days whose runs found no place free, under their workflow's limit or the
    engine's: evaluated again as places come free, oldest first. Their evaluations end
    meanwhile, so a backlog (a hundred days ready, two runs at a time) holds none of the
    evaluators every workflow shares. The engine's other runs (a backfill's) that find
    no place wait in the same line (:meth:`park`): it is the engine's ``PlaceLine``.

    A day is here only while its last evaluation ended without a place (:meth:`leave` as
    each begins). Places are offered when a run gives one back and when an evaluation
    ends, so a place a woken day did not take (another worker ran it meanwhile) goes to
    the next, rather than wait for a run that will never give one back. A day evaluated
    again (woken, or for a new input) keeps its turn should it find no place again:
    days that keep coming never push an older one back for good."""

    def __init__(self, limiters: Mapping[str, anyio.CapacityLimiter],
                 engine_places: Callable[[], int], schedule: Callable[[Root], None]) -> None:
        """``limiters``: each workflow's limit of runs at once; ``engine_places``: the
        places free under the engine's limit now."""
        self._limiters = limiters
        self._engine_places = engine_places
        self._schedule = schedule
        self._waiting: dict[str, dict[Root, int]] = {workflow: {} for workflow in limiters}
        """Each workflow's waiting days, with their arrival numbers."""
        self._turns: dict[str, list[Turn]] = {workflow: [] for workflow in limiters}
        """Each workflow's waiting days in line (a heap; days that left are dropped as
        they reach its head)."""
        self._kept: dict[Root, int] = {}
        """The arrival numbers of the days being evaluated again, should they wait again."""
        self._parked: dict[_Parked, int] = {}
        """The runs waiting for their turn at a place (:meth:`park`), oldest first, with
        their arrival numbers."""
        self._arrivals = itertools.count()
        self._count = 0

    def __contains__(self, root: Root) -> bool:
        return root in self._waiting[root.workflow]

    def wait(self, root: Root) -> None:
        waiting, turns = self._waiting[root.workflow], self._turns[root.workflow]
        arrival = self._kept.pop(root, None)
        if arrival is None:
            arrival = next(self._arrivals)
        self._count += root not in waiting
        waiting[root] = arrival
        heapq.heappush(turns, (arrival, root))
        if len(turns) > 2 * len(waiting) + 64:  # days that left, still in line
            turns[:] = [(number, day) for day, number in waiting.items()]
            heapq.heapify(turns)

    def leave(self, root: Root) -> None:
        """``root``'s evaluation begins: it waits no more, but keeps its turn."""
        arrival = self._waiting[root.workflow].pop(root, None)
        if arrival is not None:
            self._count -= 1
            self._kept[root] = arrival

    def evaluated(self, root: Root) -> None:
        """``root``'s evaluation ended: unless it waits again its turn is over, and the
        places free (one it woke for and did not take, maybe) are offered."""
        if root not in self._waiting[root.workflow]:
            self._kept.pop(root, None)
        self.offer()

    def offer(self) -> None:
        """As many of those waiting as there are places free now have their turn, oldest
        first, each within its own limit and all within the engine's: a day is
        evaluated again (should another evaluation take the place first, it waits
        again, keeping its turn), a parked run goes on to take its place."""
        if not self._count:
            return  # every evaluation ends here: most find nobody waiting
        free = self._engine_places()
        granted: Counter[int] = Counter()

        def room(limiter: anyio.CapacityLimiter | None) -> bool:
            return limiter is None or limiter.available_tokens > granted[id(limiter)]

        while free > 0:
            day = min(((head, workflow) for workflow, waiting in self._waiting.items()
                       if waiting and room(self._limiters[workflow])
                       and (head := self._head(workflow)) is not None), default=None)
            run = next(((arrival, parked) for parked, arrival in self._parked.items()
                        if room(parked.limiter)), None)
            if run is not None and (day is None or run[0] < day[0][0]):
                parked = run[1]
                del self._parked[parked]
                parked.turn.set()
                limiter = parked.limiter
            elif day is not None:
                (arrival, root), workflow = day
                heapq.heappop(self._turns[workflow])
                del self._waiting[workflow][root]
                self._kept[root] = arrival
                self._schedule(root)
                limiter = self._limiters[workflow]
            else:
                return
            self._count -= 1
            granted[id(limiter)] += 1
            free -= 1

    async def park(self, limiter: anyio.CapacityLimiter | None) -> None:
        """Return at the caller's turn at a place, within ``limiter`` and the engine's: a
        run the daemon's days did not start (a backfill's) waits in line with them,
        rather than take each place given back ahead of days that waited longer."""
        parked = _Parked(limiter)
        self._parked[parked] = next(self._arrivals)
        self._count += 1
        self.offer()  # a place may have come free since the caller found none
        try:
            await parked.turn.wait()
            # Cancelled as its turn came, it must say so now: the caller takes its place
            # next, and a cancelled caller would take none, and pass the turn to no one.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            if parked in self._parked:
                del self._parked[parked]
                self._count -= 1
            else:
                self.offer()  # its turn came as it was cancelled: the next one's now
            raise

    def _head(self, workflow: str) -> Turn | None:
        turns, waiting = self._turns[workflow], self._waiting[workflow]
        while turns and waiting.get(turns[0][1]) != turns[0][0]:
            heapq.heappop(turns)
        return turns[0] if turns else None


@dataclass(slots=True)
class DayHooks:
    """What one evaluation of a day tells the daemon (``core.policy.Hooks``)."""

    root: Root
    root_task_id: str
    state: RootState
    received: float | None
    """When the trigger that asked for the evaluation reached the daemon."""
    count_launch: Callable[[str, float | None, Task], None]
    """Counts and times a launch: the workflow, ``received``, the task."""
    at_limit: AtLimit

    def launched(self, task: Task) -> None:
        self.count_launch(self.root.workflow, self.received, task)

    def ready(self, task: Task) -> None:
        if task.task_id == self.root_task_id:
            self.state.ready = True

    def no_place(self, task: Task) -> None:
        self.at_limit.wait(self.root)
