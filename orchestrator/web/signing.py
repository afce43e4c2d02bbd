"""Signed webhooks: HMAC-SHA256 over the timestamp and the raw body, as Stripe and GitHub do.

The sender adds three headers; the receiver checks the signature in constant time and
refuses timestamps more than a tolerance away from its clock, in either direction. The
receiver then remembers each delivery id (in the state store, shared by replicas and
kept across restarts) for as long as its timestamp can pass, so no delivery is accepted
twice. During a secret's rotation the receiver accepts the current and the previous
secret, and a sender may send one signature made with each.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from orchestrator.errors import AuthError

SIGNATURE_HEADER = "X-Charon-Signature"
TIMESTAMP_HEADER = "X-Charon-Timestamp"
DELIVERY_HEADER = "X-Charon-Delivery"
TOLERANCE_SECONDS = 300
"""How far a signed timestamp may be from the receiver's clock, before or after it."""
# 11 digits reach the year 5138: any real timestamp, and always within datetime's range.
MAX_TIMESTAMP_DIGITS = 11
# Two suffice for a rotation; a few more leave a sender room, and bound the HMACs we
# compute for one request.
MAX_SIGNATURES = 4
_SCHEME = "sha256="
MAX_SIGNATURE_HEADER_CHARS = MAX_SIGNATURES * (len(_SCHEME) + 64 + 1)
_DELIVERY_ID = re.compile(r"[!-~]{1,128}")  # printable ASCII without spaces
_DIGITS = re.compile(rf"[0-9]{{1,{MAX_TIMESTAMP_DIGITS}}}")


@dataclass(frozen=True)
class Delivery:
    """An authentic, fresh delivery: its id, and the timestamp its sender signed."""

    id: str
    timestamp: int

    @property
    def remember_until(self) -> datetime:
        """When the id may be forgotten: one tolerance after its timestamp stops passing.

        The timestamp passes until ``timestamp + TOLERANCE_SECONDS`` on the receiving
        replica's clock, but the id's expiry is judged on the state store's clock (the
        database's, shared by replicas). The second tolerance keeps the id remembered
        while any replica whose clock is within one tolerance of the store's could still
        accept the timestamp; later, a replay is refused as stale anyway.
        """
        return datetime.fromtimestamp(self.timestamp + 2 * TOLERANCE_SECONDS, UTC)


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
    secret: bytes, headers: Mapping[str, str], body: bytes, *,
    previous_secret: bytes = b"", now: float | None = None,
) -> Delivery:
    """Check a webhook's signature (by ``secret`` or ``previous_secret``) and freshness.

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
    if not _DIGITS.fullmatch(timestamp):
        raise AuthError(f"{TIMESTAMP_HEADER} must be seconds since the epoch: up to "
                        f"{MAX_TIMESTAMP_DIGITS} ASCII digits")
    if not _DELIVERY_ID.fullmatch(delivery_id):
        raise AuthError(f"{DELIVERY_HEADER} must be 1 to 128 printable ASCII characters")
    secrets = [s for s in (secret, previous_secret) if s]
    expected = [signature(s, timestamp, body).encode() for s in secrets]
    if not any(hmac.compare_digest(g, e) for g in _signatures(given) for e in expected):
        raise AuthError("bad signature")
    age = (time.time() if now is None else now) - int(timestamp)
    if abs(age) > TOLERANCE_SECONDS:
        when = f"{int(age)} s ago" if age > 0 else f"{int(-age)} s in the future"
        raise AuthError(f"stale request: signed {when}, the tolerance is "
                        f"{TOLERANCE_SECONDS} s either way")
    return Delivery(delivery_id, int(timestamp))


def _signatures(header: str) -> list[bytes]:
    """The header's signatures, ``sha256=<hex>`` separated by commas, as bytes."""
    if len(header) > MAX_SIGNATURE_HEADER_CHARS or not header.isascii():
        raise AuthError(f"{SIGNATURE_HEADER} must be at most {MAX_SIGNATURES} ASCII "
                        f"signatures separated by commas")
    parts = [part.strip() for part in header.split(",")]
    if len(parts) > MAX_SIGNATURES:
        raise AuthError(f"{SIGNATURE_HEADER} carries more than {MAX_SIGNATURES} signatures")
    return [part.encode() for part in parts]
