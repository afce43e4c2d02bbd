"""Refusals the daemon's JSON endpoints share: a full trigger queue, a body too large or
too slow, a body that is not a JSON object, a missing field, a day that is not one. Each
is a Rejected, answered as ``{"error", "code"}``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from aiohttp import web

from orchestrator.errors import CharonError, UsageError
from orchestrator.intervals import parse_day
from orchestrator.web import BODY_SECONDS
from orchestrator.web.http import Rejected, read_body
from orchestrator.web.json_body import decode_object


def queue_full() -> Rejected:
    return Rejected(503, "trigger queue full, retry later", "queue_full", {"Retry-After": "1"})


async def body_of(request: web.Request, limit: int, within: float = BODY_SECONDS) -> bytes:
    """The request's body: ``limit`` bytes at most, all there within ``within`` seconds."""
    try:
        return await read_body(request, limit, within=within)
    except web.HTTPRequestEntityTooLarge:
        raise Rejected(413, f"body over {limit} bytes", "oversized") from None
    except web.HTTPRequestTimeout as exc:
        raise Rejected(408, exc.text or "the request body came too slowly", "timeout") from None
    except web.HTTPBadRequest as exc:
        raise Rejected(400, exc.text or "the request body is malformed", "malformed") from None


def json_object(body: bytes) -> dict[str, Any]:
    try:
        return decode_object(body)
    except UsageError as exc:
        raise Rejected(400, str(exc), "malformed") from None


def field(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    if not isinstance(value, str) or not value:
        raise Rejected(400, f"field {name!r} must be a non-empty string", "malformed")
    return value


def day(text: str) -> date:
    try:
        return parse_day(text)
    except CharonError as exc:
        raise Rejected(400, str(exc), "malformed") from None
