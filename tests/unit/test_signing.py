from collections.abc import Callable

import pytest

from orchestrator.errors import AuthError
from orchestrator.web.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    DeliveryLog,
    signed_headers,
    verify,
)

SECRET = b"s3cret"
BODY = b'{"endpoint": "e", "partition": "2018-10-31"}'
NOW = 1_700_000_000.0
Change = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def test_a_signed_body_verifies_and_yields_its_delivery_id() -> None:
    headers = signed_headers(SECRET, BODY, delivery_id="d-1", now=NOW)
    assert verify(SECRET, headers, BODY, now=NOW + 10) == "d-1"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda h, b: ({k: v for k, v in h.items() if k != SIGNATURE_HEADER}, b), "unsigned"),
        (lambda h, b: (h, b + b" "), "bad signature"),
        (lambda h, b: ({**h, SIGNATURE_HEADER: "sha256=" + "0" * 64}, b), "bad signature"),
        (lambda h, b: ({**h, TIMESTAMP_HEADER: "abc"}, b), "seconds since the epoch"),
        (lambda h, b: ({**h, DELIVERY_HEADER: ""}, b), "unsigned"),
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


@pytest.mark.parametrize("skew", [301, -301])
def test_requests_outside_the_replay_window_are_stale(skew: int) -> None:
    headers = signed_headers(SECRET, BODY, now=NOW)
    with pytest.raises(AuthError, match="stale"):
        verify(SECRET, headers, BODY, now=NOW + skew)


def test_delivery_ids_are_deduplicated_within_the_window_only() -> None:
    log = DeliveryLog(window=300)
    assert log.first_time("a", now=0)
    assert not log.first_time("a", now=299)
    assert log.first_time("b", now=299)
    assert log.first_time("a", now=301)
