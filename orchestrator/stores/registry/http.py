"""A Registry reached over the registry service's JSON API (``charon registry serve``).

It raises what the embedded registry raises, so callers cannot tell them apart:
400 → InvalidIdentifier or UsageError, 401/403 → AuthError, 404 → UnknownRevision,
409 → IdempotencyKeyReused, 5xx and network failures → RegistryError. Names are
validated here too, with the embedded registry's own rules, so a bad publish fails
fast without a round trip; the service validates again, being the authority. A
publish's idempotency key travels as the ``Idempotency-Key`` header.

What is safe to send twice is sent again when the service cannot be reached, times
out or answers 502, 503 or 504 (a restart, a proxy in front of it): every read, and a
publish with an idempotency key. A publish without one is sent once: its answer may
be lost after it happened, and sending it again could publish twice.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
from yarl import URL

from orchestrator.errors import (
    AuthError,
    CharonError,
    ConfigError,
    IdempotencyKeyReused,
    InvalidIdentifier,
    RegistryError,
    UnknownRevision,
    UsageError,
    as_one_error,
)
from orchestrator.log import Logger, get_logger
from orchestrator.model import Revision
from orchestrator.stores.drivers.answers import MalformedAnswer, decoded
from orchestrator.stores.registry.base import (
    check_limit,
    check_publish,
    check_revision_id,
    check_since,
    names_a_partition,
    partitions_to_look_up,
)
from orchestrator.stores.registry.wire import (
    CODE_IDEMPOTENCY_KEY_REUSED,
    CODE_INVALID_IDENTIFIER,
    CODE_UNKNOWN_REVISION,
    IDEMPOTENCY_KEY_HEADER,
    revision_from_json,
)

# A request that is safe to repeat gets len(RETRY_DELAYS_SECONDS) + 1 attempts, each
# with the full timeout, these many seconds apart: enough to ride out a restart.
RETRY_DELAYS_SECONDS = (0.5, 1.0)
RETRY_STATUSES = frozenset({502, 503, 504})
LOOKUPS_AT_ONCE = 8
"""Requests of one batched lookup in flight at once: a few connections, not hundreds."""

_HTTP_BAD_REQUEST, _HTTP_NOT_FOUND, _HTTP_SERVER_ERROR = 400, 404, 500
_AUTH_STATUSES = (401, 403)
# The service's answers that stand for one charon error: (status, code) → its class.
_ERRORS_BY_CODE: Mapping[tuple[int, str], type[CharonError]] = {
    (400, CODE_INVALID_IDENTIFIER): InvalidIdentifier,
    (404, CODE_UNKNOWN_REVISION): UnknownRevision,
    (409, CODE_IDEMPOTENCY_KEY_REUSED): IdempotencyKeyReused,
}


def _error(status: int, body: object, url: URL) -> Exception:
    """The charon exception for an error response."""
    message, code = f"HTTP {status} from {url}", ""
    if isinstance(body, Mapping):
        message = str(body.get("error", message))
        code = str(body.get("code", ""))
    if status in _AUTH_STATUSES:
        return AuthError(f"registry service refused the request: {message}")
    if (known := _ERRORS_BY_CODE.get((status, code))) is not None:
        return known(message)
    if status == _HTTP_NOT_FOUND:
        return RegistryError(f"{url} not found: is registry.url a charon registry service?")
    if status >= _HTTP_SERVER_ERROR:
        return RegistryError(f"registry service failed: {message}")
    return UsageError(message)


class _Retriable(Exception):
    """An attempt failed in a way the next may not; ``error`` is raised once none is left."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class HttpRegistry:
    """Registry client over one shared aiohttp session; build it with :meth:`open`."""

    def __init__(self, session: aiohttp.ClientSession, url: URL, *, token: str,
                 timeout: float) -> None:
        self._session = session
        self._url = url
        self._token = token
        self._timeout = timeout

    @classmethod
    async def open(
        # The per-request timeout of every later call, not a deadline for this one.
        cls, url: str, *, token: str = "", timeout: float = 30.0  # noqa: ASYNC109
    ) -> HttpRegistry:
        base = URL(url)
        if base.scheme not in ("http", "https") or not base.host:
            raise ConfigError(
                f"registry.url = {url!r}: expected http://host:port of a registry service"
            )
        if timeout <= 0:
            raise ConfigError(f"registry.timeout_seconds must be positive, got {timeout}")
        return cls(aiohttp.ClientSession(), base, token=token, timeout=timeout)

    async def publish(
        self, endpoint: str, partition: str, uri: str, lineage: Sequence[str] = (), *,
        idempotency_key: str | None = None,
    ) -> Revision:
        ids = check_publish(endpoint, partition, uri, lineage, idempotency_key=idempotency_key)
        body = {"endpoint": endpoint, "partition": partition, "uri": uri, "lineage": list(ids)}
        headers = {} if idempotency_key is None else {IDEMPOTENCY_KEY_HEADER: idempotency_key}
        found = await self._call("POST", ("revisions",), body=body, headers=headers)
        return revision_from_json(found)

    async def latest(self, endpoint: str, partition: str) -> Revision | None:
        if not names_a_partition(endpoint, partition):
            return None  # as the embedded registry answers; the service would say 400
        path = ("endpoints", endpoint, "partitions", partition, "latest")
        try:
            return revision_from_json(await self._call("GET", path))
        except UnknownRevision:
            return None

    async def latest_many(
        self, endpoint: str, partitions: Sequence[str]
    ) -> dict[str, Revision]:
        """The service has no batched route yet: the partitions' lookups go out side by
        side, a few at once, over the session's kept-alive connections."""
        wanted = partitions_to_look_up(endpoint, partitions)
        found: dict[str, Revision] = {}
        limit = anyio.CapacityLimiter(LOOKUPS_AT_ONCE)

        async def look_up(partition: str) -> None:
            async with limit:
                revision = await self.latest(endpoint, partition)
            if revision is not None:
                found[partition] = revision

        with as_one_error():
            async with anyio.create_task_group() as group:
                for partition in wanted:
                    group.start_soon(look_up, partition)
        return found

    async def list(self, endpoint: str, partition: str) -> list[Revision]:
        if not names_a_partition(endpoint, partition):
            return []
        path = ("endpoints", endpoint, "partitions", partition, "revisions")
        return self._revisions(await self._call("GET", path))

    async def get(self, revision_id: str) -> Revision:
        check_revision_id(revision_id)
        return revision_from_json(await self._call("GET", ("revisions", revision_id)))

    async def changes(self, since_seq: int, limit: int = 1000) -> builtins.list[Revision]:
        return await self.wait_for_changes(since_seq, 0, limit=limit)

    async def wait_for_changes(
        # ``timeout`` is the server-side wait, sent in the query, not a local deadline.
        self, since_seq: int, timeout: float, *, limit: int = 1000  # noqa: ASYNC109
    ) -> builtins.list[Revision]:
        """The change feed, long-polled: wait up to ``timeout`` seconds for a publish.

        Returns as soon as there is anything after ``since_seq``, else an empty list
        once the wait is over (the service caps it at its long_poll_max_seconds).
        """
        check_since(since_seq)
        check_limit(limit)
        if timeout < 0:
            raise UsageError(f"timeout must not be negative, got {timeout}")
        query = {"since": str(since_seq), "limit": str(limit), "wait": str(timeout)}
        found = await self._call("GET", ("changes",), query=query, extra_time=timeout)
        return self._revisions(found)

    async def aclose(self) -> None:
        await self._session.close()

    @staticmethod
    def _revisions(body: object) -> builtins.list[Revision]:
        if not isinstance(body, Mapping) or not isinstance(body.get("revisions"), builtins.list):
            raise RegistryError(f"the registry service sent no revision list: {body!r:.200}")
        return [revision_from_json(item) for item in body["revisions"]]

    async def _call(self, method: str, path: Sequence[str], *, body: object = None,
                    query: Mapping[str, str] | None = None, extra_time: float = 0,
                    headers: Mapping[str, str] | None = None) -> Any:
        if self._session.closed:
            raise RegistryError("the registry client is closed")
        url = self._url_of(path, query)
        sent = {**(headers or {})}
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        attempt = functools.partial(
            self._attempt, method, url, body=body, headers=sent,
            time_limit=aiohttp.ClientTimeout(total=self._timeout + extra_time),
        )
        # What the service recognises when it comes again: a read, a keyed publish.
        repeatable = method == "GET" or IDEMPOTENCY_KEY_HEADER in sent
        for delay in RETRY_DELAYS_SECONDS if repeatable else ():
            try:
                return await attempt()
            except _Retriable as failure:
                _logger().info("registry request will be retried", method=method,
                               url=str(url), error=str(failure.error), delay=delay)
            await anyio.sleep(delay)
        try:
            return await attempt()
        except _Retriable as failure:
            raise failure.error from failure.__cause__

    def _url_of(self, path: Sequence[str], query: Mapping[str, str] | None) -> URL:
        # Segments are names a user typed: quoted whole, so a `/` in one stays inside it.
        segments = [quote(segment, safe="") for segment in path]
        return (self._url / "v1").joinpath(*segments, encoded=True).with_query(query)

    async def _attempt(self, method: str, url: URL, *, body: object,
                       headers: Mapping[str, str], time_limit: aiohttp.ClientTimeout) -> Any:
        """One request; _Retriable when sending it again may get another answer."""
        try:
            async with self._session.request(method, url, json=body, headers=headers,
                                             timeout=time_limit) as response:
                found = await self._json(response)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise _Retriable(RegistryError(f"cannot reach the registry service at {self._url}: "
                                           f"{exc or type(exc).__name__}")) from exc
        if response.status in RETRY_STATUSES:
            raise _Retriable(_error(response.status, found, url))
        if response.status >= _HTTP_BAD_REQUEST:
            raise _error(response.status, found, url)
        return found

    @staticmethod
    async def _json(response: aiohttp.ClientResponse) -> object:
        try:
            return decoded(await response.read())
        except MalformedAnswer as exc:
            if response.status >= _HTTP_BAD_REQUEST:
                return None  # a proxy's HTML error page: the status says enough
            raise RegistryError(
                f"the registry service at {response.url} did not answer JSON: {exc}"
            ) from None


def _logger() -> Logger:
    return get_logger("charon.registry_http")
