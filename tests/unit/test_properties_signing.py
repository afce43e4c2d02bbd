"""Properties of signed webhooks: whatever the secret, body and moment within the replay
window, a signed request verifies to its delivery id; one byte changed anywhere is
refused; and whatever the header values, the answer is the delivery id or AuthError."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.hostile_corpus import HOSTILE_TEXTS, HUGE_DIGITS
from orchestrator.errors import AuthError
from orchestrator.web.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_SECONDS,
    signature,
    signed_headers,
    verify,
)

BOUNDED = settings(max_examples=200, deadline=None, database=None)
NOW = 1_700_000_000
secrets = st.binary(min_size=1, max_size=64)
bodies = st.binary(max_size=512)
delivery_ids = st.from_regex(r"\A[A-Za-z0-9-]{1,128}\Z")
skews = st.integers(-TOLERANCE_SECONDS, TOLERANCE_SECONDS)
# Header values as aiohttp hands them over: any text, undecodable bytes included (it
# decodes with surrogateescape), and the numbers of every script.
header_values = (st.text() | st.sampled_from(HOSTILE_TEXTS)
                 | st.from_regex(r"\A\d{1,12}\Z") | st.integers().map(str))


@BOUNDED
@given(secrets, bodies, delivery_ids, skews)
def test_a_signed_request_verifies_to_its_delivery_id(
    secret: bytes, body: bytes, delivery_id: str, skew: int
) -> None:
    headers = signed_headers(secret, body, delivery_id=delivery_id, now=NOW)
    assert verify(secret, headers, body, now=NOW + skew).id == delivery_id


@BOUNDED
@given(secrets, bodies.filter(bool), st.data())
def test_one_byte_changed_in_the_body_is_refused(
    secret: bytes, body: bytes, data: st.DataObject
) -> None:
    headers = signed_headers(secret, body, now=NOW)
    index = data.draw(st.integers(0, len(body) - 1))
    flip = data.draw(st.integers(1, 255))
    changed = body[:index] + bytes([body[index] ^ flip]) + body[index + 1:]
    try:
        verify(secret, headers, changed, now=NOW)
    except AuthError:
        return
    raise AssertionError("a changed body verified")


@BOUNDED
@given(secrets, bodies, st.data())
def test_one_character_changed_in_the_signature_is_refused(
    secret: bytes, body: bytes, data: st.DataObject
) -> None:
    headers = signed_headers(secret, body, now=NOW)
    given_signature = headers[SIGNATURE_HEADER]
    index = data.draw(st.integers(0, len(given_signature) - 1))
    other = data.draw(st.characters().filter(lambda c: c != given_signature[index]))
    headers[SIGNATURE_HEADER] = given_signature[:index] + other + given_signature[index + 1:]
    try:
        verify(secret, headers, body, now=NOW)
    except AuthError:
        return
    raise AssertionError("a changed signature verified")


@BOUNDED
@given(secrets, bodies, header_values, header_values, header_values)
@example(b"s", b"{}", str(NOW), "\udcff", "d-1")  # an undecodable byte in the signature
def test_any_headers_are_refused_with_auth_error(
    secret: bytes, body: bytes, timestamp: str, given_signature: str, delivery_id: str
) -> None:
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: given_signature,
               DELIVERY_HEADER: delivery_id}
    try:
        verify(secret, headers, body, now=NOW)
    except AuthError:
        return
    raise AssertionError("an unsigned request verified")


@BOUNDED
@given(secrets, bodies, header_values, header_values)
@example(b"s", b"{}", HUGE_DIGITS, "d-1")
def test_any_timestamp_signed_with_the_secret_is_fresh_or_refused_with_auth_error(
    secret: bytes, body: bytes, timestamp: str, delivery_id: str
) -> None:
    """A sender holding the secret (a misbehaving publisher) signs whatever it likes."""
    try:
        headers = {TIMESTAMP_HEADER: timestamp, DELIVERY_HEADER: delivery_id,
                   SIGNATURE_HEADER: signature(secret, timestamp, body)}
    except UnicodeEncodeError:
        return  # no such request can be signed, nor sent
    try:
        accepted = verify(secret, headers, body, now=NOW)
    except AuthError:
        return
    assert accepted.id == delivery_id
    assert timestamp.isascii()
    assert abs(int(timestamp) - NOW) <= TOLERANCE_SECONDS
    assert 1 <= len(delivery_id) <= 128
