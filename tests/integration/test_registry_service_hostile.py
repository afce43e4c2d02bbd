"""Hostile input against every route of the registry service, over SQLite and PostgreSQL:
each is a 4xx JSON error with a stable code, never a 500 or a 503, and changes nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
import pytest
import structlog.testing
from yarl import URL

from orchestrator.service.app import ServedRegistry
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry.postgres import PostgresRegistry
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.testing.postgres import temporary_database
from tests.contracts.registry import DAY
from tests.support.raw_http import exchange
from tests.support.services import registry_service

TOKEN = "service-token"
GOOD = {"endpoint": "plays", "partition": DAY, "uri": "/data/plays"}
CODES = {"bad_request", "invalid_identifier", "unauthorized", "not_found", "method_not_allowed",
         "too_large", "unknown_revision"}
HUGE = "9" * 5000


def body(**fields: object) -> bytes:
    return json.dumps({**GOOD, **fields}).encode()


def publish_text(**raw: str) -> bytes:
    """A publish body with some values spelled as raw JSON text."""
    fields = {name: json.dumps(value) for name, value in GOOD.items()} | raw
    return ("{" + ", ".join(f'"{name}": {text}' for name, text in fields.items()) + "}").encode()


@dataclass
class Service:
    url: str
    backend: ServedRegistry
    http: aiohttp.ClientSession

    async def request(self, method: str, path: str, data: bytes | None = None,
                      headers: dict[str, str] | None = None) -> tuple[int, object]:
        async with self.http.request(method, URL(self.url + path, encoded=True), data=data,
                                     headers=headers) as response:
            text = await response.text()
            return response.status, json.loads(text) if text else None


@pytest.fixture(params=["sqlite", "postgres"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Service]:
    async with AsyncExitStack() as stack:
        backend: ServedRegistry
        if request.param == "postgres":
            request.getfixturevalue("postgres_server")
            dsn = await stack.enter_async_context(temporary_database("charon_test"))
            backend = await PostgresRegistry.open(dsn)
        else:
            backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
        stack.push_async_callback(backend.aclose)
        # A large body limit: the hostile bodies must meet the parser, not the size check.
        options = ServiceOptions(token=TOKEN, max_body_bytes=1 << 20, long_poll_max_seconds=1)
        url = await stack.enter_async_context(registry_service(backend, options))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        yield Service(url, backend, http)


HOSTILE_PUBLISHES = [
    b"[" * 100_000,
    b'{"endpoint": ' + b"[" * 100_000,
    b'{"a":' * 100_000,
    publish_text(lineage=HUGE),
    publish_text(lineage=f"[{HUGE}]"),
    publish_text(lineage=f"[{HUGE}.5e3]"),
    publish_text(endpoint=HUGE),
    publish_text(lineage="NaN"),
    publish_text(lineage="[Infinity]"),
    publish_text(lineage="1e999"),
    publish_text(uri='"/data/\\ud800"'),
    publish_text(partition='"\\udc00"'),
    publish_text(lineage='["\\ud800"]'),
    publish_text(uri='"/data/\\u0000"'),
    publish_text(uri='"/data/x", "uri": "/data/y"'),
    b'{"endpoint": "plays", "partition": "2018-10-31", "uri": "/data/\xed\xa0\x80"}',
    b'{"endpoint": "plays", "partition": "2018-10-31", "uri": "/data/\xff"}',
    b'{"endpoint": "plays", "partition": "2018-10-31", "uri": "/data/\x00"}',
    b"\x00" * 100,
    b"\xef\xbb\xbf" + body(),
    body(partition="2018-99-99"),
    body(partition="2018-02-30"),
    body(partition="9999-12-31"),
    body(partition="2018-10-31\n"),
    body(partition="\uff12018-10-31"),
    body(partition="x" * 100_000),
    body(endpoint="plays\n"),
    body(endpoint="p" * 100_000),
    body(uri="gs://"),
    body(uri="gs:///x"),
    body(uri="gs://ab/x"),
    body(uri="gs://Bucket/x"),
    body(uri="/" + "x" * 100_000),
    body(uri="/data/\x1b[31m"),
    body(lineage=["r"] * 20_000),
    body(lineage=["x" * 100_000]),
    body(lineage=["a b"]),
    body(lineage=[None]),
    body(lineage={"a": 1}),
    body(extra="x" * 100_000),
]


async def test_hostile_publishes_are_refused_and_change_nothing(service: Service) -> None:
    wrong = []
    for sent in HOSTILE_PUBLISHES:
        status, answer = await service.request(
            "POST", "/v1/revisions", sent, {"Authorization": f"Bearer {TOKEN}"})
        if not _a_json_refusal(status, answer):
            wrong.append((sent[:60], status, answer))
    assert wrong == []
    assert await service.backend.changes(0) == []


HOSTILE_READS = [
    "/v1/changes?since=1e20",
    "/v1/changes?since=99999999999999999999",
    "/v1/changes?since=-99999999999999999999",
    "/v1/changes?since=9223372036854775808",
    f"/v1/changes?since={HUGE}",
    f"/v1/changes?limit={HUGE}",
    f"/v1/changes?wait={HUGE}",
    f"/v1/changes?wait=0.{HUGE}",
    "/v1/changes?wait=1e999",
    "/v1/changes?since=%EF%BC%91",  # a full-width digit
    "/v1/changes?wait=%EF%BC%91",
    "/v1/changes?since=%201",
    "/v1/changes?limit=1_0",
    "/v1/changes?since=1&since=2",
    "/v1/changes?limit=5&limit=5",
    "/v1/changes?since=%00",
    "/v1/changes?since=%ED%A0%80",
    "/v1/changes?since=%FF",
    "/v1/endpoints/%ED%A0%80/partitions/2018-10-31/latest",
    "/v1/endpoints/%ED%A0%80/partitions/2018-10-31/revisions",
    "/v1/endpoints/plays/partitions/%ED%A0%80/latest",
    "/v1/endpoints/%00/partitions/2018-10-31/latest",
    "/v1/endpoints/plays/partitions/2018-10-31%00/revisions",
    "/v1/endpoints/plays/partitions/2018-99-99/latest",
    "/v1/endpoints/plays/partitions/9999-12-31/revisions",
    "/v1/endpoints/%FF/partitions/2018-10-31/revisions",
    f"/v1/endpoints/{'p' * 5000}/partitions/2018-10-31/latest",
    "/v1/revisions/%ED%A0%80",
    "/v1/revisions/a%00b",
    "/v1/revisions/%FF%FE",
    "/v1/revisions/..%2F..",
    f"/v1/revisions/{'r' * 5000}",
]


async def test_hostile_reads_are_refused(service: Service) -> None:
    wrong = []
    for path in HOSTILE_READS:
        status, answer = await service.request("GET", path)
        if status != 400 or not _a_json_refusal(status, answer):
            wrong.append((path[:80], status, answer))
    assert wrong == []


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/v1/revisions", "/v1/changes", "/healthz"])
async def test_other_methods_are_refused(service: Service, method: str, path: str) -> None:
    status, answer = await service.request(method, path, b"{}")
    assert (status, answer) == (405, {"error": "405: Method Not Allowed",
                                      "code": "method_not_allowed"})


@pytest.mark.parametrize("query", ["", "?since=-1", "?x=%ED%A0%80", "?since=1&since=2"])
async def test_health_ignores_what_it_is_sent(service: Service, query: str) -> None:
    assert await service.request("GET", f"/healthz{query}") == (200, {"status": "ok"})


@pytest.mark.parametrize("token", [b"\xff\xfe", b"\xed\xa0\x80", TOKEN.encode() + b"\xff"])
async def test_a_token_of_raw_bytes_is_unauthorized(service: Service, token: bytes) -> None:
    sent = body()
    request = (b"POST /v1/revisions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
               b"Authorization: Bearer " + token + b"\r\n"
               b"Content-Length: %d\r\n\r\n" % len(sent)) + sent
    reader, writer = await asyncio.open_connection(URL(service.url).host, URL(service.url).port)
    try:
        writer.write(request)
        answer = await reader.read()
    finally:
        writer.close()
    head, _, payload = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 ")
    assert json.loads(payload)["code"] == "unauthorized"
    assert await service.backend.changes(0) == []


async def test_a_client_leaving_mid_body_is_no_error(service: Service) -> None:
    """A publish whose sender goes away before its body is complete: nothing to log as a
    failure of the service, nothing published."""
    head = (b"POST /v1/revisions HTTP/1.1\r\nHost: x\r\n"
            b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000\r\n\r\n")
    with structlog.testing.capture_logs() as logs:
        _reader, writer = await asyncio.open_connection(URL(service.url).host,
                                                        URL(service.url).port)
        writer.write(head + body()[:10])
        await writer.drain()
        await asyncio.sleep(0.2)  # the service is reading the body now
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.3)
    assert [entry for entry in logs if entry["log_level"] in ("warning", "error")] == []
    assert await service.backend.changes(0) == []


async def test_valid_extremes_are_answered(service: Service) -> None:
    """The bounds themselves are valid input."""
    status, _answer = await service.request(
        "POST", "/v1/revisions", body(lineage=[f"r-{n}" for n in range(1000)]),
        {"Authorization": f"Bearer {TOKEN}"})
    assert status == 201
    for path in ["/v1/changes?since=-9223372036854775808&limit=10000&wait=0.0",
                 "/v1/changes?since=9223372036854775807&wait=1e-05"]:
        assert (await service.request("GET", path))[0] == 200


def _a_json_refusal(status: int, answer: object) -> bool:
    return (400 <= status < 500
            and isinstance(answer, dict) and set(answer) == {"error", "code"}
            and answer["code"] in CODES and len(str(answer["error"])) < 1000)


async def test_a_body_declared_over_the_limit_is_refused_before_it_is_sent(
    service: Service,
) -> None:
    head = (b"POST /v1/revisions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + TOKEN.encode() + b"\r\nContent-Length: " + str(10**12).encode() + b"\r\n\r\n{")
    reader, writer = await asyncio.open_connection(URL(service.url).host, URL(service.url).port)
    try:
        writer.write(head)
        await writer.drain()
        with anyio.fail_after(5):
            status_line = await reader.readline()
    finally:
        writer.close()
    assert status_line.startswith(b"HTTP/1.1 413 ")
    assert await service.backend.changes(0) == []


async def test_a_publish_whose_body_stalls_gets_408_and_publishes_nothing(
    tmp_path: Path,
) -> None:
    backend = await SqliteRegistry.open(tmp_path / "registry.sqlite")
    options = ServiceOptions(token=TOKEN, body_seconds=0.3)
    async with AsyncExitStack() as stack:
        stack.push_async_callback(backend.aclose)
        url = await stack.enter_async_context(registry_service(backend, options))
        good = body(**GOOD)
        head = [b"POST /v1/revisions HTTP/1.1", b"Host: 127.0.0.1",
                b"Content-Type: application/json", f"Authorization: Bearer {TOKEN}".encode(),
                f"Content-Length: {len(good) + 100}".encode()]
        with anyio.fail_after(5):
            status, answer = await exchange(url, head, good)
        assert status.startswith(b"HTTP/1.1 408")
        assert json.loads(answer)["code"] == "timeout"
        assert await backend.changes(0, 10) == []
