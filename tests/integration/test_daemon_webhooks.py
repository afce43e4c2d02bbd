"""The daemon's webhooks over real HTTP: every rejection path changes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiohttp
import anyio
import pytest

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.daemon.http_api import daemon_app
from orchestrator.testing.world import DaemonWorld
from orchestrator.web.http import serve
from orchestrator.web.signing import DELIVERY_HEADER, signed_headers
from tests.support.worlds import make_world, publish_day, running

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


@asynccontextmanager
async def daemon_client(secret: str = SECRET, max_body_bytes: int = 1024) -> AsyncIterator[Client]:
    world = make_world(secret=secret)
    app = daemon_app(world.daemon, secret=secret, max_body_bytes=max_body_bytes)
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


def _stale(body: bytes) -> dict[str, str]:
    return signed_headers(SECRET.encode(), body, now=time.time() - 600)


BODY = json.dumps(PARTITION).encode()


@pytest.mark.parametrize(
    ("body", "headers", "status", "reason"),
    [
        (BODY, {}, 401, "unsigned"),
        (BODY, signed_headers(b"wrong-secret", BODY), 401, "bad signature"),
        (BODY, _stale(BODY), 401, "stale"),
        (BODY + b" ", signed_headers(SECRET.encode(), BODY), 401, "bad signature"),
        (b"x" * 2048, {}, 413, "over 1024 bytes"),
    ],
    ids=["unsigned", "wrong-secret", "stale", "tampered", "oversized"],
)
async def test_unauthentic_or_oversized_requests_are_refused(
    body: bytes, headers: dict[str, str], status: int, reason: str
) -> None:
    async with daemon_client() as client:
        await publish_day(client.world)
        got, answer = await client.post("/hooks/partitions", body, headers)
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
        assert "malformed JSON" in answer["error"]
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


async def test_the_status_page_is_served_as_html() -> None:
    async with daemon_client() as client, client.session.get(f"{client.base}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
    assert "<h1>charon daemon</h1>" in page
    assert "TopArtistsJob" in page
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
