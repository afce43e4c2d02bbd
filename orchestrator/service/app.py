"""The registry service (``charon registry serve``): the partition registry over HTTP.

A JSON API in front of a SQLite or PostgreSQL registry. Reads are open; writes need
``Authorization: Bearer <CHARON_REGISTRY_TOKEN>`` when a token is set, and a service
listening beyond loopback refuses to start without one. The change feed long-polls:
a reader with nothing new waits on an in-process event that every publish sets, so it
learns of a publish at once. Each publish is also pushed to the configured
subscribers as a signed webhook, in the background, retried with backoff.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio
from aiohttp import web

from orchestrator.errors import (
    AuthError,
    CharonError,
    ConfigError,
    IdempotencyKeyReused,
    InvalidIdentifier,
    RegistryError,
    UnknownRevision,
    UsageError,
)
from orchestrator.log import Logger, get_logger
from orchestrator.model import Revision
from orchestrator.service import inputs
from orchestrator.service.notify import Notifier, client_session
from orchestrator.service.options import ServiceOptions, check_options
from orchestrator.signals import stop_signals
from orchestrator.stores.registry import wire
from orchestrator.stores.registry.base import Publication, Registry
from orchestrator.web import http, openapi

DEFAULT_CHANGES_LIMIT = 1000
# A long-poll also re-reads the store this often, so a publish made through another
# replica of the service (sharing a PostgreSQL registry) is seen within this time.
RECHECK_SECONDS = 5.0
DRAIN_SECONDS = 5.0  # queued notifications may be delivered within this on shutdown
_CODES_BY_STATUS = {401: wire.CODE_UNAUTHORIZED, 404: wire.CODE_NOT_FOUND,
                    405: wire.CODE_METHOD_NOT_ALLOWED, 408: wire.CODE_TIMEOUT,
                    413: wire.CODE_TOO_LARGE}
_HTTP_SERVER_ERROR = 500


@runtime_checkable
class ServedRegistry(Registry, Protocol):
    """What the service runs on: a registry that says whether a publish was replayed.

    A replay by idempotency key answers 200, not 201, and tells no long-poll or
    subscriber again; only a registry keeping the revisions itself can know which.
    """

    async def publish_or_replay(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = (), *,
        idempotency_key: str | None = None,
    ) -> Publication: ...


def check_served(registry: Registry) -> ServedRegistry:
    if not isinstance(registry, ServedRegistry):
        raise ConfigError("the registry service runs on a SQLite or PostgreSQL registry, "
                          f"not on a {type(registry).__name__}")
    return registry


class ChangeSignal:
    """Wakes every waiting long-poll when a revision is published (or on shutdown)."""

    def __init__(self) -> None:
        self._event = anyio.Event()
        self.closed = False

    def current(self) -> anyio.Event:
        """Take this before reading the store: a publish after the read still sets it."""
        return self._event

    def notify(self) -> None:
        self._event.set()
        self._event = anyio.Event()

    def close(self) -> None:
        self.closed = True
        self._event.set()


def _error_response(status: int, code: str, message: str) -> web.Response:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return web.json_response({"error": message, "code": code}, status=status, headers=headers)


# Most specific first: the first class an error is an instance of decides.
_ERROR_STATUSES: tuple[tuple[type[CharonError], int, str], ...] = (
    (IdempotencyKeyReused, 409, wire.CODE_IDEMPOTENCY_KEY_REUSED),
    (InvalidIdentifier, 400, wire.CODE_INVALID_IDENTIFIER),
    (UsageError, 400, wire.CODE_BAD_REQUEST),
    (AuthError, 401, wire.CODE_UNAUTHORIZED),
    (UnknownRevision, 404, wire.CODE_UNKNOWN_REVISION),
    (RegistryError, 503, wire.CODE_UNAVAILABLE),
)


@web.middleware
async def _json_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every failure answers ``{"error": ..., "code": ...}`` with the fitting status."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects are not errors
            raise
        fallback = wire.CODE_BAD_REQUEST if exc.status < _HTTP_SERVER_ERROR else wire.CODE_INTERNAL
        return _error_response(exc.status, _CODES_BY_STATUS.get(exc.status, fallback),
                               exc.text or exc.reason)
    except ConnectionResetError:
        # The client went away mid-request: no bug of ours, and no one to answer.
        _logger().debug("client disconnected", path=request.path)
        return _error_response(400, wire.CODE_BAD_REQUEST, "the request ended early")
    except CharonError as exc:
        status, code = next(((status, code) for kind, status, code in _ERROR_STATUSES
                             if isinstance(exc, kind)), (500, wire.CODE_INTERNAL))
        if status >= _HTTP_SERVER_ERROR:
            _logger().warning("request failed", path=request.path, error=str(exc))
        return _error_response(status, code, str(exc))
    except Exception:
        _logger().exception("request failed unexpectedly", path=request.path)
        return _error_response(500, wire.CODE_INTERNAL, "internal error: see the service's log")


def _logger() -> Logger:
    return get_logger("charon.registry_service")


@dataclass(frozen=True)
class Handlers:
    registry: ServedRegistry
    options: ServiceOptions
    changed: ChangeSignal
    notifier: Notifier

    def routes(self) -> list[web.RouteDef]:
        partition = "/v1/endpoints/{endpoint}/partitions/{partition}"
        return [
            web.post("/v1/revisions", self.publish),
            web.get(f"{partition}/latest", self.latest),
            web.get(f"{partition}/revisions", self.revisions),
            web.get("/v1/revisions/{revision_id}", self.revision),
            web.get("/v1/changes", self.changes),
            web.get("/healthz", self.health),
            openapi.route("registry"),
        ]

    def _authorize(self, request: web.Request) -> None:
        if not self.options.token:
            return
        if not http.bearer_matches(request, self.options.token):
            raise AuthError("a valid bearer token is required to publish")

    async def publish(self, request: web.Request) -> web.Response:
        self._authorize(request)  # before reading: strangers cannot make us parse anything
        key = inputs.idempotency_key(request)
        endpoint, partition, uri, lineage = inputs.parse_publish(
            await http.read_body(request, self.options.max_body_bytes,
                                 within=self.options.body_seconds))
        published = await self.registry.publish_or_replay(endpoint, partition, uri, lineage,
                                                          idempotency_key=key)
        revision = published.revision
        headers = {"Location": f"/v1/revisions/{revision.id}"}
        log = _logger().bind(endpoint=endpoint, partition=partition, revision=revision.id,
                             seq=revision.seq)
        if published.replayed:
            # The first publish woke the long-polls and queued the webhooks; doing it
            # again would tell subscribers of one revision twice.
            log.info("revision publish replayed", idempotency_key=key)
            headers[wire.REPLAYED_HEADER] = "true"
            return web.json_response(wire.revision_to_json(revision), headers=headers)
        self.changed.notify()
        self.notifier.submit(revision)
        log.info("revision published")
        return web.json_response(wire.revision_to_json(revision), status=201, headers=headers)

    async def latest(self, request: web.Request) -> web.Response:
        endpoint, partition = inputs.partition_path(request)
        revision = await self.registry.latest(endpoint, partition)
        if revision is None:
            raise UnknownRevision(f"{endpoint} {partition} has no revision")
        return web.json_response(wire.revision_to_json(revision))

    async def revisions(self, request: web.Request) -> web.Response:
        found = await self.registry.list(*inputs.partition_path(request))
        return _revisions_response(found)

    async def revision(self, request: web.Request) -> web.Response:
        revision = await self.registry.get(inputs.revision_path(request))
        return web.json_response(wire.revision_to_json(revision))

    async def changes(self, request: web.Request) -> web.Response:
        since, limit, wait = inputs.changes_query(request, DEFAULT_CHANGES_LIMIT)
        wait = min(wait, self.options.long_poll_max_seconds)
        deadline = anyio.current_time() + wait
        while True:
            woken = self.changed.current()
            found = await self.registry.changes(since, limit)
            remaining = deadline - anyio.current_time()
            if found or remaining <= 0 or self.changed.closed:
                return _revisions_response(found, since)
            with anyio.move_on_after(min(remaining, RECHECK_SECONDS)):
                await woken.wait()

    async def health(self, request: web.Request) -> web.Response:
        # A real read, so a broken store shows as 503 rather than a cheerful "ok".
        await self.registry.latest("charon.healthz", "2000")
        return web.json_response({"status": "ok"})


def _revisions_response(found: Sequence[Revision], since: int | None = None) -> web.Response:
    body: dict[str, object] = {"revisions": [wire.revision_to_json(r) for r in found]}
    if since is not None:
        body["next_since"] = found[-1].seq if found else since
    return web.json_response(body)


def build_app(handlers: Handlers) -> web.Application:
    app = web.Application(client_max_size=handlers.options.max_body_bytes,
                          middlewares=[_json_errors])
    app[http.ERROR_CODES] = http.ErrorCodes(malformed=wire.CODE_BAD_REQUEST,
                                            internal=wire.CODE_INTERNAL)
    app.add_routes(handlers.routes())
    return app


@asynccontextmanager
async def running_service(
    registry: Registry, options: ServiceOptions, *, host: str, port: int
) -> AsyncIterator[str]:
    """Serve until the block exits; yields the base URL (the real port when port is 0)."""
    check_options(host, options)
    served = check_served(registry)
    async with client_session(options) as session:
        notifier = Notifier(session, options)
        try:
            async with anyio.create_task_group() as group:
                for work in notifier.workers():
                    group.start_soon(work)
                handlers = Handlers(served, options, ChangeSignal(), notifier)
                try:
                    async with _listening(handlers, host, port) as url:
                        yield url
                finally:
                    notifier.close_intake()
                    # Queued notifications get a little time to go out, then are abandoned.
                    group.cancel_scope.deadline = anyio.current_time() + DRAIN_SECONDS
        finally:
            notifier.close()


@asynccontextmanager
async def _listening(handlers: Handlers, host: str, port: int) -> AsyncIterator[str]:
    async with http.listening(build_app(handlers), host, port) as bound_port:
        shown = f"[{host}]" if ":" in host else host
        try:
            yield f"http://{shown}:{bound_port}"
        finally:
            # Before the server's cleanup: long-polls answer now rather than hold it up.
            handlers.changed.close()


async def serve(registry: Registry, options: ServiceOptions, *, host: str, port: int,
                ready: Callable[[str], None]) -> None:
    """Serve until SIGTERM, SIGINT or SIGHUP (not under ``nohup``), then shut down
    gracefully."""
    log = _logger()
    with anyio.open_signal_receiver(*stop_signals(signal.SIGTERM, signal.SIGINT)) as signals:
        async with running_service(registry, options, host=host, port=port) as url:
            log.info("registry service started", url=url, subscribers=len(options.subscribers))
            ready(url)
            async for received in signals:
                log.info("registry service stopping", signal=signal.Signals(received).name)
                return
