"""The latest revisions of a long-polled registry, answered from its change feed.

In long-poll mode every publish reaches the daemon through the change feed, and then
each evaluation asked the service again, one HTTP round trip per lookup, what the feed
had just told it. :class:`FeedCache` wraps the registry: a partition is asked of the
service once, and from then on the feed (and this process's own publishes) keep its
answer current. A partition is tracked *before* it is asked, so a revision the answer
misses is one the feed delivers afterwards; answers are never older than the feed's
own, which is what triggers the next evaluation anyway.

That holds only while the feed is followed. From a failed feed request until the next
one succeeds (the service restarting, the daemon's poller backing off meanwhile),
lookups ask the service: others may publish while nobody reads the feed, and the look
at a run's inputs just before it publishes must then still see their revisions.
"""

from __future__ import annotations

import builtins
from collections import OrderedDict
from collections.abc import Awaitable, Iterable, Sequence
from typing import Protocol

from orchestrator.model import Revision
from orchestrator.stores.registry.base import Registry
from sensors.registry import LongPollRegistry

MAX_TRACKED = 50_000
"""Partitions whose answer is kept; the least recently asked is forgotten (and asked
of the service again when next wanted), so memory stays bounded whatever is watched."""

_ASKING = None
"""Tracked, its answer not in yet: a lookup asks the service."""


class _Absent:
    """Asked, and the partition had no revision."""


ABSENT = _Absent()


class FollowedRegistry(Registry, LongPollRegistry, Protocol):
    """A registry whose change feed the daemon long-polls (the HTTP service)."""


class FeedCache:
    """A FollowedRegistry over ``registry``; see the module's docstring."""

    def __init__(self, registry: FollowedRegistry, *, max_tracked: int = MAX_TRACKED) -> None:
        self._registry = registry
        self._max_tracked = max_tracked
        self._known: OrderedDict[tuple[str, str], Revision | _Absent | None] = OrderedDict()
        self._followed = True
        """False from a failed feed request to the next that succeeds. Before the first,
        the feed is as good as followed: it starts from its cursor, so what it brings
        corrects every answer kept meanwhile."""

    def _seen(self, revisions: Iterable[Revision]) -> None:
        for revision in revisions:
            key = (revision.endpoint, revision.partition)
            if key in self._known:
                known = self._known[key]
                if not isinstance(known, Revision) or known.seq < revision.seq:
                    self._known[key] = revision

    async def wait_for_changes(
        self, since_seq: int, timeout: float  # noqa: ASYNC109  # the server's wait
    ) -> list[Revision]:
        return self._followed_to(await self._feed(
            self._registry.wait_for_changes(since_seq, timeout)))

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        return self._followed_to(await self._feed(self._registry.changes(since_seq, limit)))

    async def _feed(self, request: Awaitable[list[Revision]]) -> list[Revision]:
        try:
            return await request
        except BaseException:
            self._followed = False
            raise

    def _followed_to(self, changes: list[Revision]) -> list[Revision]:
        self._seen(changes)
        self._followed = True
        return changes

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = (), *,
        idempotency_key: str | None = None,
    ) -> Revision:
        revision = await self._registry.publish(endpoint, partition, uri, lineage,
                                                idempotency_key=idempotency_key)
        self._seen([revision])
        return revision

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        return (await self.latest_many(endpoint, [partition])).get(partition)

    async def latest_many(
        self, endpoint: str, partitions: Sequence[str]
    ) -> dict[str, Revision]:
        if not self._followed:
            return await self._registry.latest_many(endpoint, partitions)
        found: dict[str, Revision] = {}
        asking = []
        for partition in dict.fromkeys(partitions):
            known = self._known.get((endpoint, partition), _ASKING)
            if known is _ASKING:
                asking.append(partition)
                self._track((endpoint, partition))
            else:
                self._known.move_to_end((endpoint, partition))
                if isinstance(known, Revision):
                    found[partition] = known
        if asking:
            answered = await self._registry.latest_many(endpoint, asking)
            for partition in asking:
                found.update(self._answer((endpoint, partition), answered.get(partition)))
        return found

    def _track(self, key: tuple[str, str]) -> None:
        self._known[key] = _ASKING
        while len(self._known) > self._max_tracked:
            self._known.popitem(last=False)

    def _answer(self, key: tuple[str, str], answer: Revision | None) -> dict[str, Revision]:
        """The service's answer merged with what the feed brought meanwhile."""
        if key not in self._known:  # forgotten while asked: the answer is not kept
            return {} if answer is None else {key[1]: answer}
        known = self._known[key]
        if isinstance(known, Revision) and (answer is None or known.seq >= answer.seq):
            return {key[1]: known}
        self._known[key] = ABSENT if answer is None else answer
        return {} if answer is None else {key[1]: answer}

    async def list(self, endpoint: str, partition: str) -> builtins.list[Revision]:
        return await self._registry.list(endpoint, partition)

    async def get(self, revision_id: str) -> Revision:
        return await self._registry.get(revision_id)

    async def aclose(self) -> None:
        await self._registry.aclose()
