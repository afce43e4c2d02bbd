"""A tiny aiohttp proxy in front of an emulator that injects faults, shared by the
adapter tests (a lost answer, a 5xx) and the acceptance tests (a request held while the
test kills the process that sent it)."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import aiohttp
import anyio
from aiohttp import web


@dataclass(frozen=True)
class Forwarded:
    method: str
    path: str
    body: bytes


T = TypeVar("T")

UNREADABLE_ANSWERS = {
    # Past what json.loads can follow: it raises RecursionError, not a ValueError.
    "JSON nested 200,000 deep": b"[" * 200_000 + b"]" * 200_000,
    "a proxy's HTML page": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "JSON cut short": b'{"kind": "bigquery#table", "tableRef',
    "bytes that are not text": b"\xff\xfe\x00\xd8",
    "a JSON list": b"[1, 2]",
}
"""What a broken proxy, or a service that is not the one meant, may answer."""
Hold = Callable[[list[Forwarded]], bool]
"""Whether to hold the answer to the last request forwarded, given all forwarded so far."""


@dataclass
class FaultInjectingProxy:
    """``faults`` maps (method, path regex) to statuses answered instead of forwarding,
    one per matching request; ``lost`` maps them to statuses answered after forwarding
    (the request took effect, its response is lost); ``garbled`` maps them to (status,
    body) answered instead of forwarding, as a broken proxy or service would. With
    ``duplicate_jobs``, a jobs.insert whose job id was forwarded before is answered 409
    Already Exists, as real BigQuery does (bqemulator runs the job again). The first
    request ``hold`` picks is forwarded, so it takes effect, and then its answer is held
    back: ``held`` is set, and the answer goes out only after ``release()``.
    """

    target: str
    faults: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    lost: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    garbled: dict[tuple[str, str], list[tuple[int, bytes]]] = field(default_factory=dict)
    duplicate_jobs: bool = False
    hold: Hold | None = None
    seen: list[tuple[str, str]] = field(default_factory=list)
    forwarded: list[Forwarded] = field(default_factory=list)
    job_ids: set[str] = field(default_factory=set)
    held: anyio.Event = field(default_factory=anyio.Event)
    url: str = ""
    _released: anyio.Event = field(default_factory=anyio.Event)

    def release(self) -> None:
        self._released.set()

    @property
    def host(self) -> str:
        """host:port, as the *_EMULATOR_HOST variables take it."""
        return self.url.removeprefix("http://")

    @staticmethod
    def _take(table: dict[tuple[str, str], list[T]], method: str, path: str) -> T | None:
        for (m, pattern), answers in table.items():
            if m == method and re.search(pattern, path) and answers:
                return answers.pop(0)
        return None

    def _duplicate(self, method: str, path: str, body: bytes) -> bool:
        if not (self.duplicate_jobs and method == "POST" and re.search(r"/jobs(\?|$)", path)):
            return False
        job_id = json.loads(body or b"{}").get("jobReference", {}).get("jobId")
        if job_id in self.job_ids:
            return True
        self.job_ids.add(job_id)
        return False

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method, path = request.method, request.path_qs
        self.seen.append((method, path))
        body = await request.read()
        if (garbage := self._take(self.garbled, method, path)) is not None:
            status, body = garbage
            return web.Response(status=status, body=body, content_type="application/json")
        injected = self._take(self.faults, method, path)
        if injected is None and self._duplicate(method, path, body):
            injected = 409
        if injected is not None:
            return google_error(injected)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        async with aiohttp.ClientSession() as client, client.request(
            method, self.target + path, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            status, content_type = upstream.status, upstream.content_type
        forwarded = Forwarded(method, path, body)
        self.forwarded.append(forwarded)
        if self.hold is not None and not self.held.is_set() and self.hold(self.forwarded):
            self.held.set()
            await self._released.wait()
        lost = self._take(self.lost, method, path)
        if lost is not None:
            return google_error(lost)
        return web.Response(status=status, body=payload, content_type=content_type)


def google_error(status: int) -> web.Response:
    reason = {409: "duplicate", 503: "backendError", 403: "accessDenied"}.get(status, "error")
    body = {"error": {"code": status, "message": f"injected {status}",
                      "errors": [{"reason": reason, "message": f"injected {status}"}]}}
    return web.json_response(body, status=status)


@asynccontextmanager
async def serving(proxy: FaultInjectingProxy) -> AsyncIterator[FaultInjectingProxy]:
    """``proxy`` listening on a free loopback port (its ``url``) until the block ends."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp names no public accessor
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        proxy.release()  # a held answer must not keep the runner's clean-up waiting
        await runner.cleanup()
