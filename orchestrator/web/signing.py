"""Signed webhooks: HMAC-SHA256 over the timestamp and the raw body.

The sender adds three headers; the receiver checks the signature in constant time,
refuses timestamps outside the replay window, and drops delivery ids it has seen.
Since a replay must carry a fresh timestamp to pass, delivery ids only need to be
remembered for the window itself, which keeps the memory bounded.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping

from orchestrator.errors import AuthError

SIGNATURE_HEADER = "X-Charon-Signature"
TIMESTAMP_HEADER = "X-Charon-Timestamp"
DELIVERY_HEADER = "X-Charon-Delivery"
REPLAY_WINDOW_SECONDS = 300
_SCHEME = "sha256="


def signature(secret: bytes, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return _SCHEME + digest.hexdigest()


def signed_headers(
    secret: bytes, body: bytes, *, delivery_id: str | None = None, now: float | None = None
) -> dict[str, str]:
    """The headers a sender adds to a webhook with this body."""
    timestamp = str(int(time.time() if now is None else now))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret, timestamp, body),
        DELIVERY_HEADER: delivery_id or uuid.uuid4().hex,
    }


def verify(
    secret: bytes, headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> str:
    """Check a webhook's signature and freshness; return its delivery id.

    Raise AuthError saying which check failed.
    """
    timestamp = headers.get(TIMESTAMP_HEADER, "")
    given = headers.get(SIGNATURE_HEADER, "")
    delivery_id = headers.get(DELIVERY_HEADER, "")
    if not (timestamp and given and delivery_id):
        raise AuthError(
            f"unsigned request: {TIMESTAMP_HEADER}, {SIGNATURE_HEADER} and "
            f"{DELIVERY_HEADER} are required"
        )
    if not timestamp.isdigit():
        raise AuthError(f"{TIMESTAMP_HEADER} must be seconds since the epoch")
    if not hmac.compare_digest(given.encode(), signature(secret, timestamp, body).encode()):
        raise AuthError("bad signature")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > REPLAY_WINDOW_SECONDS:
        raise AuthError(f"stale request: signed {int(age)} s ago, the window is "
                        f"{REPLAY_WINDOW_SECONDS} s")
    if len(delivery_id) > 128:
        raise AuthError(f"{DELIVERY_HEADER} is longer than 128 characters")
    return delivery_id


class DeliveryLog:
    """Delivery ids seen within the replay window, forgotten after it."""

    def __init__(self, window: float = REPLAY_WINDOW_SECONDS) -> None:
        self._window = window
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, delivery_id: str, now: float | None = None) -> bool:
        """Record the id; False if it was already seen within the window."""
        moment = time.monotonic() if now is None else now
        while self._seen and next(iter(self._seen.values())) < moment - self._window:
            self._seen.popitem(last=False)
        if delivery_id in self._seen:
            return False
        self._seen[delivery_id] = moment
        return True
