"""Which watched days this replica evaluates, when daemon replicas share a state store.

Every replica heartbeats into the state store and learns the live replicas from it;
each day belongs to one of them by rendezvous hashing, which every replica computes
alike from the same list. A replica's sensors see every change, but it evaluates
only the days it owns, so adding a replica adds capacity. A replica that dies or
stalls drops out of the list once its heartbeat runs out; the others then evaluate
the days it owned. Ownership spreads work and nothing else: runs are still claimed
under leases and fenced, so two replicas that briefly both think a day theirs (a
paused one waking up, a store that was unreachable) evaluate it twice, harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from hashlib import blake2b

import anyio

from orchestrator.errors import CharonError
from orchestrator.log import get_logger
from orchestrator.stores.state.base import StateStore
from sensors.facts import Root

HEARTBEATS_PER_TTL = 3
"""A live replica's heartbeat is renewed this often within its time to live, so one
slow store round trip does not drop it."""


def owner(members: tuple[str, ...], root: Root) -> str:
    """The replica among ``members`` that evaluates ``root``: the highest score of a
    hash over both, so a replica joining or leaving moves only the days it takes or
    gives up."""
    if len(members) == 1:
        return members[0]
    day = f"{root.workflow}\0{root.day.isoformat()}".encode()
    return max(members, key=lambda member: blake2b(
        member.encode() + b"\0" + day, digest_size=8).digest())


class Membership:
    """This replica's view of the live replicas, kept fresh by :meth:`keep`.

    ``ttl`` is how long a heartbeat keeps a replica in the list: a dead replica's days
    are taken over within ``ttl`` and one heartbeat interval. Until a first heartbeat
    succeeds, the replica owns every day, as if alone: evaluating too much is safe.
    """

    def __init__(self, state: StateStore, replica: str, ttl: timedelta) -> None:
        self.replica = replica
        self.members: tuple[str, ...] = (replica,)
        self._state = state
        self._ttl = ttl
        self._log = get_logger("charon.daemon.membership", replica=replica)

    @property
    def interval_seconds(self) -> float:
        return self._ttl.total_seconds() / HEARTBEATS_PER_TTL

    def owns(self, root: Root) -> bool:
        return owner(self.members, root) == self.replica

    def owner(self, root: Root) -> str:
        return owner(self.members, root)

    async def beat(self) -> tuple[str, ...] | None:
        """One heartbeat; the replicas as they were before it when it changed them,
        else None. A store that cannot answer leaves the list as it was."""
        try:
            members = await self._state.heartbeat(self.replica, self._ttl)
        except CharonError as exc:
            self._log.warning("heartbeat failed; sharing days as before", error=str(exc))
            return None
        # Its own row was written in the same transaction; a store that lost it
        # still must not leave this replica owning nothing.
        members = tuple(sorted({*members, self.replica}))
        if members == self.members:
            return None
        before, self.members = self.members, members
        self._log.info("replicas changed", replicas=list(members))
        return before

    async def keep(self, on_change: Callable[[tuple[str, ...]], None]) -> None:
        """Heartbeat until cancelled; ``on_change`` gets the replicas as they were
        before each change (the list now is :attr:`members`)."""
        while True:
            await anyio.sleep(self.interval_seconds)
            if (before := await self.beat()) is not None:
                on_change(before)

    async def leave(self) -> None:
        """Drop out of the list now, so the others take this replica's days at their
        next heartbeat rather than when its own would have run out."""
        try:
            await self._state.leave(self.replica)
        except CharonError as exc:
            self._log.warning("could not leave the replicas; they find out in time",
                              error=str(exc))
