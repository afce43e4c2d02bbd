"""The registry contract against the production backends: PostgreSQL and the HTTP service.

The HTTP client runs the unchanged contract against an in-process service on loopback,
once backed by SQLite and once by PostgreSQL (the real local server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

import aiohttp
import anyio
import asyncpg
import pytest
import structlog.testing
from aiohttp import web
from yarl import URL

from orchestrator.errors import AuthError, CharonError, ConfigError, RegistryError
from orchestrator.model import Revision
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.drivers import postgres as pg
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.registry.http import HttpRegistry
from orchestrator.stores.registry.postgres import (
    INSERT_REVISION,
    PUBLISH_LOCK,
    SCHEMA,
    PostgresRegistry,
)
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.web import http
from tests.contracts.registry import (
    APPLIED_MIGRATIONS,
    DAY,
    KEY,
    RegistryContract,
    assert_created_rises_with_seq,
)
from tests.support.fault_proxy import UNREADABLE_ANSWERS, FaultInjectingProxy, serving
from tests.support.services import registry_service

TOKEN = "test-token"


async def race_one_key(registries: Sequence[Registry], *, rounds: int, tasks: int) -> None:
    """Each round, ``tasks`` publishers on each registry send one new key at once.

    Every one of them must get the same revision, and the feed must hold exactly one
    revision a round: the winner of each.
    """
    winners: list[Revision] = []
    for n in range(rounds):
        got = await _race_round(registries, tasks, f"race-{n}")
        assert len(got) == len(registries) * tasks
        assert len(set(got)) == 1, f"round {n}: {len(set(got))} revisions for one key"
        winners.append(got[0])
    assert await registries[0].changes(0) == winners


async def _race_round(registries: Sequence[Registry], tasks: int, key: str) -> list[Revision]:
    got: list[Revision] = []
    go = anyio.Event()

    async def publish(registry: Registry, uri: str) -> None:
        await go.wait()
        got.append(await registry.publish("plays", DAY, uri, idempotency_key=key))

    async with anyio.create_task_group() as group:
        for r, registry in enumerate(registries):
            for t in range(tasks):
                group.start_soon(publish, registry, f"/data/{key}/{r}.{t}")
        await anyio.sleep(0.01)  # all of them waiting at the start line
        go.set()
    return got


class TestPostgresRegistry(RegistryContract):
    @pytest.fixture
    async def registry(self, postgres_dsn: str) -> AsyncIterator[Registry]:
        registry = await PostgresRegistry.open(postgres_dsn)
        yield registry
        await registry.aclose()

    async def test_migrations_apply_once_under_concurrency(self, postgres_dsn: str) -> None:
        opened: list[PostgresRegistry] = []

        async def open_one() -> None:
            opened.append(await PostgresRegistry.open(postgres_dsn))

        async with anyio.create_task_group() as group:
            for _ in range(5):
                group.start_soon(open_one)
        try:
            for registry in opened:
                applied = await registry.migrations()
                assert [(version, name) for version, name, _at in applied] == APPLIED_MIGRATIONS
        finally:
            for registry in opened:
                await registry.aclose()
        connection = await asyncpg.connect(postgres_dsn)
        try:
            tables = {row["table_name"] for row in await connection.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = $1",
                SCHEMA,
            )}
        finally:
            await connection.close()
        assert tables == {"revisions", "schema_migrations"}

    async def test_feed_misses_nothing_under_concurrent_publishes(
        self, postgres_dsn: str
    ) -> None:
        """A follower reading while four processes publish sees every revision, in order."""
        publishers = [await PostgresRegistry.open(postgres_dsn) for _ in range(4)]
        follower = await PostgresRegistry.open(postgres_dsn)
        published: list[Revision] = []
        seen: list[Revision] = []
        done = anyio.Event()

        async def publish(registry: PostgresRegistry, n: int) -> None:
            for i in range(15):
                published.append(await registry.publish("plays", DAY, f"/data/{n}/{i}"))

        async def follow() -> None:
            while True:
                finished = done.is_set()  # read before the query: one more pass after it
                cursor = seen[-1].seq if seen else 0
                seen.extend(await follower.changes(cursor))
                if finished:
                    return
                await anyio.sleep(0.005)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(follow)
                async with anyio.create_task_group() as publishing:
                    for n, registry in enumerate(publishers):
                        publishing.start_soon(publish, registry, n)
                done.set()
        finally:
            for registry in (*publishers, follower):
                await registry.aclose()
        assert sorted(r.seq for r in published) == [r.seq for r in seen]
        assert {r.id for r in seen} == {r.id for r in published}

    async def test_publishers_racing_with_one_key_publish_once(self, postgres_dsn: str) -> None:
        """Four pools, three connections each, one new key a round: one revision a round."""
        registries = [await PostgresRegistry.open(postgres_dsn) for _ in range(4)]
        try:
            await race_one_key(registries, rounds=25, tasks=3)
        finally:
            for registry in registries:
                await registry.aclose()

    async def test_a_publish_in_flight_holds_back_later_ones(self, postgres_dsn: str) -> None:
        """Why the feed cannot skip: a seq taken but not yet committed blocks later ones.

        Without the publish lock the second publish would commit seq 2 while seq 1 is
        still invisible, and a reader at cursor 2 would never see seq 1.
        """
        registry = await PostgresRegistry.open(postgres_dsn)
        slow = await asyncpg.connect(postgres_dsn, server_settings={"search_path": SCHEMA})
        fast: list[Revision] = []

        async def publish_fast() -> None:
            fast.append(await registry.publish("plays", DAY, "/data/fast"))

        try:
            # The transaction (a publisher stalled just before commit) ends first, then
            # the task group waits for the fast publish it was holding back.
            async with anyio.create_task_group() as group, slow.transaction():
                await slow.execute(pg.TAKE_XACT_LOCK, PUBLISH_LOCK)
                await slow.execute(INSERT_REVISION, "slow", "plays", DAY, "/data/slow",
                                   datetime.now(UTC), [], None)
                group.start_soon(publish_fast)
                await anyio.sleep(0.3)
                assert fast == []
                assert await registry.changes(0) == []
            feed = await registry.changes(0)
        finally:
            await slow.close()
            await registry.aclose()
        assert [r.uri for r in feed] == ["/data/slow", "/data/fast"]
        assert feed[0].seq < feed[1].seq == fast[0].seq

    async def test_created_rises_with_seq_under_concurrent_publishes(
        self, postgres_dsn: str
    ) -> None:
        """Four pools (ten connections each) publishing at once: each clock is read before
        the wait for the publish lock, so the order of the reads is not that of the seqs."""
        registries = [await PostgresRegistry.open(postgres_dsn) for _ in range(4)]
        go = anyio.Event()

        async def publish(registry: PostgresRegistry, n: int) -> None:
            await go.wait()
            for i in range(5):
                await registry.publish("plays", DAY, f"/data/{n}/{i}")

        try:
            async with anyio.create_task_group() as group:
                for n in range(40):
                    group.start_soon(publish, registries[n % 4], n)
                await anyio.sleep(0.05)
                go.set()
            feed = await registries[0].changes(0)
        finally:
            for registry in registries:
                await registry.aclose()
        assert len(feed) == 200
        assert_created_rises_with_seq(feed)

    async def test_a_replica_with_a_slow_clock_does_not_go_back_in_time(
        self, postgres_dsn: str
    ) -> None:
        await _publish_through_a_slow_clock(
            await PostgresRegistry.open(postgres_dsn),
            await PostgresRegistry.open(postgres_dsn, now=_an_hour_slow),
        )

    async def test_unreachable_server_is_a_registry_error(self) -> None:
        with pytest.raises(RegistryError, match="cannot connect"):
            await PostgresRegistry.open("postgresql://postgres@127.0.0.1:1/nothing")

    async def test_missing_database_is_a_registry_error(self, postgres_server: str) -> None:
        with pytest.raises(RegistryError, match="does not exist"):
            await PostgresRegistry.open(postgres_server.rsplit("/", 1)[0] + "/no_such_db_x")

    async def test_missing_dsn_is_a_config_error(self) -> None:
        with pytest.raises(ConfigError, match=r"registry\.dsn"):
            await PostgresRegistry.open("")

    async def test_closed_registry_raises_registry_error(self, postgres_dsn: str) -> None:
        registry = await PostgresRegistry.open(postgres_dsn)
        await registry.aclose()
        with pytest.raises(RegistryError, match="closed"):
            await registry.latest("plays", DAY)


async def test_sqlite_connections_racing_with_one_key_publish_once(tmp_path: Path) -> None:
    """Three connections to one file, each from its own thread, one new key a round."""
    registries = [await SqliteRegistry.open(tmp_path / "registry.sqlite") for _ in range(3)]
    try:
        await race_one_key(registries, rounds=30, tasks=2)
    finally:
        for registry in registries:
            await registry.aclose()


async def test_a_sqlite_connection_with_a_slow_clock_does_not_go_back_in_time(
    tmp_path: Path,
) -> None:
    path = tmp_path / "registry.sqlite"
    await _publish_through_a_slow_clock(await SqliteRegistry.open(path),
                                        await SqliteRegistry.open(path, now=_an_hour_slow))


def _an_hour_slow() -> datetime:
    return datetime.now(UTC) - timedelta(hours=1)


async def _publish_through_a_slow_clock(right: Registry, slow: Registry) -> None:
    """Two publishers of one registry whose clocks disagree (two replicas of the service,
    a clock stepped back): the later publish is never created before the earlier one."""
    try:
        first = await right.publish("plays", DAY, "/data/first")
        second = await slow.publish("plays", DAY, "/data/second")
        assert second.seq > first.seq
        assert second.created >= first.created
        assert await right.changes(0) == [first, second]  # as stored, not just as returned
    finally:
        await right.aclose()
        await slow.aclose()


async def _http_registry(url: str) -> HttpRegistry:
    return await HttpRegistry.open(url, token=TOKEN, timeout=10)


class TestHttpRegistryOverSqlite(RegistryContract):
    @pytest.fixture
    async def service_url(self, tmp_path: Path) -> AsyncIterator[str]:
        backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
        async with registry_service(backend, ServiceOptions(token=TOKEN)) as url:
            yield url
        await backend.aclose()

    @pytest.fixture
    async def registry(self, service_url: str) -> AsyncIterator[Registry]:
        client = await _http_registry(service_url)
        yield client
        await client.aclose()

    async def test_wait_for_changes_returns_at_once_when_there_are_some(
        self, registry: Registry
    ) -> None:
        assert isinstance(registry, HttpRegistry)
        published = await registry.publish("plays", DAY, "/data/x")
        with anyio.fail_after(2):
            assert await registry.wait_for_changes(0, 30) == [published]

    async def test_wrong_token_is_an_auth_error(self, service_url: str) -> None:
        client = await HttpRegistry.open(service_url, token="wrong", timeout=10)
        try:
            with pytest.raises(AuthError):
                await client.publish("plays", DAY, "/data/x")
            assert await client.changes(0) == []
        finally:
            await client.aclose()

    async def test_unreachable_service_is_a_registry_error(self) -> None:
        client = await HttpRegistry.open("http://127.0.0.1:1", timeout=5)  # refused at once
        try:
            with pytest.raises(RegistryError, match="cannot reach"):
                await client.latest("plays", DAY)
        finally:
            await client.aclose()

    async def test_a_url_that_is_not_a_registry_is_a_registry_error(
        self, service_url: str
    ) -> None:
        client = await HttpRegistry.open(f"{service_url}/elsewhere", timeout=5)
        try:
            with pytest.raises(RegistryError, match="not found"):
                await client.latest("plays", DAY)
        finally:
            await client.aclose()

    @pytest.mark.parametrize("answer", [
        *((200, body) for body in UNREADABLE_ANSWERS.values()),
        (500, UNREADABLE_ANSWERS["JSON nested 200,000 deep"])],
        ids=[*UNREADABLE_ANSWERS, "JSON nested 200,000 deep, as a 500's body"])
    async def test_an_unreadable_answer_is_a_registry_error(
        self, service_url: str, answer: tuple[int, bytes]
    ) -> None:
        """A registry error is an outage the daemon rides out; anything else ended its
        change feed's sensor, and the daemon with it."""
        async with serving(FaultInjectingProxy(service_url)) as proxy:
            client = await _http_registry(proxy.url)
            try:
                published = await client.publish("plays", DAY, "/data/x")
                proxy.garbled[("GET", r"/latest$")] = [answer]
                proxy.garbled[("GET", r"/changes\?")] = [answer]
                with pytest.raises(RegistryError):
                    await client.latest("plays", DAY)
                with pytest.raises(RegistryError):
                    await client.changes(0)
                assert await client.latest("plays", DAY) == published
                assert await client.changes(0) == [published]
            finally:
                await client.aclose()

    async def test_a_batched_lookup_with_one_failure_raises_that_error_not_a_group(
        self, service_url: str
    ) -> None:
        async with serving(FaultInjectingProxy(service_url)) as proxy:
            client = await _http_registry(proxy.url)
            try:
                await client.publish("plays", DAY, "/data/x")
                proxy.garbled[("GET", rf"/partitions/{DAY}/latest$")] = [
                    (200, UNREADABLE_ANSWERS["a proxy's HTML page"])]
                with pytest.raises(RegistryError, match="did not answer JSON"):
                    await client.latest_many("plays", [DAY, "2018-11-01", "2018-11-02"])
            finally:
                await client.aclose()

    async def test_closed_client_raises_registry_error(self, service_url: str) -> None:
        client = await _http_registry(service_url)
        await client.aclose()
        with pytest.raises(RegistryError, match="closed"):
            await client.latest("plays", DAY)

    async def test_negative_cursor_reads_from_the_start(self, registry: Registry) -> None:
        published = await registry.publish("plays", DAY, "/data/x")
        assert await registry.changes(-5) == [published]

    @pytest.mark.parametrize("url", ["", "ftp://host/x", "127.0.0.1:8090"])
    async def test_bad_url_is_a_config_error(self, url: str) -> None:
        with pytest.raises(ConfigError, match=r"registry\.url"):
            await HttpRegistry.open(url)


class TestHttpRegistryOverPostgres(RegistryContract):
    @pytest.fixture
    async def registry(self, postgres_dsn: str) -> AsyncIterator[Registry]:
        backend = await PostgresRegistry.open(postgres_dsn)
        async with registry_service(backend, ServiceOptions(token=TOKEN)) as url:
            client = await _http_registry(url)
            yield client
            await client.aclose()
        await backend.aclose()


Fault = Literal["drop", "lose_answer"] | int
"""What the fake proxy does to one request: ``drop`` cuts the connection before the
service sees it; ``lose_answer`` passes it to the service, then cuts the connection,
so the answer is lost; a status is answered at once, as a proxy's error page."""
PASSED_HEADERS = ("Authorization", "Content-Type", "Idempotency-Key")


@dataclass
class FakeFlakyProxy:
    """A fake proxy in front of the real registry service: the first requests meet the
    faults given, one each, in turn; later ones pass through. Records every request."""

    upstream: str
    session: aiohttp.ClientSession
    faults: list[Fault]
    seen: list[str] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(f"{request.method} {request.path}")
        fault = self.faults.pop(0) if self.faults else None
        if isinstance(fault, int):
            return web.Response(status=fault, text="<html>bad gateway</html>",
                                content_type="text/html")
        if fault == "drop":
            return self._cut(request)
        answer = await self._forward(request)
        return self._cut(request) if fault == "lose_answer" else answer

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {name: request.headers[name] for name in PASSED_HEADERS
                   if name in request.headers}
        async with self.session.request(request.method, self.upstream + request.path_qs,
                                        data=await request.read(), headers=headers) as answer:
            return web.Response(status=answer.status, body=await answer.read(),
                                content_type="application/json")

    @staticmethod
    def _cut(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.abort()
        return web.Response()  # never sent: the connection is gone


@dataclass
class Flaky:
    backend: SqliteRegistry
    proxy: FakeFlakyProxy
    client: HttpRegistry


@asynccontextmanager
async def flaky(tmp_path: Path, faults: list[Fault]) -> AsyncIterator[Flaky]:
    """A client reaching the real service (on SQLite) through a FakeFlakyProxy."""
    backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
    try:
        async with registry_service(backend, ServiceOptions(token=TOKEN)) as upstream, \
                aiohttp.ClientSession() as session:
            proxy = FakeFlakyProxy(upstream, session, faults)
            app = web.Application()
            app.router.add_route("*", "/{path:.*}", proxy.handle)
            async with http.listening(app, "127.0.0.1", 0) as port:
                client = await _http_registry(f"http://127.0.0.1:{port}")
                try:
                    yield Flaky(backend, proxy, client)
                finally:
                    await client.aclose()
    finally:
        await backend.aclose()


def retries(logs: Sequence[Mapping[str, object]]) -> int:
    return sum(entry["event"] == "registry request will be retried" for entry in logs)


class TestHttpRegistryRetries:
    async def test_a_keyed_publish_whose_answer_was_lost_is_sent_again_and_replayed(
        self, tmp_path: Path
    ) -> None:
        async with flaky(tmp_path, ["lose_answer"]) as setup:
            with structlog.testing.capture_logs() as logs:
                published = await setup.client.publish("plays", DAY, "/data/x",
                                                       idempotency_key=KEY)
            assert await setup.backend.changes(0) == [published]
            assert setup.proxy.seen == ["POST /v1/revisions"] * 2
        assert retries(logs) == 1

    @pytest.mark.parametrize("fault", ["drop", "lose_answer", 502, 503, 504])
    async def test_reads_are_sent_again(self, tmp_path: Path, fault: Fault) -> None:
        async with flaky(tmp_path, []) as setup:
            published = await setup.client.publish("plays", DAY, "/data/x")
            setup.proxy.faults.append(fault)
            assert await setup.client.latest("plays", DAY) == published
            assert len(setup.proxy.seen) == 3

    @pytest.mark.parametrize(
        ("fault", "published"), [("drop", 0), ("lose_answer", 1), (503, 0), (502, 0)],
    )
    async def test_a_publish_without_a_key_is_sent_once(
        self, tmp_path: Path, fault: Fault, published: int
    ) -> None:
        """Once, whatever happened: after a lost answer it did publish, unbeknown to us."""
        async with flaky(tmp_path, [fault]) as setup:
            with pytest.raises(RegistryError):
                await setup.client.publish("plays", DAY, "/data/x")
            assert setup.proxy.seen == ["POST /v1/revisions"]
            assert len(await setup.backend.changes(0)) == published

    async def test_attempts_end_after_three(self, tmp_path: Path) -> None:
        async with flaky(tmp_path, [503] * 5) as setup:
            with pytest.raises(RegistryError, match="HTTP 503"):
                await setup.client.publish("plays", DAY, "/data/x", idempotency_key=KEY)
            assert setup.proxy.seen == ["POST /v1/revisions"] * 3
            assert await setup.backend.changes(0) == []

    @pytest.mark.parametrize("fault", [500, 400, 401])
    async def test_other_failures_are_not_sent_again(self, tmp_path: Path, fault: int) -> None:
        async with flaky(tmp_path, [fault]) as setup:
            with pytest.raises(CharonError):
                await setup.client.get("no-such-revision")
            assert len(setup.proxy.seen) == 1

    async def test_requests_ride_out_a_restart_of_the_service(self, tmp_path: Path) -> None:
        """The service stops; a keyed publish and a read wait while it starts again."""
        backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
        options = ServiceOptions(token=TOKEN)
        async with registry_service(backend, options) as url:
            client = await _http_registry(url)
            before = await client.publish("plays", DAY, "/data/before")
        got: list[Revision] = []

        async def call_while_down() -> None:
            got.append(await client.publish("plays", DAY, "/data/x", idempotency_key=KEY))
            got.append(await client.get(before.id))

        try:
            with structlog.testing.capture_logs() as logs, anyio.fail_after(10):
                async with anyio.create_task_group() as group:
                    group.start_soon(call_while_down)
                    await anyio.sleep(0.2)  # refused at once: waiting to send it again
                    async with registry_service(backend, options, port=URL(url).port or 0):
                        while len(got) < 2:
                            await anyio.sleep(0.02)
            keyed, again = got
            assert again == before
            assert await backend.changes(0) == [before, keyed]
            assert retries(logs) >= 1
        finally:
            await client.aclose()
            await backend.aclose()
