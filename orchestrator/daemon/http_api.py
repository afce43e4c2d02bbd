"""The daemon's HTTP endpoints: signed webhooks, status, Prometheus metrics, health.

Every webhook is checked in this order, and a refused one changes nothing: size,
secret configured, signature and freshness, JSON shape, names, delivery id. Delivery ids
live in the state store, shared by replicas and kept across restarts; without the store
no webhook is accepted, since a replay could not be told from a first delivery.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from orchestrator import validate
from orchestrator.daemon import refusals
from orchestrator.daemon.actions import add_actions
from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.refusals import body_of, field, json_object, queue_full
from orchestrator.daemon.status import PageQuery, update_run_gauge
from orchestrator.daemon.ui.graph_routes import add_graphs
from orchestrator.daemon.ui.routes import add_ui
from orchestrator.errors import AuthError, CharonError, StateStoreError, UsageError
from orchestrator.log import get_logger
from orchestrator.model import Asked
from orchestrator.web import BODY_SECONDS, openapi
from orchestrator.web.http import ERROR_CODES, ErrorCodes, Rejected
from orchestrator.web.signing import Delivery, verify
from sensors.facts import Root, Trigger, registry_key

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
STORE_RETRY_AFTER_SECONDS = 5


class Webhooks:
    def __init__(
        self, daemon: Daemon, *, secret: str, previous_secret: str = "", max_body_bytes: int,
        body_seconds: float = BODY_SECONDS,
    ) -> None:
        self._daemon = daemon
        self._secret = secret.encode()
        self._previous_secret = previous_secret.encode()
        self._max_body_bytes = max_body_bytes
        self._body_seconds = body_seconds
        self._log = get_logger("charon.webhook")

    def handler(self, parse: Callable[[dict[str, Any]], Trigger]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            received = time.perf_counter()
            try:
                trigger = await self._checked(request, parse)
            except Rejected as exc:
                self._daemon.metrics.webhooks_rejected.inc(reason=exc.reason)
                self._log.info("webhook refused", path=request.path, reason=exc.reason,
                               error=str(exc))
                if exc.status != 200:
                    return exc.response()
                return web.json_response({"status": str(exc)}, headers=exc.headers)
            if not self._daemon.take(dataclasses.replace(trigger, received=received)):
                return queue_full().response()  # stopping since the checks
            return web.json_response({"status": "accepted"}, status=202)

        return handle

    async def _checked(
        self, request: web.Request, parse: Callable[[dict[str, Any]], Trigger]
    ) -> Trigger:
        body = await body_of(request, self._max_body_bytes, self._body_seconds)
        if not self._secret:
            raise Rejected(503, "webhooks are disabled: set CHARON_WEBHOOK_SECRET", "disabled")
        try:
            delivery = verify(self._secret, request.headers, body,
                              previous_secret=self._previous_secret)
        except AuthError as exc:
            raise Rejected(401, str(exc), "signature") from None
        trigger = parse(json_object(body))
        # Recorded only once the request passed every check, so a refused delivery
        # can be retried under its own id; a full queue is one of those checks, or the
        # sender's retry would be taken for a replay of a trigger that was never queued.
        if not self._daemon.can_accept():
            raise queue_full()
        # A day asked for is kept with the delivery id: answered 202, it is evaluated
        # even if this daemon dies first, and the sender's retry is a duplicate.
        asked = self._daemon.asking.new(trigger.roots[0]) if trigger.roots else None
        await self._remember(delivery, asked)
        return trigger if asked is None else dataclasses.replace(trigger, asked=(asked.id,))

    async def _remember(self, delivery: Delivery, asked: Asked | None) -> None:
        """Record the delivery id in the state store, where every replica looks."""
        try:
            first = await self._daemon.adapters.state.remember_delivery(
                delivery.id, delivery.remember_until, asked
            )
        except StateStoreError as exc:
            self._log.warning("webhook delivery id not checked", error=str(exc))
            raise Rejected(503, "the state store is unavailable, retry later", "unavailable",
                           {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}) from None
        if not first:
            raise Rejected(200, "duplicate delivery ignored", "duplicate")

    def partition_published(self, payload: dict[str, Any]) -> Trigger:
        endpoint, partition = field(payload, "endpoint"), field(payload, "partition")
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
        name = field(payload, "workflow")
        if name not in self._daemon.watch.workflows:
            raise Rejected(404, f"no workflow named {name!r}", "unknown")
        return Trigger("webhook", roots=(Root(name, refusals.day(field(payload, "date"))),))


def daemon_app(
    daemon: Daemon, *, secret: str, previous_secret: str = "", api_token: str = "",
    max_body_bytes: int, body_seconds: float = BODY_SECONDS,
) -> web.Application:
    """``previous_secret``, while a rotation lasts, signs webhooks as well as ``secret``;
    ``api_token`` authorises the actions (none: they are off); a request's body must
    arrive within ``body_seconds``."""
    hooks = Webhooks(daemon, secret=secret, previous_secret=previous_secret,
                     max_body_bytes=max_body_bytes, body_seconds=body_seconds)

    async def status(request: web.Request) -> web.StreamResponse:
        try:
            query = PageQuery.parse(request.query, daemon.watch)
        except UsageError as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        return web.json_response(await daemon.status(query))

    async def metrics(request: web.Request) -> web.StreamResponse:
        await update_run_gauge(daemon)
        return web.Response(text=daemon.metrics.render(), content_type="text/plain",
                            charset="utf-8")

    async def health(request: web.Request) -> web.StreamResponse:
        return web.json_response({"status": "ok"})

    app = web.Application(client_max_size=max_body_bytes, middlewares=[_json_routing_errors])
    app[ERROR_CODES] = ErrorCodes(malformed="malformed", internal="internal")
    app.router.add_post("/hooks/partitions", hooks.handler(hooks.partition_published))
    app.router.add_post("/hooks/runs", hooks.handler(hooks.run_requested))
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", health)
    app.router.add_routes([openapi.route("daemon")])
    add_ui(app, daemon)
    add_graphs(app, daemon)
    add_actions(app, daemon, token=api_token, max_body_bytes=max_body_bytes)
    return app


# aiohttp's own refusals (no such route, another method, a body over client_max_size),
# answered in the webhooks' JSON like every other refusal; so are the actions' refusals
# and a state store that cannot answer.
_ROUTING_CODES = {404: "not_found", 405: "method_not_allowed", 413: "oversized"}


@web.middleware
async def _json_routing_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Rejected as exc:
        return exc.response()
    except StateStoreError as exc:
        return Rejected(503, f"the state store is unavailable, retry later: {exc}",
                        "unavailable", {"Retry-After": str(STORE_RETRY_AFTER_SECONDS)}).response()
    except web.HTTPException as exc:
        if exc.status < 400:  # redirects are not errors
            raise
        return web.json_response(
            {"error": exc.text or exc.reason, "code": _ROUTING_CODES.get(exc.status, "malformed")},
            status=exc.status, headers={k: v for k, v in exc.headers.items()
                                        if k.lower() == "allow"},
        )
