"""Running an aiohttp application inside the process's task group."""

from __future__ import annotations

import asyncio
import hmac
import itertools
import resource
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import anyio
import anyio.abc
from aiohttp import HttpVersion10, StreamReader, web
from aiohttp.http_parser import RawRequestMessage

from orchestrator.errors import ConfigError
from orchestrator.log import Throttled, get_logger
from orchestrator.web import BODY_SECONDS, HEADER_SECONDS, KEEPALIVE_SECONDS

SHUTDOWN_SECONDS = 5.0
CONNECTION_SHARE = 4
"""A server holds at most this fraction of the process's file descriptors as client
connections (a quarter: the daemon and the registry service share one process under
``charon dev``, and the rest is for the stores, files and jobs)."""
MIN_CONNECTIONS = 16
ACCEPT_BACKLOG = 32
"""The listening socket's backlog, which is also how many connections asyncio accepts
in one go, before any of them is counted against the budget and turned away: the
descriptors a burst of new connections holds for a moment over the budget. At
aiohttp's default of 128 those bursts, two or three in a row before the first is
turned away, ran a process limited to 256 descriptors out of them. Clients keep their
connections (webhook senders, the registry client), so few connect at once."""


def connection_budget() -> int:
    """The open connections one server keeps, from the process's descriptor limit."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1 << 16
    # Less the connections a burst holds before any is turned away (ACCEPT_BACKLOG).
    return max(MIN_CONNECTIONS, soft // CONNECTION_SHARE - ACCEPT_BACKLOG)


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
            try:
                piece = await request.content.read(limit + 1 - len(body))
            except web.RequestPayloadError as exc:  # bad chunks, a Content-Encoding that fails
                # Ended here: aiohttp would otherwise read the rest of a body that cannot
                # be read once the answer is sent, and log that failure with a traceback.
                request.content.feed_eof()
                raise web.HTTPBadRequest(text=f"the request body is malformed: {exc}") from None
            if not piece:
                return bytes(body)
            body += piece
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=len(body))
    raise web.HTTPRequestTimeout(text=f"the request body did not arrive within {within:g} s")


@dataclass(frozen=True)
class ErrorCodes:
    """The ``code`` of an app's JSON errors for what its middlewares never see."""

    malformed: str
    """A request that is not HTTP the server can parse (aiohttp's own 400s)."""
    internal: str
    """A handler that failed with no middleware to answer for it (aiohttp's 500 or 504)."""


ERROR_CODES = web.AppKey("error_codes", ErrorCodes)
"""Where an app served by :func:`listening` names its codes; one that does not gets
HTTP's own words, :data:`PLAIN_CODES`."""
PLAIN_CODES = ErrorCodes(malformed="bad_request", internal="internal")

_Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


# Why a runner of our own: aiohttp answers a request it cannot parse (a bad request line,
# header, Content-Length or chunk, a line over its limit, TLS sent to the HTTP port) in
# its connection handler, RequestHandler.handle_error, before any app, middleware or
# route: in text/plain, and a handler's unhandled crash in text/plain or HTML. It offers
# no option for that body, and builds its RequestHandler in web.Server, so the hook is
# a Server making a RequestHandler whose handle_error answers in the app's JSON shape;
# AppRunner._make_server, the one place a runner chooses its Server, installs it. The
# status stays aiohttp's: 400 for every parse error, a line over the limit included
# (its parser does not say whether the target or a header was too long, so 414 or 431
# would be a guess).
class _Runner(web.AppRunner):
    def __init__(self, app: web.Application, *, header_seconds: float, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.header_seconds = header_seconds

    async def _make_server(self) -> web.Server:
        made = await super()._make_server()
        # The server aiohttp made for the app, rebuilt with the same settings.
        return _Server(made.request_handler, codes=self.app.get(ERROR_CODES, PLAIN_CODES),
                       header_seconds=self.header_seconds,
                       request_factory=made.request_factory,
                       handler_cancellation=made.handler_cancellation, **made._kwargs)


class _Server(web.Server):
    def __init__(self, handler: _Handler, *, codes: ErrorCodes, header_seconds: float,
                 **kwargs: Any) -> None:
        super().__init__(_http_1_only(handler, codes), **kwargs)
        self.codes = codes
        self.header_seconds = header_seconds
        self.max_connections = connection_budget()
        log = get_logger("charon.http")
        self.turned_away = Throttled(log, "connections turned away: too many open",
                                     "connections")
        self.too_slow = Throttled(log, "connections closed: no request headers within"
                                       f" {header_seconds:g} s", "connections")

    def __call__(self) -> web.RequestHandler:
        return _Protocol(self, codes=self.codes, loop=self._loop, **self._kwargs)

    def full(self) -> bool:
        return len(self.connections) >= self.max_connections

    @property
    def load(self) -> dict[str, int]:
        """What a warning about its connections says of them."""
        return {"open": len(self.connections), "max_connections": self.max_connections}


class _Protocol(web.RequestHandler):
    def __init__(self, manager: _Server, *, codes: ErrorCodes, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self.codes = codes
        self._server = manager
        self._refusals = get_logger("charon.http")
        self._body: StreamReader | None = None
        """The body of the newest request parsed, which a handler may be reading."""
        self._slow_headers: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self._server.full():
            # Closed at once, its descriptor given back: the process's own work (its
            # stores, its job's pipes) never runs out of file descriptors for clients.
            cast(asyncio.Transport, transport).abort()  # a socket's, as aiohttp's own casts
            self._server.turned_away(**self._server.load)
            self._manager = None  # aiohttp's clean-up then has nothing to undo
            return
        super().connection_made(transport)
        self._headers_begun()

    def connection_lost(self, exc: BaseException | None) -> None:
        self._headers_came()
        super().connection_lost(exc)

    def _headers_begun(self) -> None:
        """A request's headers are due within the header time: on a new connection, or
        once the first bytes of a request came. aiohttp times neither out (only an idle
        connection, once a request was answered)."""
        if self._slow_headers is None:
            self._slow_headers = self._loop.call_later(self._server.header_seconds,
                                                       self._headers_too_slow)

    def _headers_came(self) -> None:
        if self._slow_headers is not None:
            self._slow_headers.cancel()
            self._slow_headers = None

    def _headers_too_slow(self) -> None:
        self._slow_headers = None
        self._server.too_slow(**self._server.load)
        self.force_close()

    def data_received(self, data: bytes) -> None:
        queued = len(self._messages)
        super().data_received(data)
        parsed = False
        for message, body in itertools.islice(self._messages, queued, None):
            parsed = True
            self._headers_came()
            if isinstance(message, RawRequestMessage):
                self._body = body
            elif self._body is not None and not self._body.is_eof():
                # aiohttp queues a parse error in a body (a bad chunk after the headers)
                # as one more message, and leaves the body's reader waiting for bytes
                # that will not come: the handler would answer 408 once its read timed
                # out. Told, the read fails now, as for a bad chunk with the headers.
                self._body.set_exception(web.RequestPayloadError(_one_line(message.message)))
        if not parsed and (self._body is None or self._body.is_eof()):
            self._headers_begun()  # bytes of a new request, not of a body being read

    def handle_error(self, request: web.BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if status >= 500:
            # aiohttp's own answer logs the crash with its traceback (a bug to look at)
            # and refuses to answer once a response has begun; only its body is replaced.
            super().handle_error(request, status, exc, message)
            # Never the exception: it is for the log, not for whoever caused it.
            return _closing(Rejected(status, "internal error: see the server's log",
                                     self.codes.internal))
        if request.writer.output_size > 0:
            raise ConnectionError("a response has begun: no error can follow it")
        said = _one_line(message or "")
        # One line, not aiohttp's traceback: what anyone can send to an open port must
        # not cost a traceback in the log per request.
        self._refusals.info("malformed HTTP refused", remote=request.remote, error=said)
        return _closing(Rejected(status, f"malformed HTTP request: {said}",
                                 self.codes.malformed))


def _one_line(message: str) -> str:
    """aiohttp's parser messages span lines, a caret under the offending byte."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip(" ^"))


def _http_1_only(handler: _Handler, codes: ErrorCodes) -> _Handler:
    """HTTP/0.9 has neither headers nor a status line; aiohttp would serve it all the
    same, so the server turns it away before the app sees it."""
    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if request.version < HttpVersion10:
            return _closing(Rejected(400, "HTTP/0.9 is not supported: send HTTP/1.0 or 1.1",
                                     codes.malformed))
        return await handler(request)

    return handle


def _closing(rejected: Rejected) -> web.StreamResponse:
    """The refusal, on a connection then closed, as aiohttp closes it after its own:
    after a parse error, where the request ended (so where a next one begins) is unknown."""
    response = rejected.response()
    response.force_close()
    return response


@asynccontextmanager
async def listening(app: web.Application, host: str, port: int, *,
                    header_seconds: float = HEADER_SECONDS,
                    keepalive_seconds: float = KEEPALIVE_SECONDS) -> AsyncIterator[int]:
    """Serve ``app`` for the duration of the block; yield the bound port (0 picks one).
    ``app[ERROR_CODES]`` names the codes of the errors its middlewares never see. A
    connection is closed when a request's headers have not come within
    ``header_seconds``, or when it has been idle ``keepalive_seconds`` after a request."""
    runner = _Runner(app, header_seconds=header_seconds, keepalive_timeout=keepalive_seconds,
                     access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port, backlog=ACCEPT_BACKLOG).start()
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
    header_seconds: float = HEADER_SECONDS,
    keepalive_seconds: float = KEEPALIVE_SECONDS,
    task_status: anyio.abc.TaskStatus[int] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until cancelled, as a task: reports the bound port once listening."""
    async with listening(app, host, port, header_seconds=header_seconds,
                         keepalive_seconds=keepalive_seconds) as bound:
        if announce is not None:
            announce(bound)
        task_status.started(bound)
        await anyio.sleep_forever()
