"""What every Registry must do; subclass and provide the ``registry`` fixture."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from orchestrator.errors import InvalidIdentifier, UnknownRevision, UsageError
from orchestrator.ports import Registry

DAY = "2018-10-31"


class RegistryContract:
    @pytest.fixture
    async def registry(self) -> AsyncIterator[Registry]:
        raise NotImplementedError("subclasses provide the registry under test")
        yield  # noqa: PT022  (abstract: subclasses yield and close)

    async def test_publish_assigns_id_time_and_increasing_seq(self, registry: Registry) -> None:
        first = await registry.publish("plays", DAY, "/data/plays/a", ["x-1"])
        second = await registry.publish("plays", DAY, "/data/plays/b")
        assert str(uuid.UUID(first.id)) == first.id
        assert first.id != second.id
        assert second.seq > first.seq > 0
        assert first.created.tzinfo is not None
        assert first.created <= second.created
        assert first.lineage == ("x-1",)
        assert (first.endpoint, first.partition, first.uri) == ("plays", DAY, "/data/plays/a")

    async def test_get_returns_what_publish_returned(self, registry: Registry) -> None:
        published = await registry.publish("plays", DAY, "gs://bucket/plays/", ["a", "b"])
        assert await registry.get(published.id) == published

    async def test_get_unknown_raises(self, registry: Registry) -> None:
        with pytest.raises(UnknownRevision):
            await registry.get(str(uuid.uuid4()))

    async def test_latest_is_last_published_of_that_partition(self, registry: Registry) -> None:
        assert await registry.latest("plays", DAY) is None
        await registry.publish("plays", DAY, "/data/1")
        newest = await registry.publish("plays", DAY, "/data/2")
        await registry.publish("plays", "2018-11-01", "/data/other-day")
        await registry.publish("users", DAY, "/data/other-endpoint")
        assert await registry.latest("plays", DAY) == newest

    async def test_list_is_newest_first_and_per_partition(self, registry: Registry) -> None:
        uris = [f"/data/{n}" for n in range(3)]
        for uri in uris:
            await registry.publish("plays", DAY, uri)
        await registry.publish("plays", "2018-11-01", "/data/elsewhere")
        listed = await registry.list("plays", DAY)
        assert [r.uri for r in listed] == uris[::-1]
        assert await registry.list("plays", "2019-01-01") == []

    async def test_changes_in_seq_order_after_since(self, registry: Registry) -> None:
        published = [await registry.publish("plays", DAY, f"/data/{n}") for n in range(5)]
        everything = await registry.changes(0)
        assert everything == published
        after_second = await registry.changes(published[1].seq)
        assert after_second == published[2:]
        assert await registry.changes(published[-1].seq) == []

    async def test_changes_limit(self, registry: Registry) -> None:
        published = [await registry.publish("plays", DAY, f"/data/{n}") for n in range(4)]
        assert await registry.changes(0, limit=2) == published[:2]
        assert await registry.changes(published[1].seq, limit=1) == published[2:3]

    @pytest.mark.parametrize("limit", [0, -1, 10_001])
    async def test_changes_limit_out_of_range(self, registry: Registry, limit: int) -> None:
        with pytest.raises(UsageError):
            await registry.changes(0, limit=limit)

    @pytest.mark.parametrize(
        ("endpoint", "partition", "uri", "lineage"),
        [
            ("bad endpoint", DAY, "/data/x", ()),
            ("", DAY, "/data/x", ()),
            ("plays", "31-10-2018", "/data/x", ()),
            ("plays", DAY, "relative/path", ()),
            ("plays", DAY, "s3://bucket/x", ()),
            ("plays", DAY, "/data/x\n", ()),
            ("plays", DAY, "/data/x", ("",)),
            ("plays", DAY, "/data/x", ("has space",)),
            ("plays", DAY, "/data/x", "a-string-not-a-list"),
        ],
    )
    async def test_invalid_publish_is_refused_and_changes_nothing(
        self, registry: Registry, endpoint: str, partition: str, uri: str, lineage: object
    ) -> None:
        with pytest.raises(InvalidIdentifier):
            await registry.publish(endpoint, partition, uri, lineage)  # type: ignore[arg-type]
        assert await registry.changes(0) == []
        assert await registry.latest("plays", DAY) is None

    async def test_interval_partitions_are_accepted(self, registry: Registry) -> None:
        for partition in ("2012-06", "2012-W05", "2012", "2012-06-01-2012-06-30"):
            revision = await registry.publish("monthly", partition, "/data/m")
            assert await registry.latest("monthly", partition) == revision
