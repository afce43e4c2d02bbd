"""Long-poll mode answers the partitions it asked about once from the change feed: the
answers are the registry's, a revision published while a partition is first asked is
not lost, the daemon's own publishes count, and what is kept is bounded."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from orchestrator.errors import RegistryError
from orchestrator.model import Revision
from orchestrator.testing.stores import InMemoryRegistry
from sensors.feed_cache import FeedCache

ENDPOINT = "di.input"


class Service(InMemoryRegistry):
    """The registry service as the daemon sees it: a long-polled feed, lookups counted."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[str] = []

    async def wait_for_changes(self, since_seq: int, timeout: float) -> list[Revision]:
        return await self.changes(since_seq)

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        self.asked.extend(partitions)
        return await super().latest_many(endpoint, partitions)


class PublishedWhileAsked(Service):
    """Another publisher's revision lands right after the service read its answer;
    with ``fed_first`` the feed also delivers it before the answer comes back."""

    def __init__(self, cache: list[FeedCache], *, fed_first: bool) -> None:
        super().__init__()
        self._cache, self._fed_first = cache, fed_first

    async def latest_many(self, endpoint: str, partitions: Sequence[str]) -> dict[str, Revision]:
        answer = await super().latest_many(endpoint, partitions)
        if len(self.asked) == 1:
            await self.publish(ENDPOINT, "2020-01-01", "/new")
            if self._fed_first:
                await self._cache[0].wait_for_changes(0, 0)
        return answer


async def test_a_partition_asked_once_is_then_answered_from_the_feed() -> None:
    service = Service()
    cache = FeedCache(service)
    assert await cache.latest(ENDPOINT, "2020-01-01") is None
    await service.publish(ENDPOINT, "2020-01-01", "/first")
    second = await service.publish(ENDPOINT, "2020-01-01", "/second")
    await service.publish(ENDPOINT, "2020-01-02", "/other")
    # As of the feed: it is what brings the trigger that evaluates the partition again.
    assert await cache.latest(ENDPOINT, "2020-01-01") is None
    assert await cache.wait_for_changes(0, 30) == await service.changes(0)
    assert await cache.latest(ENDPOINT, "2020-01-01") == second
    assert await cache.latest_many(ENDPOINT, ["2020-01-01"]) == {"2020-01-01": second}
    assert service.asked == ["2020-01-01"]


async def test_a_revision_published_while_first_asked_is_not_lost() -> None:
    for fed_first in (False, True):
        caches: list[FeedCache] = []
        service = PublishedWhileAsked(caches, fed_first=fed_first)
        caches.append(FeedCache(service))
        answer = await caches[0].latest(ENDPOINT, "2020-01-01")
        await caches[0].wait_for_changes(0, 30)
        assert await caches[0].latest(ENDPOINT, "2020-01-01") == await service.latest(
            ENDPOINT, "2020-01-01")
        assert answer == (await service.latest(ENDPOINT, "2020-01-01") if fed_first else None)
        assert service.asked == ["2020-01-01"]


async def test_its_own_publishes_are_answered_without_asking() -> None:
    service = Service()
    cache = FeedCache(service)
    assert await cache.latest_many(ENDPOINT, ["2020-01-01", "2020-01-02"]) == {}
    mine = await cache.publish(ENDPOINT, "2020-01-02", "/mine")
    assert await cache.latest_many(ENDPOINT, ["2020-01-01", "2020-01-02"]) == {
        "2020-01-02": mine}
    assert service.asked == ["2020-01-01", "2020-01-02"]


async def test_the_least_recently_asked_partition_is_forgotten_past_the_bound() -> None:
    service = Service()
    cache = FeedCache(service, max_tracked=2)
    for day in ("2020-01-01", "2020-01-02", "2020-01-02", "2020-01-03", "2020-01-01"):
        await cache.latest(ENDPOINT, day)
    assert service.asked == ["2020-01-01", "2020-01-02", "2020-01-03", "2020-01-01"]


class FeedDown(Service):
    """The service's feed fails (as when the service restarts) while lookups answer."""

    def __init__(self) -> None:
        super().__init__()
        self.feed_down = False

    async def wait_for_changes(self, since_seq: int, timeout: float) -> list[Revision]:
        if self.feed_down:
            raise RegistryError("connection reset")
        return await super().wait_for_changes(since_seq, timeout)


async def test_lookups_ask_the_service_while_the_feed_is_not_followed() -> None:
    """Others publish while the poller backs off: a run's last look before publishing
    must still see their revisions."""
    service = FeedDown()
    cache = FeedCache(service)
    first = await service.publish(ENDPOINT, "2020-01-01", "/first")
    assert await cache.latest(ENDPOINT, "2020-01-01") == first
    service.feed_down = True
    with pytest.raises(RegistryError):
        await cache.wait_for_changes(0, 30)
    newer = await service.publish(ENDPOINT, "2020-01-01", "/newer")
    assert await cache.latest(ENDPOINT, "2020-01-01") == newer
    assert await cache.latest(ENDPOINT, "2020-01-01") == newer
    assert service.asked == ["2020-01-01"] * 3
    service.feed_down = False
    await cache.wait_for_changes(0, 30)
    assert await cache.latest(ENDPOINT, "2020-01-01") == newer
    assert service.asked == ["2020-01-01"] * 3
