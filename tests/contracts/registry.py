"""What every Registry must do; subclass and provide the ``registry`` fixture."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator, Sequence

import anyio
import pytest

from orchestrator.errors import (
    IdempotencyKeyReused,
    InvalidIdentifier,
    UnknownRevision,
    UsageError,
)
from orchestrator.model import Revision
from orchestrator.stores.registry.base import MAX_LINEAGE, MAX_SEQ, MIN_SEQ, Registry

DAY = "2018-10-31"
KEY = "top_artists:2018-10-31:run-7f3a.attempt-2"
# The same schema versions in both dialects: (version, name) as each backend lists them.
APPLIED_MIGRATIONS = [(1, "init"), (2, "idempotency_key")]


def assert_created_rises_with_seq(revisions: Sequence[Revision]) -> None:
    """Creation times never go back along the change feed."""
    in_seq_order = sorted(revisions, key=lambda revision: revision.seq)
    for earlier, later in itertools.pairwise(in_seq_order):
        assert earlier.created <= later.created, f"seq {later.seq} was created before {earlier.seq}"


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

    @pytest.mark.parametrize(
        ("endpoint", "partition"),
        [("plays\x00", DAY), ("plays\ud800", DAY), ("plays", "2018-99-99"),
         ("plays", f"{DAY}\x00"), ("p" * 10_000, DAY), ("bad endpoint", DAY)],
    )
    async def test_a_partition_no_publish_could_name_has_no_revisions(
        self, registry: Registry, endpoint: str, partition: str
    ) -> None:
        assert await registry.latest(endpoint, partition) is None
        assert await registry.list(endpoint, partition) == []

    @pytest.mark.parametrize("revision_id", ["a\x00b", "\ud800", "r" * 10_000, "a/b", ""])
    async def test_an_id_no_revision_could_have_is_unknown(
        self, registry: Registry, revision_id: str
    ) -> None:
        with pytest.raises(UnknownRevision):
            await registry.get(revision_id)

    async def test_latest_is_last_published_of_that_partition(self, registry: Registry) -> None:
        assert await registry.latest("plays", DAY) is None
        await registry.publish("plays", DAY, "/data/1")
        newest = await registry.publish("plays", DAY, "/data/2")
        await registry.publish("plays", "2018-11-01", "/data/other-day")
        await registry.publish("users", DAY, "/data/other-endpoint")
        assert await registry.latest("plays", DAY) == newest

    async def test_latest_many_answers_as_latest_one_by_one(self, registry: Registry) -> None:
        days = [f"2012-01-{n:02d}" for n in range(1, 32)]
        for day in days[::2]:
            await registry.publish("plays", day, f"/data/{day}/1")
            await registry.publish("plays", day, f"/data/{day}/2")
        await registry.publish("users", days[1], "/data/other-endpoint")
        asked = [*days, days[0], "2018-99-99", f"{DAY}\x00"]  # a repeat, two no publish names
        one_by_one = {p: r for p in asked if (r := await registry.latest("plays", p)) is not None}
        assert await registry.latest_many("plays", asked) == one_by_one
        assert sorted(one_by_one) == days[::2]
        assert await registry.latest_many("plays", []) == {}
        assert await registry.latest_many("bad endpoint", days) == {}

    async def test_latest_many_takes_a_sequence_not_a_string(self, registry: Registry) -> None:
        with pytest.raises(UsageError):
            await registry.latest_many("plays", DAY)

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
            ("plays", "2018-99-99", "/data/x", ()),
            ("plays", "2018-02-30", "/data/x", ()),
            ("plays", "9999-12-31", "/data/x", ()),
            ("plays", f"{DAY}\n", "/data/x", ()),
            ("plays", "\uff12018-10-31", "/data/x", ()),
            ("plays\n", DAY, "/data/x", ()),
            ("plays", DAY, "gs://", ()),
            ("plays", DAY, "gs:///x", ()),
            ("plays", DAY, "gs://ab/x", ()),
            ("plays", DAY, "/data/\ud800", ()),
            ("plays", DAY, "/data/\x00", ()),
            ("plays", DAY, "/" + "x" * 2048, ()),
            ("plays", DAY, "/data/x", ("\ud800",)),
            ("plays", DAY, "/data/x", ("x" * 5000,)),
            ("plays", DAY, "/data/x", [f"r-{n}" for n in range(MAX_LINEAGE + 1)]),
            ("plays", DAY, "/data/x", [f"r-{n}" for n in range(20_000)]),
        ],
    )
    async def test_invalid_publish_is_refused_and_changes_nothing(
        self, registry: Registry, endpoint: str, partition: str, uri: str, lineage: object
    ) -> None:
        with pytest.raises(InvalidIdentifier):
            await registry.publish(endpoint, partition, uri, lineage)  # type: ignore[arg-type]
        assert await registry.changes(0) == []
        assert await registry.latest("plays", DAY) is None

    async def test_lineage_may_hold_up_to_its_bound(self, registry: Registry) -> None:
        lineage = tuple(f"r-{n}" for n in range(MAX_LINEAGE))
        revision = await registry.publish("plays", DAY, "/data/x", lineage)
        assert (await registry.get(revision.id)).lineage == lineage

    @pytest.mark.parametrize(
        "since",
        [MAX_SEQ + 1, MIN_SEQ - 1, pytest.param(10**5000, id="5000-digits"),
         pytest.param(-(10**5000), id="minus-5000-digits")],
    )
    async def test_a_cursor_out_of_range_is_refused(self, registry: Registry, since: int) -> None:
        with pytest.raises(UsageError, match="since"):
            await registry.changes(since)

    async def test_the_cursor_range_is_whole(self, registry: Registry) -> None:
        published = await registry.publish("plays", DAY, "/data/x")
        assert await registry.changes(MIN_SEQ) == [published]
        assert await registry.changes(MAX_SEQ) == []

    async def test_created_never_decreases_with_seq(self, registry: Registry) -> None:
        async def publish(n: int) -> None:
            await registry.publish("plays", DAY, f"/data/{n}")

        async with anyio.create_task_group() as group:
            for n in range(30):
                group.start_soon(publish, n)
        assert_created_rises_with_seq(await registry.changes(0))

    async def test_interval_partitions_are_accepted(self, registry: Registry) -> None:
        for partition in ("2012-06", "2012-W05", "2012", "2012-06-01-2012-06-30"):
            revision = await registry.publish("monthly", partition, "/data/m")
            assert await registry.latest("monthly", partition) == revision

    async def test_no_idempotency_key_publishes_every_time(self, registry: Registry) -> None:
        first = await registry.publish("plays", DAY, "/data/x", idempotency_key=None)
        second = await registry.publish("plays", DAY, "/data/x", idempotency_key=None)
        assert first.id != second.id
        assert await registry.changes(0) == [first, second]

    async def test_a_keyed_publish_happens_once_and_the_first_wins(
        self, registry: Registry
    ) -> None:
        first = await registry.publish("plays", DAY, "/data/first", ["in-1"], idempotency_key=KEY)
        replayed = await registry.publish("plays", DAY, "/data/retry", ["in-2"],
                                          idempotency_key=KEY)
        assert replayed == first  # id, seq, uri, lineage and creation time alike
        assert await registry.changes(0) == [first]
        assert await registry.changes(first.seq) == []
        assert await registry.list("plays", DAY) == [first]

    async def test_a_replay_returns_the_keyed_revision_not_the_latest(
        self, registry: Registry
    ) -> None:
        keyed = await registry.publish("plays", DAY, "/data/keyed", idempotency_key=KEY)
        later = await registry.publish("plays", DAY, "/data/later")
        assert await registry.publish("plays", DAY, "/data/keyed", idempotency_key=KEY) == keyed
        assert await registry.changes(0) == [keyed, later]

    async def test_distinct_keys_publish_distinct_revisions(self, registry: Registry) -> None:
        first = await registry.publish("plays", DAY, "/data/x", idempotency_key=f"{KEY}-a")
        second = await registry.publish("plays", DAY, "/data/x", idempotency_key=f"{KEY}-b")
        assert first.id != second.id
        assert await registry.changes(0) == [first, second]

    @pytest.mark.parametrize(("endpoint", "partition"), [("plays", "2018-11-01"), ("users", DAY)])
    async def test_a_key_reused_on_another_partition_is_refused_and_changes_nothing(
        self, registry: Registry, endpoint: str, partition: str
    ) -> None:
        first = await registry.publish("plays", DAY, "/data/x", idempotency_key=KEY)
        with pytest.raises(IdempotencyKeyReused, match="idempotency key"):
            await registry.publish(endpoint, partition, "/data/x", idempotency_key=KEY)
        assert await registry.changes(0) == [first]
        assert await registry.latest(endpoint, partition) is None

    async def test_concurrent_publishes_of_one_key_make_one_revision(
        self, registry: Registry
    ) -> None:
        got: list[Revision] = []

        async def publish(n: int) -> None:
            got.append(await registry.publish("plays", DAY, f"/data/{n}", idempotency_key=KEY))

        async with anyio.create_task_group() as group:
            for n in range(8):
                group.start_soon(publish, n)
        assert len(got) == 8
        assert len(set(got)) == 1
        assert await registry.changes(0) == got[:1]

    @pytest.mark.parametrize("key", ["k", "7", "A-Z.a_b:c-9", "a" * 200])
    async def test_valid_idempotency_keys(self, registry: Registry, key: str) -> None:
        published = await registry.publish("plays", DAY, "/data/x", idempotency_key=key)
        assert await registry.publish("plays", DAY, "/data/y", idempotency_key=key) == published

    @pytest.mark.parametrize(
        "key",
        ["", " ", "a b", "-leading-dash", ".hidden", "a" * 201, "a/b", "a\n", "a\x00b",
         "cl\u00e9", "\u0663\u0664", "a;b", "a\tb"],
    )
    async def test_invalid_idempotency_key_is_refused_and_changes_nothing(
        self, registry: Registry, key: str
    ) -> None:
        with pytest.raises(InvalidIdentifier, match="idempotency key"):
            await registry.publish("plays", DAY, "/data/x", idempotency_key=key)
        assert await registry.changes(0) == []
