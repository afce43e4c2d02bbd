"""One retrying JSON/bytes client for Google's REST APIs, shared by BigQuery and GCS.

gcloud-aio provides the parts that differ between real Google Cloud and the
emulators: where the API lives (``BIGQUERY_EMULATOR_HOST``, ``STORAGE_EMULATOR_HOST``)
and the OAuth token (application default credentials: GOOGLE_APPLICATION_CREDENTIALS,
gcloud's user credentials or the metadata server). The calls themselves go through
:meth:`GoogleApi.call`, so that every request of both adapters retries the same way
and reports a status the adapter can map (404 → None, 409 → look the job up,
412 → ObjectExists) instead of a library's exception text.
"""

from __future__ import annotations

import io
import json
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import anyio
from gcloud.aio.auth import Token

from orchestrator.stores.drivers.answers import MalformedAnswer, decoded

# Statuses worth retrying: rate limits and server-side trouble. Everything else is
# the caller's mistake or a definite answer and is reported at once.
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
Params = Mapping[str, str | int]


class HttpStatusError(Exception):
    """A definite (non-retried, or retries exhausted) HTTP error from a Google API."""

    def __init__(self, status: int, method: str, url: str, body: str) -> None:
        self.status = status
        self.reason = _reason(body)
        super().__init__(f"{method} {url}: HTTP {status}: {_message(body)}")


class HttpUnavailable(Exception):
    """The API could not be reached at all, after every retry."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter: ``initial * 2**n`` capped at ``maximum``."""

    attempts: int = 6
    initial_seconds: float = 0.2
    maximum_seconds: float = 8.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.maximum_seconds, self.initial_seconds * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311  (jitter, not secrecy)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Mapping[str, str]
    request: str
    """The request's method and URL, for messages."""

    def json(self, unreadable: Callable[[str], Exception]) -> dict[str, Any]:
        """The JSON object answered (empty for an empty body); for anything else,
        ``unreadable``'s exception: the adapter's own error, an outage of its port."""
        if not self.body:
            return {}
        try:
            parsed = decoded(self.body)
        except MalformedAnswer as exc:
            raise unreadable(f"{self.request} answered {exc}") from None
        if not isinstance(parsed, dict):
            raise unreadable(
                f"{self.request} answered a JSON {type(parsed).__name__}, not an object")
        return parsed


class GoogleApi:
    """Requests on one shared aiohttp session, authenticated unless on an emulator."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        *,
        emulated: bool,
        scopes: list[str],
        retry: RetryPolicy = RetryPolicy(),
        timeout_seconds: float = 60.0,
    ) -> None:
        self.session = session
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        # The token is fetched lazily and refreshed by gcloud-aio; emulators take none.
        # gcloud-aio types its session as requests' (its sync build); aiohttp's is right here.
        self._token = (
            None if emulated else Token(scopes=scopes, session=session)  # type: ignore[arg-type]
        )

    async def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self._token is not None:
            headers["Authorization"] = f"Bearer {await self._token.get()}"
        return headers

    async def call(
        self,
        method: str,
        url: str,
        *,
        params: Params | None = None,
        json_body: object | None = None,
        data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        ok: frozenset[int] = frozenset(),
    ) -> Response:
        """The response of a 2xx (or a status in ``ok``); HttpStatusError otherwise.

        429, 5xx and connection errors are retried with backoff; a request that
        cannot be repeated safely must make itself idempotent (a job id, a
        generation precondition), which is how both adapters use it.
        """
        payload = data if json_body is None else json.dumps(json_body, default=str).encode()
        content = {"Content-Type": "application/json"} if json_body is not None else {}
        for attempt in range(self._retry.attempts):
            last = attempt == self._retry.attempts - 1
            try:
                response = await self._send(
                    method, url, params, payload, {**content, **(headers or {})}
                )
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                if last:
                    raise HttpUnavailable(f"{method} {url}: {exc or type(exc).__name__}") from exc
            else:
                if response.status < 300 or response.status in ok:
                    return response
                if response.status not in RETRY_STATUSES or last:
                    raise HttpStatusError(
                        response.status, method, url, response.body.decode(errors="replace")
                    )
            await anyio.sleep(self._retry.delay(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")

    async def _send(
        self,
        method: str,
        url: str,
        params: Params | None,
        payload: bytes | None,
        headers: Mapping[str, str],
    ) -> Response:
        # A fresh stream per attempt: aiohttp sends it without blocking the loop,
        # which it warns raw bytes above 1 MiB would.
        stream = None if payload is None else io.BytesIO(payload)
        async with self.session.request(
            method, url, params=params, data=stream, headers=await self._headers(headers),
            timeout=self._timeout,
        ) as response:
            body = await response.read()
            return Response(response.status, body, dict(response.headers), f"{method} {url}")


def new_session() -> aiohttp.ClientSession:
    """The session both adapters share when the caller did not pass one."""
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120))


def _error(body: str) -> dict[str, Any]:
    try:
        parsed = decoded(body)
    except MalformedAnswer:
        return {}
    error = parsed.get("error") if isinstance(parsed, dict) else None
    return error if isinstance(error, dict) else {}


def _message(body: str) -> str:
    message = _error(body).get("message")
    return str(message) if message else (body.strip()[:300] or "(empty body)")


def _reason(body: str) -> str:
    errors = _error(body).get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        return str(errors[0].get("reason", ""))
    return ""
