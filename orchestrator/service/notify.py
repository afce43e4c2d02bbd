"""Signed webhooks to the registry's subscribers: one per publish, from a bounded queue,
in the background, retried with backoff."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import aiohttp
import anyio

from orchestrator.log import get_logger
from orchestrator.model import Revision
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry import wire
from orchestrator.web.signing import signed_headers

NOTIFY_TIMEOUT_SECONDS = 10.0
MAX_BACKOFF_SECONDS = 60.0
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


class Notifier:
    """Signed webhooks to the subscribers, from a bounded queue, with retries."""

    def __init__(self, session: aiohttp.ClientSession, options: ServiceOptions) -> None:
        self._session = session
        self._options = options
        self._secret = options.webhook_secret.encode()
        self._send, self._receive = anyio.create_memory_object_stream[Delivery](
            options.notify_queue_size
        )
        self._log = get_logger("charon.registry_service")

    def submit(self, revision: Revision) -> None:
        """Queue one delivery per subscriber; never waits, drops (and logs) when full."""
        body = json.dumps(wire.revision_to_json(revision)).encode()
        for url in self._options.subscribers:
            delivery = Delivery(url, body, uuid.uuid4().hex, revision.id)
            try:
                self._send.send_nowait(delivery)
            except (anyio.WouldBlock, anyio.ClosedResourceError) as exc:
                why = "queue full" if isinstance(exc, anyio.WouldBlock) else "shutting down"
                self._log.warning("notification dropped", reason=why, subscriber=url,
                                  revision=revision.id)

    async def work(self) -> None:
        """Deliver queued notifications until the intake is closed and drained."""
        async for delivery in self._receive:
            try:
                await self._deliver(delivery)
            except Exception:  # one bad subscriber URL must not stop the service
                self._log.exception("notification failed", subscriber=delivery.url)

    def close_intake(self) -> None:
        self._send.close()

    def close(self) -> None:
        self._send.close()
        self._receive.close()

    async def _deliver(self, delivery: Delivery) -> None:
        log = self._log.bind(subscriber=delivery.url, revision=delivery.revision_id,
                             delivery=delivery.delivery_id)
        for attempt in range(1, self._options.notify_attempts + 1):
            status, failure = await self._post(delivery)
            if status == _NOT_INTERESTED:
                log.info("subscriber does not watch the endpoint", attempt=attempt)
                return
            if failure is None:
                log.info("subscriber notified", attempt=attempt)
                return
            # Other 4xx are the receiver's considered refusal: sending it again won't help.
            retry = status is None or status >= _HTTP_SERVER_ERROR or status in (408, 429)
            if not retry or attempt == self._options.notify_attempts:
                log.warning("notification failed", attempt=attempt, error=failure)
                return
            delay = min(self._options.notify_backoff_seconds * 2 ** (attempt - 1),
                        MAX_BACKOFF_SECONDS)
            log.info("notification will be retried", attempt=attempt, error=failure,
                     delay=delay)
            await anyio.sleep(delay)

    async def _post(self, delivery: Delivery) -> tuple[int | None, str | None]:
        """(the status, None) when delivered, else (the status if any, why not)."""
        # Signed per attempt: a retry carries a fresh timestamp, within the replay window.
        headers = signed_headers(self._secret, delivery.body, delivery_id=delivery.delivery_id)
        headers["Content-Type"] = "application/json"
        timeout = aiohttp.ClientTimeout(total=NOTIFY_TIMEOUT_SECONDS)
        try:
            async with self._session.post(delivery.url, data=delivery.body, headers=headers,
                                          timeout=timeout) as response:
                status = response.status
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return None, f"{type(exc).__name__}: {exc}"
        return status, None if status < 300 else f"HTTP {status}"  # 2xx: delivered
