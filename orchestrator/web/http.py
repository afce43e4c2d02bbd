"""Running an aiohttp application inside the process's task group."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager

import anyio
import anyio.abc
from aiohttp import web

from orchestrator.errors import ConfigError
from orchestrator.web import BODY_SECONDS

SHUTDOWN_SECONDS = 5.0


class Rejected(Exception):
    """A refused request: its HTTP status, and what to tell the caller."""

    def __init__(
        self, status: int, message: str, reason: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers

    def response(self) -> web.Response:
        """The JSON error answer: ``{"error", "code"}``."""
        return web.json_response({"error": str(self), "code": self.reason},
                                 status=self.status, headers=self.headers)


def bearer_matches(request: web.Request, token: str) -> bool:
    """Whether the request's ``Authorization: Bearer`` header carries ``token``."""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: how long the comparison takes says nothing about the token.
    # surrogateescape: a header's non-UTF-8 bytes arrive as lone surrogates.
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode("utf-8", "surrogateescape"), token.encode())


async def read_body(request: web.Request, limit: int, *,
                    within: float = BODY_SECONDS) -> bytes:
    """The whole request body, however it was sent (chunked, slowly), up to ``limit``
    bytes and within ``within`` seconds.

    A body declared over the limit is refused on its Content-Length before a byte of it
    is read, so a client declaring a terabyte gets its 413 at once; one that grows past
    the limit is refused as it does. Both raise HTTPRequestEntityTooLarge. A body still
    unfinished after ``within`` seconds raises HTTPRequestTimeout: a client that stalls
    (or trickles a byte at a time) holds a connection and a handler no longer than that.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=declared)
    body = bytearray()
    with anyio.move_on_after(within):
        while len(body) <= limit:
            # One read returns what has arrived so far, no further than a byte past the limit.
            piece = await request.content.read(limit + 1 - len(body))
            if not piece:
                return bytes(body)
            body += piece
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {within:g} s")


@asynccontextmanager
async def listening(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve ``app`` for the duration of the block; yield the bound port (0 picks one)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        # OverflowError: a port beyond 65535 from a caller that did not check it.
        except (OSError, OverflowError) as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc}") from exc
        yield int(runner.addresses[0][1])
    finally:
        with anyio.CancelScope(shield=True):
            await runner.cleanup()


async def serve(
    app: web.Application,
    host: str,
    port: int,
    *,
    announce: Callable[[int], None] | None = None,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled, as a task: reports the bound port once listening."""
    async with listening(app, host, port) as bound:
        if announce is not None:
            announce(bound)
        task_status.started(bound)
        await anyio.sleep_forever()
