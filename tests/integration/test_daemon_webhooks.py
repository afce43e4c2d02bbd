"""The daemon's webhooks over real HTTP: every rejection path changes nothing, and no
delivery is accepted twice, across restarts and replicas."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import aiohttp
import anyio
import asyncpg
import pytest

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.adapters import build_engine, local_job_runner
from orchestrator.config import load_settings
from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.http_api import daemon_app
from orchestrator.model import Asked
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.postgres import POOL_MAX_SIZE, PostgresStateStore
from orchestrator.stores.state.sqlite import SqliteStateStore
from orchestrator.testing.postgres import ADMIN_DSN
from orchestrator.testing.stores import InMemoryStateStore
from orchestrator.testing.world import DaemonWorld
from orchestrator.web import BODY_SECONDS
from orchestrator.web.http import serve
from orchestrator.web.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature,
    signed_headers,
)
from sensors.facts import Root, Trigger
from tests.support.raw_http import exchange
from tests.support.worlds import TODAY, make_world, publish_day, running

SECRET = "webhook-secret"
PARTITION = {"endpoint": END_CONTENT_FACT, "partition": "2018-10-31"}


@dataclass
class Client:
    world: DaemonWorld
    session: aiohttp.ClientSession
    base: str

    async def post(
        self, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str]]:
        async with self.session.post(f"{self.base}{path}", data=body,
                                     headers=headers or {}) as response:
            return response.status, await response.json()

    async def signed(self, path: str, payload: object, **kwargs: str) -> tuple[int, dict[str, str]]:
        body = json.dumps(payload).encode()
        return await self.post(path, body, {**signed_headers(SECRET.encode(), body), **kwargs})

    def nothing_changed(self) -> bool:
        metrics = self.world.daemon.metrics
        return (metrics.triggers.value(source="webhook") == 0
                and self.world.runner.calls == [])


def keeping_state_in(world: DaemonWorld, state: StateStore) -> DaemonWorld:
    """The world with its daemon built as ``charon daemon`` does, over ``state``: the
    store a real deployment's replicas share and its restarts find again."""
    adapters = dataclasses.replace(world.adapters, state=state)
    settings = world.daemon.settings
    engine = build_engine(adapters, settings, world.runner, local_runner=local_job_runner())
    return dataclasses.replace(world, daemon=Daemon(settings, adapters, engine,
                                                    today=lambda: TODAY))


@asynccontextmanager
async def daemon_client(
    secret: str = SECRET, max_body_bytes: int = 1024, *, previous_secret: str = "",
    state: StateStore | None = None, body_seconds: float = BODY_SECONDS,
) -> AsyncIterator[Client]:
    world = make_world(secret=secret)
    if state is not None:
        world = keeping_state_in(world, state)
    app = daemon_app(world.daemon, secret=secret, previous_secret=previous_secret,
                     max_body_bytes=max_body_bytes, body_seconds=body_seconds)
    async with running(world), anyio.create_task_group() as group:
        port = await group.start(serve, app, "127.0.0.1", 0)
        async with aiohttp.ClientSession() as session:
            yield Client(world, session, f"http://127.0.0.1:{port}")
        group.cancel_scope.cancel()


async def test_a_signed_partition_hook_fires_the_run_at_once() -> None:
    async with daemon_client() as client:
        world = client.world
        await publish_day(world)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        late = await world.registry.publish(END_CONTENT_FACT, "2018-10-31", "/data/ecf/r2")
        status, answer = await client.signed("/hooks/partitions", PARTITION)
        assert (status, answer) == (202, {"status": "accepted"})
        await world.wait_for(lambda: len(world.runner.calls) == 2)
        assert f"--endContentFact={late.uri}/*.avro" in world.runner.calls[-1]
        assert world.daemon.metrics.triggers.value(source="webhook") == 1


async def test_a_run_hook_triggers_a_day() -> None:
    async with daemon_client() as client:
        await publish_day(client.world, "2018-03-01")
        status, _ = await client.signed("/hooks/runs", {"workflow": "top_artists",
                                                        "date": "2018-03-01"})
        assert status == 202
        await client.world.wait_for(lambda: len(client.world.runner.calls) == 1)
        with anyio.fail_after(5):  # kept with its delivery until evaluated
            while await client.world.state.asked():
                await anyio.sleep(0.01)


def _stale(body: bytes) -> dict[str, str]:
    return signed_headers(SECRET.encode(), body, now=time.time() - 600)


def _future(body: bytes) -> dict[str, str]:
    return signed_headers(SECRET.encode(), body, now=time.time() + 600)


BODY = json.dumps(PARTITION).encode()
HUGE_TIMESTAMP = "9" * 5000


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    # Headers made as each test runs: a timestamp taken when the tests are collected
    # would be minutes old (or no longer in the future) by then.
    [
        (BODY, dict, 401, "unsigned"),
        (BODY, lambda: signed_headers(b"wrong-secret", BODY), 401, "bad signature"),
        (BODY, lambda: _stale(BODY), 401, "stale"),
        (BODY, lambda: _future(BODY), 401, "s in the future"),
        (BODY, lambda: {TIMESTAMP_HEADER: HUGE_TIMESTAMP, DELIVERY_HEADER: "d-1",
                        SIGNATURE_HEADER: signature(SECRET.encode(), HUGE_TIMESTAMP, BODY)},
         401, "seconds since the epoch"),
        (BODY + b" ", lambda: signed_headers(SECRET.encode(), BODY), 401, "bad signature"),
        (b"x" * 2048, dict, 413, "over 1024 bytes"),
    ],
    ids=["unsigned", "wrong-secret", "stale", "future", "huge-timestamp", "tampered",
         "oversized"],
)
async def test_unauthentic_or_oversized_requests_are_refused(
    body: bytes, headers: Callable[[], dict[str, str]], status: int, reason: str
) -> None:
    async with daemon_client() as client:
        await publish_day(client.world)
        got, answer = await client.post("/hooks/partitions", body, headers())
        assert got == status
        assert reason in answer["error"]
        await anyio.sleep(0.05)
        assert client.world.daemon.metrics.triggers.value(source="webhook") == 0


@pytest.mark.parametrize(
    ("path", "payload", "status", "reason"),
    [
        ("/hooks/partitions", ["not", "an", "object"], 400, "JSON object"),
        ("/hooks/partitions", {"endpoint": END_CONTENT_FACT}, 400, "'partition'"),
        ("/hooks/partitions", {"endpoint": "bad endpoint!", "partition": "2018-10-31"}, 400,
         "invalid endpoint"),
        ("/hooks/partitions", {"endpoint": END_CONTENT_FACT, "partition": "31/10"}, 400,
         "invalid partition"),
        ("/hooks/partitions", {"endpoint": "some.other.endpoint", "partition": "2018-10-31"},
         404, "no watched workflow"),
        ("/hooks/runs", {"workflow": "nope", "date": "2018-10-31"}, 404, "no workflow"),
        ("/hooks/runs", {"workflow": "top_artists", "date": "2018-02-30"}, 400,
         "invalid date"),
    ],
)
async def test_malformed_or_unknown_requests_are_refused(
    path: str, payload: object, status: int, reason: str
) -> None:
    async with daemon_client() as client:
        await publish_day(client.world)
        await client.world.wait_for(lambda: len(client.world.runner.calls) == 1)
        client.world.runner.calls.clear()
        got, answer = await client.signed(path, payload)
        assert got == status
        assert reason in answer["error"]
        await anyio.sleep(0.05)
        assert client.nothing_changed()


async def test_malformed_json_is_refused() -> None:
    async with daemon_client() as client:
        body = b"{not json"
        got, answer = await client.post("/hooks/partitions", body,
                                        signed_headers(SECRET.encode(), body))
        assert got == 400
        assert "not valid JSON" in answer["error"]
        assert client.nothing_changed()


async def test_a_replayed_delivery_is_accepted_once() -> None:
    async with daemon_client() as client:
        body = json.dumps(PARTITION).encode()
        headers = signed_headers(SECRET.encode(), body, delivery_id="delivery-1")
        first, _ = await client.post("/hooks/partitions", body, headers)
        second, answer = await client.post("/hooks/partitions", body, headers)
        assert (first, second) == (202, 200)
        assert "duplicate" in answer["status"]
        assert client.world.daemon.metrics.triggers.value(source="webhook") == 1


async def test_a_refused_delivery_can_be_retried_under_its_id() -> None:
    async with daemon_client() as client:
        bad = json.dumps({"endpoint": END_CONTENT_FACT}).encode()
        headers = signed_headers(SECRET.encode(), bad, delivery_id="delivery-2")
        assert (await client.post("/hooks/partitions", bad, headers))[0] == 400
        status, _ = await client.signed("/hooks/partitions", PARTITION,
                                        **{DELIVERY_HEADER: "delivery-2"})
        assert status == 202


async def test_without_a_secret_webhooks_are_disabled() -> None:
    async with daemon_client(secret="") as client:
        got, answer = await client.post("/hooks/partitions", BODY,
                                        signed_headers(b"anything", BODY))
        assert got == 503
        assert "CHARON_WEBHOOK_SECRET" in answer["error"]
        assert client.nothing_changed()


async def test_status_and_metrics_are_served() -> None:
    async with daemon_client() as client:
        async with client.session.get(f"{client.base}/status") as response:
            status = await response.json()
        assert status["workflows"][0]["name"] == "top_artists"
        async with client.session.get(f"{client.base}/metrics") as response:
            text = await response.text()
        assert "charon_trigger_to_launch_seconds_bucket" in text
        assert 'charon_runs{state="succeeded"} 0' in text


async def test_the_partition_grid_is_served_as_html() -> None:
    async with daemon_client() as client, client.session.get(f"{client.base}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "<h1>Partitions</h1>" in page
    assert "top_artists" in page
    assert "2018-10-31" in page  # the day the window watches


@pytest.mark.parametrize(
    "day", ["9999-12-31", "1899-12-31", "2018-10-31\n", "\uff12\uff10\uff11\uff18-10-31"]
)
async def test_a_signed_run_hook_for_a_day_out_of_range_is_refused_and_the_daemon_lives_on(
    day: str,
) -> None:
    async with daemon_client() as client:
        got, answer = await client.signed("/hooks/runs", {"workflow": "top_artists",
                                                          "date": day})
        assert got == 400
        assert "invalid date" in answer["error"]
        # The daemon is still there, and still takes a good request.
        await publish_day(client.world, "2018-03-01")
        status, _ = await client.signed("/hooks/runs", {"workflow": "top_artists",
                                                        "date": "2018-03-01"})
        assert status == 202
        await client.world.wait_for(lambda: len(client.world.runner.calls) == 1)


async def test_a_signed_body_sent_in_pieces_is_read_whole() -> None:
    async with daemon_client() as client:
        await publish_day(client.world, "2018-03-01")
        body = json.dumps({"workflow": "top_artists", "date": "2018-03-01"}).encode()

        async def slowly() -> AsyncIterator[bytes]:
            for start in range(0, len(body), 7):
                yield body[start:start + 7]
                await anyio.sleep(0.01)

        headers = signed_headers(SECRET.encode(), body)
        async with client.session.post(f"{client.base}/hooks/runs", data=slowly(),
                                       headers=headers) as response:
            assert response.status == 202, await response.text()
        await client.world.wait_for(lambda: len(client.world.runner.calls) == 1)


RUN = {"workflow": "top_artists", "date": "2018-10-31"}
RUN_BODY = json.dumps(RUN).encode()


async def test_a_delivery_replayed_after_a_daemon_restart_is_refused(tmp_path: Path) -> None:
    headers = signed_headers(SECRET.encode(), RUN_BODY, delivery_id="delivery-restart")
    lives: list[list[int]] = []
    for _ in range(2):  # the daemon, then the daemon restarted over the same state file
        state = await SqliteStateStore.open(tmp_path / "state.sqlite")
        try:
            async with daemon_client(state=state) as client:
                replayed, _ = await client.post("/hooks/runs", RUN_BODY, headers)
                fresh, _ = await client.signed("/hooks/runs", RUN)
                lives.append([replayed, fresh])
        finally:
            await state.aclose()
    assert lives == [[202, 202], [200, 202]]


async def at_once(
    clients: list[Client], path: str, body: bytes, headers: dict[str, str]
) -> list[tuple[int, dict[str, str]]]:
    """The same request sent to every client at the same time: their answers."""
    answers: list[tuple[int, dict[str, str]]] = []

    async def post(client: Client) -> None:
        answers.append(await client.post(path, body, headers))

    async with anyio.create_task_group() as group:
        for client in clients:
            group.start_soon(post, client)
    return answers


async def test_replicas_on_one_postgres_accept_a_delivery_once(postgres_dsn: str) -> None:
    stores = [await PostgresStateStore.open(postgres_dsn) for _ in range(2)]
    try:
        async with daemon_client(state=stores[0]) as first, \
                daemon_client(state=stores[1]) as second:
            for round_ in range(5):  # a race is a race: run it several times
                headers = signed_headers(SECRET.encode(), RUN_BODY,
                                         delivery_id=f"delivery-{round_}")
                answers = await at_once([first, second], "/hooks/runs", RUN_BODY, headers)
                assert sorted(answers, key=lambda a: a[0]) == [
                    (200, {"status": "duplicate delivery ignored"}),
                    (202, {"status": "accepted"}),
                ]
        accepted = [c.world.daemon.metrics.triggers.value(source="webhook")
                    for c in (first, second)]
        assert sum(accepted) == 5
    finally:
        for store in stores:
            await store.aclose()


@asynccontextmanager
async def unreachable(dsn: str) -> AsyncIterator[None]:
    """The database refuses connections and drops those it had, then comes back."""
    name = dsn.rsplit("/", 1)[1]  # a throwaway database's name: ours, a uuid
    admin = await asyncpg.connect(ADMIN_DSN)
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                            " WHERE datname = $1", name)
        yield
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()


async def test_while_the_state_store_is_down_no_webhook_is_accepted(postgres_dsn: str) -> None:
    store = await PostgresStateStore.open(postgres_dsn)
    try:
        async with daemon_client(state=store) as client:
            async with unreachable(postgres_dsn):
                headers = signed_headers(SECRET.encode(), RUN_BODY, delivery_id="delivery-1")
                async with client.session.post(f"{client.base}/hooks/runs", data=RUN_BODY,
                                               headers=headers) as response:
                    assert response.status == 503
                    assert response.headers["Retry-After"] == "5"
                    assert await response.json() == {
                        "error": "the state store is unavailable, retry later",
                        "code": "unavailable",
                    }
            assert client.nothing_changed()
            # Back up: the sender's retry, under the same id, is accepted (once the pool
            # has let go of the connections the outage cut).
            statuses: list[int] = []
            while not statuses or statuses[-1] == 503:
                status, _ = await client.signed("/hooks/runs", RUN,
                                                **{DELIVERY_HEADER: "delivery-1"})
                statuses.append(status)
            assert statuses[-1] == 202
            assert len(statuses) <= POOL_MAX_SIZE + 1
    finally:
        await store.aclose()


async def test_a_rotated_secret_passes_while_it_is_the_previous_one(tmp_path: Path) -> None:
    previous = tmp_path / "previous-secret"
    previous.write_text("old-secret\n")
    rotating = load_settings({"CHARON_WEBHOOK_SECRET": SECRET,
                              "CHARON_WEBHOOK_PREVIOUS_SECRET_FILE": str(previous)}).secrets
    rotated = load_settings({"CHARON_WEBHOOK_SECRET": SECRET}).secrets

    def signed_by(*secrets: str) -> dict[str, str]:
        headers = signed_headers(secrets[0].encode(), RUN_BODY)
        headers[SIGNATURE_HEADER] = ",".join(
            signature(s.encode(), headers[TIMESTAMP_HEADER], RUN_BODY) for s in secrets
        )
        return headers

    statuses: list[list[int]] = []
    for secrets in (rotating, rotated):
        async with daemon_client(secrets.webhook_secret,
                                 previous_secret=secrets.webhook_previous_secret) as client:
            statuses.append([
                (await client.post("/hooks/runs", RUN_BODY, signed_by(*signers)))[0]
                for signers in (["old-secret"], [SECRET], ["old-secret", SECRET])
            ])
    assert statuses == [[202, 202, 202], [401, 202, 202]]


async def test_a_header_that_is_not_utf8_is_refused_cleanly() -> None:
    """A delivery id must not reach the state store as undecodable bytes."""
    async with daemon_client() as client:
        headers = signed_headers(SECRET.encode(), RUN_BODY)
        lines = [b"POST /hooks/runs HTTP/1.1", b"Host: 127.0.0.1",
                 b"Content-Type: application/json",
                 f"Content-Length: {len(RUN_BODY)}".encode(),
                 *(f"{k}: {v}".encode() for k, v in headers.items() if k != DELIVERY_HEADER),
                 DELIVERY_HEADER.encode() + b": delivery-\xff\xfe"]
        head, body = await exchange(client.base, lines, RUN_BODY)
        assert head.startswith(b"HTTP/1.1 401")
        assert json.loads(body)["code"] == "signature"
        assert client.nothing_changed()


async def test_a_delivery_the_trigger_queue_could_not_take_is_accepted_when_sent_again() -> None:
    world = make_world(secret=SECRET)
    app = daemon_app(world.daemon, secret=SECRET, max_body_bytes=1024)
    body = json.dumps({"workflow": "top_artists", "date": "2018-03-01"}).encode()
    headers = signed_headers(SECRET.encode(), body)
    async with anyio.create_task_group() as group:
        port = await group.start(serve, app, "127.0.0.1", 0)
        async with aiohttp.ClientSession() as session:
            client = Client(world, session, f"http://127.0.0.1:{port}")
            # Not running yet, the daemon has no queue to put the trigger in.
            status, answer = await client.post("/hooks/runs", body, headers)
            assert (status, answer["code"]) == (503, "queue_full")
            async with running(world):
                status, answer = await client.post("/hooks/runs", body, headers)
                assert (status, answer) == (202, {"status": "accepted"})
        group.cancel_scope.cancel()


class QueueFillingStateStore(InMemoryStateStore):
    """Other triggers fill the daemon's queue while it records a delivery id."""

    daemon: Daemon | None = None

    async def remember_delivery(self, delivery_id: str, expires: datetime,
                                asked: Asked | None = None) -> bool:
        first = await super().remember_delivery(delivery_id, expires, asked)
        assert self.daemon is not None
        while self.daemon.accept(Trigger("webhook")):
            pass
        return first


async def test_a_delivery_recorded_as_the_trigger_queue_filled_is_acted_on() -> None:
    """Refused once its id is recorded, the delivery's retry would be ignored as a
    duplicate: a run asked for a day outside the window would never be evaluated."""
    store = QueueFillingStateStore()
    async with daemon_client(state=store) as client:
        store.daemon = client.world.daemon
        status, answer = await client.signed("/hooks/runs",
                                             {"workflow": "top_artists", "date": "2018-03-01"})
        assert (status, answer) == (202, {"status": "accepted"})
        await client.world.wait_for(
            lambda: Root("top_artists", date(2018, 3, 1)) in client.world.daemon.roots)


class CrashingStateStore(InMemoryStateStore):
    """A store failing as no code foresaw: a bug, not an outage."""

    async def remember_delivery(self, delivery_id: str, expires: datetime,
                                asked: Asked | None = None) -> bool:
        raise RuntimeError("the store's password is hunter2")


async def test_a_handler_that_crashes_answers_a_json_500_that_tells_nothing_of_why() -> None:
    async with daemon_client(state=CrashingStateStore()) as client, client.session.post(
        f"{client.base}/hooks/runs", data=RUN_BODY,
        headers=signed_headers(SECRET.encode(), RUN_BODY),
    ) as response:
        text = await response.text()
        assert (response.status, response.content_type) == (500, "application/json")
        assert json.loads(text)["code"] == "internal"
        assert "hunter2" not in text
        assert "Traceback" not in text


async def test_a_signed_body_nested_too_deep_is_refused_as_malformed() -> None:
    async with daemon_client(max_body_bytes=300_000) as client:
        body = b"[" * 100_000 + b"]" * 100_000
        status, answer = await client.post("/hooks/runs", body,
                                           signed_headers(SECRET.encode(), body))
        assert (status, answer["code"]) == (400, "malformed")
        assert client.nothing_changed()


@pytest.mark.parametrize(("method", "path", "status", "code"), [
    ("GET", "/hooks/nothing-here", 404, "not_found"),
    ("GET", "/hooks/runs", 405, "method_not_allowed"),
    ("DELETE", "/status", 405, "method_not_allowed"),
    ("GET", "/status?limit=0", 400, "malformed"),
    ("GET", "/status?state=sleeping", 400, "malformed"),
    ("GET", "/status?after=top_artists/2018-13-01", 400, "malformed"),
])
async def test_routing_refusals_are_json_errors(method: str, path: str, status: int,
                                                code: str) -> None:
    async with daemon_client() as client, client.session.request(
        method, f"{client.base}{path}"
    ) as response:
        assert response.status == status
        assert (await response.json())["code"] == code


async def test_a_body_that_stalls_gets_408_and_changes_nothing() -> None:
    """A client that sends its headers and part of its body, then nothing: answered when
    the body's time is up, not held forever."""
    async with daemon_client(body_seconds=0.3) as client:
        headers = signed_headers(SECRET.encode(), RUN_BODY)
        lines = [b"POST /hooks/runs HTTP/1.1", b"Host: 127.0.0.1",
                 b"Content-Type: application/json",
                 f"Content-Length: {len(RUN_BODY) + 100}".encode(),
                 *(f"{k}: {v}".encode() for k, v in headers.items())]
        with anyio.fail_after(5):
            head, body = await exchange(client.base, lines, RUN_BODY)
        assert head.startswith(b"HTTP/1.1 408")
        assert json.loads(body)["code"] == "timeout"
        assert client.nothing_changed()
