"""What the registry service reads from a request, checked before any store sees it.

Every value from the client is bounded here or by the registry's shared rules: the
body by ``max_body_bytes`` and :func:`decode_object`, path names by the validators,
query numbers by their ASCII spelling and range. A bad one is a :class:`UsageError`
(400), never an exception from deeper down.
"""

from __future__ import annotations

import math
import re

from aiohttp import web

from orchestrator import validate
from orchestrator.bounds import shown
from orchestrator.errors import UsageError
from orchestrator.stores.registry import wire
from orchestrator.stores.registry.base import check_limit, check_since
from orchestrator.web.json_body import decode_object

PUBLISH_FIELDS = frozenset({"endpoint", "partition", "uri", "lineage"})
REQUIRED_FIELDS = ("endpoint", "partition", "uri")
# ASCII digits only (int() and float() take any script's digits, spaces and '_'), and
# short: a 5,000-digit number is refused on its spelling, before converting it.
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_SECONDS = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,12})?(?:[eE][-+]?[0-9]{1,3})?")


def parse_publish(raw: bytes) -> tuple[str, str, str, list[str]]:
    """(endpoint, partition, uri, lineage) from a publish body; UsageError when malformed."""
    value = decode_object(raw)
    if unknown := sorted(set(value) - PUBLISH_FIELDS):
        raise UsageError(f"unknown fields: {shown(', '.join(unknown))}")
    if missing := [name for name in REQUIRED_FIELDS if name not in value]:
        raise UsageError(f"missing fields: {', '.join(missing)}")
    for name in REQUIRED_FIELDS:
        if not isinstance(value[name], str):
            raise UsageError(f"{name} must be a string")
    lineage = value.get("lineage", [])
    if not isinstance(lineage, list) or not all(isinstance(item, str) for item in lineage):
        raise UsageError("lineage must be a list of revision ids (strings)")
    return value["endpoint"], value["partition"], value["uri"], lineage


def idempotency_key(request: web.Request) -> str | None:
    """The publish's ``Idempotency-Key`` header; the registry validates it like the body."""
    keys = request.headers.getall(wire.IDEMPOTENCY_KEY_HEADER, [])
    if len(keys) > 1:
        raise UsageError(f"send one {wire.IDEMPOTENCY_KEY_HEADER} header, not {len(keys)}")
    return keys[0] if keys else None


def partition_path(request: web.Request) -> tuple[str, str]:
    """The (endpoint, partition) a path names, valid as a publish would need them."""
    endpoint, partition = request.match_info["endpoint"], request.match_info["partition"]
    return validate.endpoint(endpoint), validate.partition(partition)


def revision_path(request: web.Request) -> str:
    return validate.revision_id(request.match_info["revision_id"])


def changes_query(request: web.Request, default_limit: int) -> tuple[int, int, float]:
    """(since, limit, wait) of a change-feed read; wait is not capped here."""
    since = check_since(_integer(request, "since", 0))
    limit = check_limit(_integer(request, "limit", default_limit))
    return since, limit, _seconds(request, "wait")


def _one(request: web.Request, name: str) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise UsageError(f"send {name} once, not {len(values)} times")
    return values[0] if values else None


def _integer(request: web.Request, name: str, default: int) -> int:
    text = _one(request, name)
    if text is None:
        return default
    if not _INTEGER.fullmatch(text):
        raise UsageError(f"{name} must be an integer of ASCII digits, got {shown(text)}")
    return int(text)


def _seconds(request: web.Request, name: str) -> float:
    text = _one(request, name)
    if text is None:
        return 0.0
    seconds = float(text) if _SECONDS.fullmatch(text) else math.nan
    if not math.isfinite(seconds):
        raise UsageError(f"{name} must be a number of seconds of at least 0, got "
                         f"{shown(text)}")
    return seconds
