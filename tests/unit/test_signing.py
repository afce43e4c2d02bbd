from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from orchestrator.errors import AuthError
from orchestrator.testing import InMemoryStateStore, ManualClock
from orchestrator.web.signing import (
    DELIVERY_HEADER,
    MAX_SIGNATURES,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_SECONDS,
    Delivery,
    signature,
    signed_headers,
    verify,
)

SECRET = b"s3cret"
PREVIOUS = b"old-s3cret"
BODY = b'{"endpoint": "e", "partition": "2018-10-31"}'
NOW = 1_700_000_000.0
Change = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def test_a_signed_body_verifies_and_yields_its_delivery() -> None:
    headers = signed_headers(SECRET, BODY, delivery_id="d-1", now=NOW)
    assert verify(SECRET, headers, BODY, now=NOW + 10) == Delivery("d-1", int(NOW))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b), "unsigned"),
        (lambda h, b: (h, b + b" "), "bad signature"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=" + "0" * 64}, b), "bad signature"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "abc"}, b), "seconds since the epoch"),
        (lambda h, b: ({**h, DELIVERY_HEADER: ""}, b), "unsigned"),
        (lambda h, b: ({**h, DELIVERY_HEADER: "d" * 129}, b), "1 to 128 printable ASCII"),
        (lambda h, b: ({**h, DELIVERY_HEADER: "a b"}, b), "1 to 128 printable ASCII"),
        (lambda h, b: ({**h, DELIVERY_HEADER: "d\x00"}, b), "1 to 128 printable ASCII"),
        # aiohttp hands on undecodable header bytes as lone surrogates.
        (lambda h, b: ({**h, DELIVERY_HEADER: "d\udcff"}, b), "1 to 128 printable ASCII"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: h[SIGNATURE_HEADER] + "\udcff"}, b),
         "ASCII signatures"),
    ],
)
def test_tampered_or_incomplete_requests_are_refused(change: Change, message: str) -> None:
    headers, body = change(signed_headers(SECRET, BODY, now=NOW), BODY)
    with pytest.raises(AuthError, match=message):
        verify(SECRET, headers, body, now=NOW)


def test_the_wrong_secret_is_refused() -> None:
    headers = signed_headers(b"other", BODY, now=NOW)
    with pytest.raises(AuthError, match="bad signature"):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("skew", [TOLERANCE_SECONDS + 1, -TOLERANCE_SECONDS - 1])
def test_requests_beyond_the_tolerance_either_way_are_stale(skew: int) -> None:
    headers = signed_headers(SECRET, BODY, now=NOW)
    with pytest.raises(AuthError, match="stale"):
        verify(SECRET, headers, BODY, now=NOW + skew)


@pytest.mark.parametrize("skew", [TOLERANCE_SECONDS, -TOLERANCE_SECONDS])
def test_requests_within_the_tolerance_either_way_pass(skew: int) -> None:
    headers = signed_headers(SECRET, BODY, now=NOW)
    assert verify(SECRET, headers, BODY, now=NOW + skew).timestamp == int(NOW)


@pytest.mark.parametrize(
    "timestamp",
    ["9" * 5000, "1" * 12, "\u0661\u0667\u0660\u0660\u0660\u0660\u0660\u0660\u0660\u0660",
     "+1700000000", " 1700000000", "1700000000.5"],
    ids=["5000-digits", "12-digits", "arabic-indic-digits", "plus", "space", "fraction"],
)
def test_a_timestamp_must_be_a_few_ascii_digits_even_when_signed(timestamp: str) -> None:
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature(SECRET, timestamp, BODY),
               DELIVERY_HEADER: "d-1"}
    with pytest.raises(AuthError, match="seconds since the epoch"):
        verify(SECRET, headers, BODY, now=NOW)


def test_the_previous_secret_is_accepted_only_while_it_is_set() -> None:
    headers = signed_headers(PREVIOUS, BODY, delivery_id="d-1", now=NOW)
    assert verify(SECRET, headers, BODY, previous_secret=PREVIOUS, now=NOW).id == "d-1"
    with pytest.raises(AuthError, match="bad signature"):
        verify(SECRET, headers, BODY, now=NOW)


@pytest.mark.parametrize("separator", [",", ", "])
def test_one_good_signature_among_several_is_enough(separator: str) -> None:
    headers = signed_headers(SECRET, BODY, now=NOW)
    stale_key = signature(b"retired", headers[TIMESTAMP_HEADER], BODY)
    headers[SIGNATURE_HEADER] = separator.join([stale_key, headers[SIGNATURE_HEADER]])
    assert verify(SECRET, headers, BODY, now=NOW).timestamp == int(NOW)


def test_a_signature_header_is_bounded() -> None:
    headers = signed_headers(SECRET, BODY, now=NOW)
    good = headers[SIGNATURE_HEADER]
    too_many = ",".join(["sha256=00"] * MAX_SIGNATURES + [good])
    with pytest.raises(AuthError, match=f"more than {MAX_SIGNATURES} signatures"):
        verify(SECRET, {**headers, SIGNATURE_HEADER: too_many}, BODY, now=NOW)
    too_long = "x" * 1000 + "," + good
    with pytest.raises(AuthError, match=f"at most {MAX_SIGNATURES} ASCII signatures"):
        verify(SECRET, {**headers, SIGNATURE_HEADER: too_long}, BODY, now=NOW)


async def test_no_delivery_passes_twice_while_its_timestamp_can_pass() -> None:
    """Stamped at the far edge of the tolerance, a delivery stays fresh for two
    tolerances from its receipt; its id must be remembered at least that long."""
    received = NOW
    clock = ManualClock(datetime.fromtimestamp(received, UTC))
    store = InMemoryStateStore(now=clock)
    headers = signed_headers(SECRET, BODY, now=received + TOLERANCE_SECONDS)
    delivery = verify(SECRET, headers, BODY, now=received)
    assert await store.remember_delivery(delivery.id, delivery.remember_until)
    for later in [*range(1, 2 * TOLERANCE_SECONDS, 37), 2 * TOLERANCE_SECONDS]:
        clock.now = datetime.fromtimestamp(received + later, UTC)
        replay = verify(SECRET, headers, BODY, now=received + later)
        assert not await store.remember_delivery(replay.id, replay.remember_until)
    with pytest.raises(AuthError, match="stale"):
        verify(SECRET, headers, BODY, now=received + 2 * TOLERANCE_SECONDS + 1)
