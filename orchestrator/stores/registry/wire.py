"""The registry service's wire format, shared by the service and its HTTP client: the
JSON form of a revision, the ``code`` of a JSON error body, the idempotency headers."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime

from orchestrator.errors import RegistryError
from orchestrator.model import Revision
from orchestrator.stores.drivers.sqlite import iso_ms

# The ``code`` of a JSON error body.
CODE_INVALID_IDENTIFIER = "invalid_identifier"
CODE_BAD_REQUEST = "bad_request"
CODE_UNAUTHORIZED = "unauthorized"
CODE_UNKNOWN_REVISION = "unknown_revision"
CODE_IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
CODE_NOT_FOUND = "not_found"
CODE_METHOD_NOT_ALLOWED = "method_not_allowed"
CODE_TOO_LARGE = "too_large"
CODE_TIMEOUT = "timeout"
CODE_UNAVAILABLE = "unavailable"
CODE_INTERNAL = "internal"

# A publish's idempotency key, and the service's mark on a publish it only replayed.
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def revision_to_json(revision: Revision) -> dict[str, object]:
    """The wire form of a revision; times are ISO-8601 UTC with milliseconds."""
    return {
        "id": revision.id,
        "endpoint": revision.endpoint,
        "partition": revision.partition,
        "uri": revision.uri,
        "created": iso_ms(revision.created),
        "lineage": list(revision.lineage),
        "seq": revision.seq,
    }


def revision_from_json(value: object) -> Revision:
    revision = None
    if isinstance(value, Mapping):
        try:
            revision = Revision(
                id=str(value["id"]), endpoint=str(value["endpoint"]),
                partition=str(value["partition"]), uri=str(value["uri"]),
                created=_utc(datetime.fromisoformat(value["created"])),
                lineage=tuple(str(item) for item in value["lineage"]), seq=int(value["seq"]),
            )
        # OverflowError: a seq of 1e400 (infinity), or a time that leaves the calendar
        # once moved to UTC.
        except (KeyError, TypeError, ValueError, OverflowError):
            revision = None
    if revision is None:
        raise RegistryError(f"the registry service sent a malformed revision: {value!r:.200}")
    return revision


def _utc(created: datetime) -> datetime:
    if created.tzinfo is None:
        raise ValueError("a revision's creation time names its time zone")
    return created.astimezone(UTC)
