"""Signed webhooks to the registry's subscribers: one per publish, in the background,
retried with backoff; each subscriber has a bounded queue and workers of its own."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.log import Throttled, get_logger
from orchestrator.model import Revision
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry import wire
from orchestrator.web.signing import signed_headers

NOTIFY_TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0
# ASCII digits only (str.isdigit takes other scripts' too), few enough to read quickly.
_WHOLE_SECONDS = re.compile(r"[0-9]{1,9}")
WORKERS_PER_SUBSCRIBER = 4
"""Deliveries in flight to one subscriber at once."""
_HTTP_SERVER_ERROR = 500
# A charon daemon answers 404 for an endpoint it does not watch: it got the notice and
# has no use for it, which is how most publishes meet most subscribers.
_NOT_INTERESTED = 404


@dataclass(frozen=True)
class Delivery:
    url: str
    body: bytes
    delivery_id: str  # the same on every retry, so the receiver can drop duplicates
    revision_id: str


Lane = tuple[MemoryObjectSendStream[Delivery], MemoryObjectReceiveStream[Delivery]]


def client_session(options: ServiceOptions) -> aiohttp.ClientSession:
    """The notifier's HTTP client, with a connection for every worker of every subscriber:
    from a smaller pool, deliveries stuck on a subscriber that never answers would hold
    the connections the others need (aiohttp's default pool is 100)."""
    limit = max(1, len(options.subscribers)) * WORKERS_PER_SUBSCRIBER
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=limit))


class Notifier:
    """Signed webhooks to the subscribers, with retries. Each subscriber has a bounded
    queue and workers of its own: one that is down, paused or slow (its deliveries
    waiting out timeouts and backoff) holds back only its own notifications, never
    those of the others (every replica of a daemon subscribes)."""

    def __init__(self, session: aiohttp.ClientSession, options: ServiceOptions) -> None:
        self._session = session
        self._options = options
        self._secret = options.webhook_secret.encode()
        self._lanes: dict[str, Lane] = {
            url: anyio.create_memory_object_stream[Delivery](options.notify_queue_size)
            for url in options.subscribers
        }
        self._log = get_logger("charon.registry_service")
        # A subscriber down for a day would otherwise be two warnings a publish.
        self._dropped = self._throttled("notifications dropped")
        self._failed = self._throttled("notifications failed")

    def submit(self, revision: Revision) -> None:
        """Queue one delivery per subscriber; never waits, drops when full (logged at
        most every FLOOD_LOG_SECONDS a subscriber, with how many and the last revision)."""
        body = json.dumps(wire.revision_to_json(revision)).encode()
        for url, (send, _) in self._lanes.items():
            delivery = Delivery(url, body, uuid.uuid4().hex, revision.id)
            try:
                send.send_nowait(delivery)
            except (anyio.WouldBlock, anyio.ClosedResourceError) as exc:
                why = "queue full" if isinstance(exc, anyio.WouldBlock) else "shutting down"
                self._dropped[url](reason=why, revision=revision.id)

    def _throttled(self, event: str) -> dict[str, Throttled]:
        return {url: Throttled(self._log.bind(subscriber=url), event, "notifications")
                for url in self._lanes}

    def workers(self) -> list[Callable[[], Coroutine[Any, Any, None]]]:
        """The tasks that deliver, WORKERS_PER_SUBSCRIBER a subscriber, for the service's
        task group to run; each ends when the intake is closed and its queue drained."""
        return [partial(self._work, receive) for _, receive in self._lanes.values()
                for _ in range(WORKERS_PER_SUBSCRIBER)]

    async def _work(self, receive: MemoryObjectReceiveStream[Delivery]) -> None:
        async for delivery in receive:
            try:
                await self._deliver(delivery)
            except Exception:  # one bad subscriber URL must not stop the service
                self._log.exception("notification failed", subscriber=delivery.url)

    def close_intake(self) -> None:
        for send, _ in self._lanes.values():
            send.close()

    def close(self) -> None:
        for send, receive in self._lanes.values():
            send.close()
            receive.close()

    async def _deliver(self, delivery: Delivery) -> None:
        log = self._log.bind(subscriber=delivery.url, revision=delivery.revision_id,
                             delivery=delivery.delivery_id)
        for attempt in range(1, self._options.notify_attempts + 1):
            status, failure, asked_wait = await self._post(delivery)
            if status == _NOT_INTERESTED:
                log.info("subscriber does not watch the endpoint", attempt=attempt)
                return
            if failure is None:
                log.info("subscriber notified", attempt=attempt)
                return
            # Other 4xx are the receiver's considered refusal: sending it again won't help.
            retry = status is None or status >= _HTTP_SERVER_ERROR or status in (408, 429)
            if not retry or attempt == self._options.notify_attempts:
                self._failed[delivery.url](revision=delivery.revision_id,
                                           delivery=delivery.delivery_id, attempt=attempt,
                                           error=failure)
                return
            delay = max(min(self._options.notify_backoff_seconds * 2 ** (attempt - 1),
                            MAX_BACKOFF_SECONDS), asked_wait)
            log.info("notification will be retried", attempt=attempt, error=failure,
                     delay=delay)
            await anyio.sleep(delay)

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None, float]:
        """(the status, None) when delivered, else (the status if any, why not); and
        how long the subscriber asked to wait before the next attempt."""
        # Signed per attempt: a retry carries a fresh timestamp, within the replay window.
        headers = signed_headers(self._secret, delivery.body, delivery_id=delivery.delivery_id)
        headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_SECONDS)
        try:
            async with self._session.post(delivery.url, data=delivery.body, headers=headers,
                                          timeout=timeout) as response:
                status = response.status
                asked = retry_after(response.headers.get("Retry-After"))
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}", 0.0
        return status, None if status < 300 else f"HTTP {status}", asked  # 2xx: delivered


def retry_after(header: str | None) -> float:
    """The seconds a ``Retry-After`` header asks for (a charon daemon sends one with a
    503: its trigger queue is full, its state store down), at most MAX_BACKOFF_SECONDS;
    0 when there is none or it is not a whole number of seconds (a date is not read)."""
    if header is None or not (seconds := _WHOLE_SECONDS.fullmatch(header.strip())):
        return 0.0
    return min(float(seconds[0]), MAX_BACKOFF_SECONDS)
