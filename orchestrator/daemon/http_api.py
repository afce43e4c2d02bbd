"""The daemon's HTTP endpoints: signed webhooks, status, Prometheus metrics, health.

Every webhook is checked in this order, and a refused one changes nothing: size,
secret configured, signature and freshness, JSON shape, names, delivery id.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import structlog
from aiohttp import web

from orchestrator import validate
from orchestrator.daemon import status_page
from orchestrator.daemon.daemon import Daemon
from orchestrator.errors import AuthError, CharonError
from orchestrator.intervals import parse_day
from orchestrator.web import openapi
from orchestrator.web.signing import DeliveryLog, verify
from sensors.facts import Root, Trigger, registry_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Rejected(Exception):
    """A refused request: its HTTP status, and what to tell the caller."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


class Webhooks:
    def __init__(self, daemon: Daemon, *, secret: str, max_body_bytes: int) -> None:
        self._daemon = daemon
        self._secret = secret.encode()
        self._max_body_bytes = max_body_bytes
        self._deliveries = DeliveryLog()
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
                key = "status" if exc.status == 200 else "error"
                return web.json_response({key: str(exc)}, status=exc.status)
            if not self._daemon.accept(Trigger(trigger.source, trigger.keys, trigger.roots,
                                               received)):
                return web.json_response({"error": "trigger queue full, retry later"},
                                         status=503, headers={"Retry-After": "1"})
            return web.json_response({"status": "accepted"}, status=202)

        return handle

    async def _checked(
        self, request: web.Request, parse: Callable[[dict[str, Any]], Trigger]
    ) -> Trigger:
        body = await self._body(request)
        if not self._secret:
            raise Rejected(503, "webhooks are disabled: set CHARON_WEBHOOK_SECRET", "disabled")
        try:
            delivery = verify(self._secret, request.headers, body)
        except AuthError as exc:
            raise Rejected(401, str(exc), "signature") from None
        trigger = parse(_json_object(body))
        # Recorded only once the request passed every check, so a refused delivery
        # can be retried under its own id.
        if not self._deliveries.first_time(delivery):
            raise Rejected(200, "duplicate delivery ignored", "duplicate")
        return trigger

    async def _body(self, request: web.Request) -> bytes:
        limit = self._max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise Rejected(413, f"body over {limit} bytes", "oversized")
        # One read returns what has arrived so far: a body sent in pieces (chunked, a
        # slow client) is read to its end, and no further than one byte past the limit.
        body = bytearray()
        while len(body) <= limit:
            piece = await request.content.read(limit + 1 - len(body))
            if not piece:
                return bytes(body)
            body += piece
        raise Rejected(413, f"body over {limit} bytes", "oversized")

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


def daemon_app(daemon: Daemon, *, secret: str, max_body_bytes: int) -> web.Application:
    hooks = Webhooks(daemon, secret=secret, max_body_bytes=max_body_bytes)

    async def status(request: web.Request) -> web.StreamResponse:
        return web.json_response(await daemon.status())

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text=status_page.render(await daemon.status()),
                            content_type="text/html", charset="utf-8")

    async def metrics(request: web.Request) -> web.StreamResponse:
        await daemon.update_run_gauge()
        return web.Response(text=daemon.metrics.render(), content_type="text/plain",
                            charset="utf-8")

    async def health(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=max_body_bytes)
    app.router.add_post("/hooks/partitions", hooks.handler(hooks.partition_published))
    app.router.add_post("/hooks/runs", hooks.handler(hooks.run_requested))
    app.router.add_get("/", page)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.router.add_routes([openapi.route("daemon")])
    return app


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Rejected(400, f"malformed JSON: {exc}", "malformed") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "the body must be a JSON object", "malformed")
    return payload


def _field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Rejected(400, f"field {name!r} must be a non-empty string", "malformed")
    return value
