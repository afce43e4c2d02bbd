"""The registry service over real HTTP on loopback: auth, bad input, long-poll, webhooks."""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import anyio
import pytest
import structlog.testing
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from orchestrator.errors import ConfigError
from orchestrator.model import Revision
from orchestrator.service.app import check_served
from orchestrator.service.notify import Notifier
from orchestrator.service.options import ServiceOptions, check_options
from orchestrator.stores.registry.http import HttpRegistry
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.registry.wire import revision_to_json
from orchestrator.web.signing import DELIVERY_HEADER, verify
from tests.contracts.registry import DAY, KEY
from tests.support.services import registry_service

TOKEN = "service-token"
SECRET = "webhook-secret"
# Only ever checked, never bound: these tests are about refusing it.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
GOOD = {"endpoint": "plays", "partition": DAY, "uri": "/data/plays"}


@dataclass
class Service:
    url: str
    backend: SqliteRegistry
    http: aiohttp.ClientSession

    async def post(self, body: bytes, token: str | None = TOKEN,
                   headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
        status, _headers, answer = await self.publish(body, token, headers)
        return status, answer

    async def publish(
        self, body: bytes, token: str | None = TOKEN,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
    ) -> tuple[int, CIMultiDictProxy[str], dict[str, object]]:
        """POST /v1/revisions; headers as pairs may name one header twice."""
        sent = CIMultiDict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.http.post(f"{self.url}/v1/revisions", data=body,
                                  headers=sent) as response:
            return response.status, response.headers, await response.json()

    async def get(self, path: str) -> tuple[int, dict[str, object]]:
        async with self.http.get(f"{self.url}{path}") as response:
            return response.status, await response.json()

    async def assert_nothing_published(self) -> None:
        assert await self.backend.changes(0) == []


@asynccontextmanager
async def started(tmp_path: Path, options: ServiceOptions) -> AsyncIterator[Service]:
    backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
    try:
        async with registry_service(backend, options) as url, aiohttp.ClientSession() as http:
            yield Service(url, backend, http)
    finally:
        await backend.aclose()


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    options = ServiceOptions(token=TOKEN, max_body_bytes=1024, long_poll_max_seconds=5)
    async with started(tmp_path, options) as running:
        yield running


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
     {"Authorization": TOKEN}, {"Authorization": "Bearer "}],
)
async def test_publish_needs_the_token(service: Service, headers: dict[str, str]) -> None:
    status, body = await service.post(json.dumps(GOOD).encode(), token=None, headers=headers)
    assert (status, body["code"]) == (401, "unauthorized")
    await service.assert_nothing_published()


async def test_publish_with_the_token(service: Service) -> None:
    status, body = await service.post(json.dumps({**GOOD, "lineage": ["a"]}).encode())
    assert status == 201
    [revision] = await service.backend.changes(0)
    assert body == revision_to_json(revision)
    assert str(body["created"]).endswith("+00:00")


@pytest.mark.parametrize(
    ("body", "code", "mentions"),
    [
        (b"{not json", "bad_request", "JSON"),
        (b"\xff\xfe\x00", "bad_request", "JSON"),
        (b"[1, 2]", "bad_request", "object"),
        (json.dumps({**GOOD, "colour": "red"}).encode(), "bad_request", "colour"),
        (json.dumps({"endpoint": "plays", "partition": DAY}).encode(), "bad_request", "uri"),
        (json.dumps({**GOOD, "endpoint": 5}).encode(), "bad_request", "endpoint"),
        (json.dumps({**GOOD, "lineage": "abc"}).encode(), "bad_request", "lineage"),
        (json.dumps({**GOOD, "lineage": [1]}).encode(), "bad_request", "lineage"),
        (json.dumps({**GOOD, "endpoint": "bad endpoint"}).encode(), "invalid_identifier",
         "endpoint"),
        (json.dumps({**GOOD, "partition": "31-10-2018"}).encode(), "invalid_identifier",
         "partition"),
        (json.dumps({**GOOD, "uri": "relative/x"}).encode(), "invalid_identifier", "URI"),
        (json.dumps({**GOOD, "lineage": ["has space"]}).encode(), "invalid_identifier",
         "lineage"),
    ],
)
async def test_bad_publish_is_a_400_and_changes_nothing(
    service: Service, body: bytes, code: str, mentions: str
) -> None:
    status, answer = await service.post(body)
    assert (status, answer["code"]) == (400, code)
    assert mentions in str(answer["error"])
    await service.assert_nothing_published()


async def test_a_keyed_publish_is_201_then_replayed_with_200(service: Service) -> None:
    status, headers, first = await service.publish(json.dumps(GOOD).encode(),
                                                   headers={"Idempotency-Key": KEY})
    assert status == 201
    assert "Idempotent-Replayed" not in headers
    retry = json.dumps({**GOOD, "uri": "/data/plays-retry"}).encode()
    status, headers, again = await service.publish(retry, headers={"Idempotency-Key": KEY})
    assert (status, headers["Idempotent-Replayed"], again) == (200, "true", first)
    assert headers["Location"] == f"/v1/revisions/{first['id']}"
    assert [revision_to_json(r) for r in await service.backend.changes(0)] == [first]


async def test_a_key_reused_on_another_partition_is_a_409(service: Service) -> None:
    status, first = await service.post(json.dumps(GOOD).encode(),
                                       headers={"Idempotency-Key": KEY})
    assert status == 201
    other_day = json.dumps({**GOOD, "partition": "2018-11-01"}).encode()
    status, answer = await service.post(other_day, headers={"Idempotency-Key": KEY})
    assert (status, answer["code"]) == (409, "idempotency_key_reused")
    assert KEY in str(answer["error"])
    assert [revision_to_json(r) for r in await service.backend.changes(0)] == [first]


@pytest.mark.parametrize("key", ["", "has space", "-dash-first", "x" * 201, "a/b", "a;b=c"])
async def test_a_malformed_idempotency_key_is_a_400_and_changes_nothing(
    service: Service, key: str
) -> None:
    status, answer = await service.post(json.dumps(GOOD).encode(),
                                        headers={"Idempotency-Key": key})
    assert (status, answer["code"]) == (400, "invalid_identifier")
    assert "idempotency key" in str(answer["error"])
    await service.assert_nothing_published()


async def test_two_idempotency_keys_are_a_400(service: Service) -> None:
    two = [("Idempotency-Key", f"{KEY}-a"), ("Idempotency-Key", f"{KEY}-b")]
    status, _headers, answer = await service.publish(json.dumps(GOOD).encode(), headers=two)
    assert (status, answer["code"]) == (400, "bad_request")
    await service.assert_nothing_published()


async def test_oversize_body_is_a_413_and_changes_nothing(service: Service) -> None:
    body = json.dumps({**GOOD, "uri": "/data/" + "x" * 2000}).encode()
    status, answer = await service.post(body)
    assert (status, answer["code"]) == (413, "too_large")
    await service.assert_nothing_published()


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/endpoints/plays/partitions/2018-10-31/latest", 404, "unknown_revision"),
        ("/v1/revisions/no-such-revision", 404, "unknown_revision"),
        ("/v1/changes?since=abc", 400, "bad_request"),
        ("/v1/changes?since=1.5", 400, "bad_request"),
        ("/v1/changes?wait=-1", 400, "bad_request"),
        ("/v1/changes?limit=0", 400, "bad_request"),
        ("/v1/changes?wait=nan", 400, "bad_request"),
        ("/v1/nothing-here", 404, "not_found"),
    ],
)
async def test_bad_reads_answer_json_errors(
    service: Service, path: str, status: int, code: str
) -> None:
    got_status, body = await service.get(path)
    assert (got_status, body["code"]) == (status, code)
    assert body["error"]


async def test_health(service: Service) -> None:
    assert await service.get("/healthz") == (200, {"status": "ok"})


async def test_long_poll_returns_as_soon_as_a_revision_is_published(service: Service) -> None:
    client = await HttpRegistry.open(service.url, token=TOKEN)
    found: list[Revision] = []
    waited: list[float] = []

    async def wait() -> None:
        begun = anyio.current_time()
        found.extend(await client.wait_for_changes(0, 10))
        waited.append(anyio.current_time() - begun)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(wait)
            await anyio.sleep(0.3)
            published = await client.publish("plays", DAY, "/data/x")
    finally:
        await client.aclose()
    assert found == [published]
    assert 0.25 <= waited[0] < 1.5  # woken by the publish, not by the 10 s wait


async def test_long_poll_returns_empty_after_the_wait(service: Service) -> None:
    client = await HttpRegistry.open(service.url, token=TOKEN)
    try:
        started = anyio.current_time()
        assert await client.wait_for_changes(0, 0.5) == []
        assert 0.45 <= anyio.current_time() - started < 2.5
    finally:
        await client.aclose()


async def test_long_poll_is_capped_by_the_service(tmp_path: Path) -> None:
    options = ServiceOptions(long_poll_max_seconds=1)
    async with started(tmp_path, options) as service:
        client = await HttpRegistry.open(service.url)
        try:
            begun = anyio.current_time()
            assert await client.wait_for_changes(0, 30) == []
            assert anyio.current_time() - begun < 3
        finally:
            await client.aclose()


async def test_shutdown_answers_waiting_long_polls(tmp_path: Path) -> None:
    found: list[object] = []

    async def wait(client: HttpRegistry) -> None:
        try:
            found.append(await client.wait_for_changes(0, 30))
        finally:
            await client.aclose()

    begun = anyio.current_time()
    with anyio.fail_after(10):
        # The service shuts down first; the task group then waits for the long-poll.
        async with anyio.create_task_group() as group, started(
            tmp_path, ServiceOptions()
        ) as service:
            group.start_soon(wait, await HttpRegistry.open(service.url))
            await anyio.sleep(0.3)
    assert found == [[]]
    assert anyio.current_time() - begun < 3


@dataclass
class Receiver:
    """A webhook subscriber: answers ``statuses`` in turn (then 200), records every call."""

    statuses: list[int] = field(default_factory=list)
    delay: float = 0.0
    received: list[tuple[CIMultiDict[str], bytes]] = field(default_factory=list)
    keep_alive: bool = True
    """False: each answer closes its connection (as some proxies do), so each delivery
    needs a connection of the notifier's pool afresh."""
    retry_after: str | None = None
    """Sent with each answer that is not a 200."""
    received_at: list[float] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.headers.copy(), await request.read()))
        self.received_at.append(anyio.current_time())
        await anyio.sleep(self.delay)
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {} if self.keep_alive else {"Connection": "close"}
        if self.retry_after is not None and status != 200:
            headers["Retry-After"] = self.retry_after
        return web.Response(status=status, headers=headers)

    async def wait_for(self, count: int) -> None:
        with anyio.fail_after(5):
            while len(self.received) < count:
                await anyio.sleep(0.02)


@asynccontextmanager
async def receiving(receiver: Receiver) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/hook"
    finally:
        await runner.cleanup()


def notifying(*subscribers: str, attempts: int = 5) -> ServiceOptions:
    return ServiceOptions(token=TOKEN, webhook_secret=SECRET, subscribers=subscribers,
                          notify_attempts=attempts, notify_backoff_seconds=0.05)


async def test_subscribers_get_signed_notifications(tmp_path: Path) -> None:
    first, second = Receiver(), Receiver()
    async with receiving(first) as one, receiving(second) as two, started(
        tmp_path, notifying(one, two)
    ) as service:
        status, published = await service.post(json.dumps(GOOD).encode())
        assert status == 201
        await first.wait_for(1)
        await second.wait_for(1)
    for receiver in (first, second):
        [(headers, body)] = receiver.received
        verify(SECRET.encode(), headers, body)
        assert json.loads(body) == published


async def test_a_replayed_publish_notifies_no_subscriber(tmp_path: Path) -> None:
    receiver = Receiver()
    keyed = {"Idempotency-Key": KEY}
    async with receiving(receiver) as hook, started(tmp_path, notifying(hook)) as service:
        status, published = await service.post(json.dumps(GOOD).encode(), headers=keyed)
        assert status == 201
        await receiver.wait_for(1)
        for _ in range(3):
            assert (await service.post(json.dumps(GOOD).encode(), headers=keyed))[0] == 200
        # Another publish after the replays: once it is delivered, the replays' would be too.
        other = json.dumps({**GOOD, "uri": "/data/other"}).encode()
        assert (await service.post(other))[0] == 201
        await receiver.wait_for(2)
        await anyio.sleep(0.2)
    assert len(receiver.received) == 2
    assert json.loads(receiver.received[0][1]) == published


async def test_failing_subscriber_is_retried_with_one_delivery_id(tmp_path: Path) -> None:
    receiver = Receiver(statuses=[500, 500])
    async with receiving(receiver) as hook, started(tmp_path, notifying(hook)) as service:
        assert (await service.post(json.dumps(GOOD).encode()))[0] == 201
        await receiver.wait_for(3)
        await anyio.sleep(0.3)  # delivered on the third attempt: no fourth
    assert len(receiver.received) == 3
    assert len({headers[DELIVERY_HEADER] for headers, _ in receiver.received}) == 1
    for headers, body in receiver.received:
        verify(SECRET.encode(), headers, body)


@pytest.mark.parametrize(("retry_after", "waited"), [("1", 1.0), ("0", 0.05), ("-5", 0.05),
                                                      ("soon", 0.05), ("1e9", 0.05)])
async def test_a_retry_waits_as_long_as_the_subscriber_asks(
    tmp_path: Path, retry_after: str, waited: float
) -> None:
    """A charon daemon answers 503 with Retry-After (its trigger queue full, its state
    store down): the next attempt waits that long, or the backoff (0.05 s here) when
    that is longer or the header is no whole number of seconds up to a minute."""
    receiver = Receiver(statuses=[503], retry_after=retry_after)
    async with receiving(receiver) as hook, started(tmp_path, notifying(hook)) as service:
        assert (await service.post(json.dumps(GOOD).encode()))[0] == 201
        await receiver.wait_for(2)
    first, second = receiver.received_at
    assert waited <= second - first < waited + 0.5


@pytest.mark.parametrize(("statuses", "attempts", "calls"), [([400], 5, 1), ([503] * 5, 3, 3)])
async def test_retries_stop(tmp_path: Path, statuses: list[int], attempts: int,
                            calls: int) -> None:
    """A 4xx is a refusal, not a failure; and retries end after notify_attempts."""
    receiver = Receiver(statuses=statuses)
    options = notifying("", attempts=attempts)
    async with receiving(receiver) as hook, started(
        tmp_path, dataclasses.replace(options, subscribers=(hook,))
    ) as service:
        assert (await service.post(json.dumps(GOOD).encode()))[0] == 201
        await receiver.wait_for(calls)
        await anyio.sleep(0.4)
    assert len(receiver.received) == calls


async def test_failed_notifications_are_a_line_not_a_flood(tmp_path: Path) -> None:
    """A subscriber refusing every notification (or down) is said once, then counted."""
    receiver = Receiver(statuses=[400] * 5)
    with structlog.testing.capture_logs() as logs:
        async with receiving(receiver) as hook, started(tmp_path, notifying(hook)) as service:
            for n in range(5):
                body = json.dumps({**GOOD, "uri": f"/data/plays-{n}"}).encode()
                assert (await service.post(body))[0] == 201
            await receiver.wait_for(5)
            await anyio.sleep(0.2)
    failed = [entry for entry in logs if entry["log_level"] == "warning"]
    assert [(entry["event"], entry["subscriber"], entry["notifications"], entry["error"])
            for entry in failed] == [("notifications failed", hook, 1, "HTTP 400")]


async def test_a_subscriber_not_watching_the_endpoint_is_no_failure(tmp_path: Path) -> None:
    """A daemon answers 404 for an endpoint it does not watch: delivered, not interested;
    so no retry and no warning for every publish nobody watches."""
    receiver = Receiver(statuses=[404])
    with structlog.testing.capture_logs() as logs:
        async with receiving(receiver) as hook, started(tmp_path, notifying(hook)) as service:
            assert (await service.post(json.dumps(GOOD).encode()))[0] == 201
            await receiver.wait_for(1)
            await anyio.sleep(0.3)  # a retry would come after 0.05 s
    assert len(receiver.received) == 1
    notices = [entry for entry in logs if entry.get("subscriber") == hook]
    assert [(entry["event"], entry["log_level"]) for entry in notices] == [
        ("subscriber does not watch the endpoint", "info")
    ]
    assert [entry for entry in logs if entry["log_level"] in ("warning", "error")] == []


@contextmanager
def paused_subscribers(count: int) -> Iterator[list[socket.socket]]:
    """Subscribers whose processes are paused (SIGSTOP) or hung: the kernel takes their
    connections, and nothing ever answers them."""
    with ExitStack() as stack:
        yield [stack.enter_context(socket.create_server(("127.0.0.1", 0), backlog=64))
               for _ in range(count)]


def hook_of(listener: socket.socket) -> str:
    return f"http://127.0.0.1:{listener.getsockname()[1]}/hook"


@pytest.mark.parametrize("paused", [1, 30])
async def test_subscribers_that_never_answer_hold_back_no_other(tmp_path: Path,
                                                                paused: int) -> None:
    """Every replica of a daemon subscribes; one paused must not keep the others'
    notifications waiting out its timeouts and retries (10 s an attempt), nor may 30
    take every connection of the notifier's pool."""
    live = Receiver(keep_alive=False)
    with paused_subscribers(paused) as stuck:
        async with receiving(live) as hook, started(
            tmp_path, notifying(*map(hook_of, stuck), hook)
        ) as service:
            for n in range(12):
                body = json.dumps({**GOOD, "uri": f"/data/plays-{n}"}).encode()
                assert (await service.post(body))[0] == 201
            await live.wait_for(12)
            for listener in stuck:  # their deliveries now fail at once: no wait to stop
                listener.close()
    assert sorted(json.loads(body)["uri"] for _, body in live.received) == sorted(
        f"/data/plays-{n}" for n in range(12))


async def test_publish_does_not_wait_for_subscribers(tmp_path: Path) -> None:
    receiver = Receiver(delay=1.0)
    async with receiving(receiver) as hook, started(tmp_path, notifying(hook)) as service:
        begun = anyio.current_time()
        assert (await service.post(json.dumps(GOOD).encode()))[0] == 201
        assert anyio.current_time() - begun < 0.5
        await receiver.wait_for(1)


async def test_a_full_queue_drops_and_logs_a_line_not_a_flood(tmp_path: Path) -> None:
    """A subscriber down for a day would be a warning a publish: each subscriber's drops
    are said at most every 10 s, with how many."""
    backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
    revision = await backend.publish("plays", DAY, "/data/x")
    await backend.aclose()
    hooks = ("http://127.0.0.1:9/hook", "http://127.0.0.1:10/hook")
    options = dataclasses.replace(notifying(*hooks), notify_queue_size=1)
    async with aiohttp.ClientSession() as session:
        notifier = Notifier(session, options)
        try:
            with structlog.testing.capture_logs() as logs:
                for _ in range(51):  # the first queued (no worker runs), 50 dropped
                    notifier.submit(revision)
        finally:
            notifier.close()
    assert [(entry["event"], entry["subscriber"], entry["reason"], entry["notifications"])
            for entry in logs] == [("notifications dropped", hook, "queue full", 1)
                                   for hook in hooks]


@pytest.mark.parametrize(
    ("host", "options", "refused"),
    [
        (ALL_INTERFACES, ServiceOptions(), "without a token"),
        ("192.0.2.10", ServiceOptions(), "without a token"),
        ("registry.example", ServiceOptions(), "without a token"),
        ("127.0.0.1", ServiceOptions(subscribers=("http://127.0.0.1:9/",)), "WEBHOOK_SECRET"),
        ("127.0.0.1", ServiceOptions(max_body_bytes=0), "max_body_bytes"),
    ],
)
def test_unsafe_settings_are_refused(host: str, options: ServiceOptions, refused: str) -> None:
    with pytest.raises(ConfigError, match=refused):
        check_options(host, options)


async def test_the_service_does_not_run_on_another_service(service: Service) -> None:
    client = await HttpRegistry.open(service.url)
    try:
        with pytest.raises(ConfigError, match="SQLite or PostgreSQL"):
            check_served(client)
    finally:
        await client.aclose()


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_loopback_may_go_without_a_token(host: str) -> None:
    check_options(host, ServiceOptions())
    check_options(ALL_INTERFACES, ServiceOptions(token=TOKEN))
