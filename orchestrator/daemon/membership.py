"""Which watched days this replica evaluates, when daemon replicas share a state store.

Every replica heartbeats into the state store, with what it watches, and learns from it
the live replicas watching each workflow alike (the same name and definition); each
day belongs to one of those by rendezvous hashing, which every replica computes alike
from the same list. A replica's sensors see every change, but it evaluates only the
days it owns, so adding a replica adds capacity. A replica that dies or stalls drops
out once its heartbeat runs out, or at once when its process is provably gone (killed on
this machine: :mod:`orchestrator.owners`); the others then evaluate the days it owned. A workflow
only one replica watches, or defines as it does (in the middle of a rolling change of
the configuration, say), is that replica's alone. Ownership spreads work and nothing
else: runs are still claimed under leases and fenced, so two replicas that briefly
both think a day theirs (a paused one waking up, a store that was unreachable)
evaluate it twice, harmlessly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from hashlib import blake2b

import anyio
import anyio.lowlevel

from orchestrator import owners
from orchestrator.errors import CharonError
from orchestrator.log import get_logger
from orchestrator.stores.state.base import StateStore
from orchestrator.workflows import WorkflowSettings
from sensors.facts import Root

HEARTBEATS_PER_TTL = 3
"""A live replica's heartbeat is renewed this often within its time to live, so one
slow store round trip does not drop it."""
TAKE_OVER_CHECKPOINT = 1000
"""Roots looked at between two checkpoints: 100,000 hashes are tenths of a second."""

Shares = Mapping[str, tuple[str, ...]]
"""The live replicas watching each workflow alike (by :func:`watched`), sorted."""


def watched(workflow: WorkflowSettings) -> str:
    """A workflow's name and a digest of its whole definition: replicas share its days
    only when they define it alike."""
    digest = blake2b(repr(workflow).encode(), digest_size=6).hexdigest()
    return f"{workflow.name}:{digest}"


def rendezvous(members: tuple[str, ...], root: Root) -> str:
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

    def __init__(self, state: StateStore, replica: str, ttl: timedelta,
                 workflows: Sequence[WorkflowSettings]) -> None:
        self.replica = replica
        self._watched = {workflow.name: watched(workflow) for workflow in workflows}
        self.shares: Shares = {name: (replica,) for name in self._watched.values()}
        self.live: frozenset[str] = frozenset({replica})
        """Every live replica, whatever it watches, as the last heartbeat found them."""
        self.heard = False
        """Whether a heartbeat has answered yet: until then, :attr:`live` is a guess."""
        self._state = state
        self._ttl = ttl
        self._log = get_logger("charon.daemon.membership", replica=replica)

    @property
    def interval_seconds(self) -> float:
        return self._ttl.total_seconds() / HEARTBEATS_PER_TTL

    @property
    def members(self) -> tuple[str, ...]:
        """Every live replica sharing a workflow with this one, this one included."""
        return tuple(sorted({replica for share in self.shares.values() for replica in share}))

    def owner(self, root: Root, shares: Shares | None = None) -> str:
        """The replica that evaluates ``root``, by ``shares`` (by default, as now)."""
        found = (self.shares if shares is None else shares).get(
            self._watched.get(root.workflow, ""), (self.replica,))
        return rendezvous(found, root)

    def owns(self, root: Root) -> bool:
        return self.owner(root) == self.replica

    async def beat(self) -> Shares | None:
        """One heartbeat; the shares as they were before it when it changed them, else
        None. A store that cannot answer leaves them as they were."""
        try:
            # Bounded: past its ttl the others count this replica gone whatever it sends.
            with anyio.fail_after(self._ttl.total_seconds()):
                rows = await self._without_the_dead(await self._state.heartbeat(
                    self.replica, sorted(self._watched.values()), self._ttl))
        except (CharonError, TimeoutError) as exc:
            self._log.warning("heartbeat failed; sharing days as before",
                              error=str(exc) or "no answer within the replica timeout")
            return None
        self.live, self.heard = frozenset({self.replica, *(r for r, _ in rows)}), True
        # Its own rows were written in the same transaction; a store that lost them
        # still must not leave this replica owning nothing.
        shares = {name: tuple(sorted({self.replica, *(r for r, w in rows if w == name)}))
                  for name in self._watched.values()}
        if shares == self.shares:
            return None
        before, self.shares = self.shares, shares
        self._log.info("replicas changed", replicas=list(self.members))
        return before

    async def _without_the_dead(self, rows: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """``rows`` but those of replicas killed on this machine, whose heartbeats have
        not run out yet: their days are this machine's others' now, not in a replica
        timeout (a daemon restarted after a SIGKILL waited it out for the days hashed to
        its dead self). Their rows are removed too, so that replicas of other machines,
        which cannot tell, stop counting them at their next heartbeat."""
        others = {replica for replica, _ in rows} - {self.replica}
        # A look in /proc, which is memory, not disk: a few of them on the loop are fine.
        dead = {replica for replica in others if owners.gone(replica)}
        for replica in sorted(dead):
            self._log.info("replica gone: its process ended", gone=replica)
            try:
                await self._state.leave(replica)
            except CharonError as exc:
                self._log.warning("could not remove a gone replica; it times out",
                                  gone=replica, error=str(exc))
        return [row for row in rows if row[0] not in dead]

    async def keep(self, on_change: Callable[[Shares], None]) -> None:
        """Heartbeat until cancelled; ``on_change`` gets the shares as they were before
        each change (the shares now are :attr:`shares`)."""
        while True:
            await anyio.sleep(self.interval_seconds)
            if (before := await self.beat()) is not None:
                on_change(before)

    async def take_over(self, roots: Sequence[Root], before: Shares,
                        schedule: Callable[[Root], None]) -> None:
        """Schedule the roots the change from ``before`` gave this replica: the replica
        that owned them died or left, and nothing else would evaluate them until they
        change."""
        for index, root in enumerate(roots):
            if index % TAKE_OVER_CHECKPOINT == 0:
                await anyio.lowlevel.checkpoint()
            if self.owns(root) and self.owner(root, before) != self.replica:
                schedule(root)

    async def leave(self) -> None:
        """Drop out of the list now, so the others take this replica's days at their
        next heartbeat rather than when its own would have run out."""
        try:
            await self._state.leave(self.replica)
        except CharonError as exc:
            self._log.warning("could not leave the replicas; they find out in time",
                              error=str(exc))
