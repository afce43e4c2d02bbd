"""The daemon's HTTP endpoints: signed webhooks, status, Prometheus metrics, health.

Every webhook is checked in this order, and a refused one changes nothing: size,
secret configured, signature and freshness, JSON shape, names, delivery id. Delivery ids
live in the state store, shared by replicas and kept across restarts; without the store
no webhook is accepted, since a replay could not be told from a first delivery.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from orchestrator import validate
from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.status import PageQuery
from orchestrator.daemon.ui.routes import add_ui
from orchestrator.errors import AuthError, CharonError, StateStoreError, UsageError
from orchestrator.intervals import parse_day
from orchestrator.web import openapi
from orchestrator.web.http import read_body
from orchestrator.web.json_body import decode_object
from orchestrator.web.signing import Delivery, verify
from sensors.facts import Root, Trigger, registry_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORE_RETRY_AFTER_SECONDS = 5


class Rejected(Exception):
    """A refused request: its HTTP status, and what to tell the caller."""

    def __init__(
        self, status: int, message: str, reason: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.reason, self.headers = status, reason, headers


class Webhooks:
    def __init__(
        self, daemon: Daemon, *, secret: str, previous_secret: str = "", max_body_bytes: int
    ) -> None:
        self._daemon = daemon
        self._secret = secret.encode()
        self._previous_secret = previous_secret.encode()
        self._max_body_bytes = max_body_bytes
        self._log = structlog.get_logger("charon.webhook")

    def handler(self, parse: Callable[[dict[str, Any]], Trigger]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            received = time.perf_counter()
            try:
                trigger = await self._checked(request, parse)
            except Rejected as exc:
                self._daemon.metrics.webhooks_rejected.inc(reason=exc.reason)
                self._log.info("webhook refused", path=request.path, reason=exc.reason,
                               error=str(exc))
                answer = ({"status": str(exc)} if exc.status == 200
                          else {"error": str(exc), "code": exc.reason})
                return web.json_response(answer, status=exc.status, headers=exc.headers)
            if not self._daemon.accept(Trigger(trigger.source, trigger.keys, trigger.roots,
                                               received)):
                # Filled while the delivery id was being recorded: rare, and the
                # sensors still see the partition on their next poll.
                full = _queue_full()
                return web.json_response({"error": str(full), "code": full.reason},
                                         status=full.status, headers=full.headers)
            return web.json_response({"status": "accepted"}, status=202)

        return handle

    async def _checked(
        self, request: web.Request, parse: Callable[[dict[str, Any]], Trigger]
    ) -> Trigger:
        body = await self._body(request)
        if not self._secret:
            raise Rejected(503, "webhooks are disabled: set CHARON_WEBHOOK_SECRET", "disabled")
        try:
            delivery = verify(self._secret, request.headers, body,
                              previous_secret=self._previous_secret)
        except AuthError as exc:
            raise Rejected(401, str(exc), "signature") from None
        trigger = parse(_json_object(body))
        # Recorded only once the request passed every check, so a refused delivery
        # can be retried under its own id; a full queue is one of those checks, or the
        # sender's retry would be taken for a replay of a trigger that was never queued.
        if not self._daemon.can_accept():
            raise _queue_full()
        await self._remember(delivery)
        return trigger

    async def _remember(self, delivery: Delivery) -> None:
        """Record the delivery id in the state store, where every replica looks."""
        try:
            first = await self._daemon.adapters.state.remember_delivery(
                delivery.id, delivery.remember_until
            )
        except StateStoreError as exc:
            self._log.warning("webhook delivery id not checked", error=str(exc))
            raise Rejected(503, "the state store is unavailable, retry later", "unavailable",
                           {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}) from None
        if not first:
            raise Rejected(200, "duplicate delivery ignored", "duplicate")

    async def _body(self, request: web.Request) -> bytes:
        try:
            return await read_body(request, self._max_body_bytes)
        except web.HTTPRequestEntityTooLarge:
            raise Rejected(413, f"body over {self._max_body_bytes} bytes", "oversized") from None

    def partition_published(self, payload: dict[str, Any]) -> Trigger:
        endpoint, partition = _field(payload, "endpoint"), _field(payload, "partition")
        try:
            validate.endpoint(endpoint)
            validate.partition(partition)
        except CharonError as exc:
            raise Rejected(400, str(exc), "malformed") from None
        key = registry_key(endpoint, partition)
        if not self._daemon.watch.watches(key):
            raise Rejected(404, f"no watched workflow reads {endpoint} {partition}", "unknown")
        return Trigger("webhook", keys=(key,))

    def run_requested(self, payload: dict[str, Any]) -> Trigger:
        name = _field(payload, "workflow")
        if name not in self._daemon.watch.workflows:
            raise Rejected(404, f"no workflow named {name!r}", "unknown")
        try:
            day = parse_day(_field(payload, "date"))
        except CharonError as exc:
            raise Rejected(400, str(exc), "malformed") from None
        return Trigger("webhook", roots=(Root(name, day),))


def daemon_app(
    daemon: Daemon, *, secret: str, previous_secret: str = "", max_body_bytes: int
) -> web.Application:
    """``previous_secret``, while a rotation lasts, signs webhooks as well as ``secret``."""
    hooks = Webhooks(daemon, secret=secret, previous_secret=previous_secret,
                     max_body_bytes=max_body_bytes)

    async def status(request: web.Request) -> web.StreamResponse:
        try:
            query = PageQuery.parse(request.query, daemon.watch)
        except UsageError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(await daemon.status(query))

    async def metrics(request: web.Request) -> web.StreamResponse:
        await daemon.update_run_gauge()
        return web.Response(text=daemon.metrics.render(), content_type="text/plain",
                            charset="utf-8")

    async def health(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=max_body_bytes, middlewares=[_json_routing_errors])
    app.router.add_post("/hooks/partitions", hooks.handler(hooks.partition_published))
    app.router.add_post("/hooks/runs", hooks.handler(hooks.run_requested))
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.router.add_routes([openapi.route("daemon")])
    add_ui(app, daemon)
    return app


def _queue_full() -> Rejected:
    return Rejected(503, "trigger queue full, retry later", "queue_full", {"Retry-After": "1"})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        return decode_object(body)
    except UsageError as exc:
        raise Rejected(400, str(exc), "malformed") from None


# aiohttp's own refusals (no such route, another method, a body over client_max_size),
# answered in the webhooks' JSON like every other refusal.
_ROUTING_CODES = {404: "not_found", 405: "method_not_allowed", 413: "oversized"}


@web.middleware
async def _json_routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects are not errors
            raise
        return web.json_response(
            {"error": exc.text or exc.reason, "code": _ROUTING_CODES.get(exc.status, "malformed")},
            status=exc.status, headers={k: v for k, v in exc.headers.items()
                                        if k.lower() == "allow"},
        )


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Rejected(400, f"field {name!r} must be a non-empty string", "malformed")
    return value
