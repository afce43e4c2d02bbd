"""Days asked of the daemon — a webhook's run request, the API's trigger — are kept in
the state store until an evaluation of them ends, not only in the daemon's memory: a
daemon killed after answering 202 and before evaluating would otherwise lose a request
its sender will never repeat (a day outside the window is evaluated for nothing else).

The replica that took a request serves it. Another takes it up once that one is gone
from the live replicas and the day is its own to evaluate; a replica restarted under
the same ``daemon.replica_id`` takes its own back at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import anyio

from orchestrator.daemon.membership import Membership
from orchestrator.daemon.polling import PollSchedule
from orchestrator.errors import CharonError
from orchestrator.log import get_logger
from orchestrator.model import Asked, Rerun, new_id
from orchestrator.stores.state.base import StateStore
from sensors.facts import Root


class Asking:
    def __init__(self, state: StateStore, membership: Membership,
                 backoff: PollSchedule) -> None:
        self._state = state
        self._membership = membership
        self._backoff = backoff
        self._pending: dict[Root, set[str]] = {}
        """The requests each root's next evaluation serves (only roots that have any)."""
        self._log = get_logger("charon.daemon.asking")

    def new(self, root: Root, rerun: Rerun | None = None) -> Asked:
        """A request for ``root`` (to re-run ``rerun``), taken by this replica (not
        recorded yet)."""
        return Asked(new_id(), root.workflow, root.day, self._membership.replica, rerun)

    def attach(self, root: Root, asked_ids: Iterable[str]) -> None:
        """``root``'s next evaluation serves these requests."""
        if asked_ids:
            self._pending.setdefault(root, set()).update(asked_ids)

    def take(self, root: Root) -> set[str]:
        """The requests an evaluation of ``root`` starting now serves."""
        return self._pending.pop(root, set())

    async def settle(self, root: Root, serving: set[str], *, evaluated: bool) -> None:
        """Forget the requests an evaluation served; one that failed (or whose requests
        could not be forgotten) leaves them to the root's next evaluation."""
        if not serving:
            return
        if evaluated:
            try:
                await self._state.served(sorted(serving))
            except CharonError as exc:
                self._log.warning("served requests not recorded; kept for the next"
                                  " evaluation", root=str(root), error=str(exc))
            else:
                return
        self.attach(root, serving)

    async def take_up(self, watched: Callable[[str], bool],
                      schedule: Callable[[Asked], None]) -> None:
        """Schedule the kept requests that are this replica's to serve: its own, and
        those of replicas no longer live for the days it owns. Retried with backoff
        while the state store cannot be read."""
        failures = 0
        while True:
            try:
                kept = await self._state.asked()
                break
            except CharonError as exc:
                failures += 1
                delay = self._backoff.next_delay(failures)
                self._log.warning("kept requests not read; trying again", error=str(exc),
                                  retry_in_seconds=round(delay, 3))
                await anyio.sleep(delay)
        membership = self._membership
        for asked in kept:
            root = Root(asked.workflow, asked.day)
            if not watched(asked.workflow):
                continue
            mine = asked.replica == membership.replica
            orphaned = asked.replica not in membership.members and membership.owns(root)
            if mine or orphaned:
                self._log.info("request taken up", workflow=asked.workflow,
                               day=asked.day.isoformat(), asked_by=asked.replica)
                schedule(asked)
