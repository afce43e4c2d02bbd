"""What the registry service's notifier reads of a subscriber's Retry-After."""

import pytest

from orchestrator.service.notify import MAX_BACKOFF_SECONDS, retry_after


@pytest.mark.parametrize(("header", "seconds"), [
    (None, 0.0), ("1", 1.0), (" 5 ", 5.0), ("0", 0.0), ("3600", MAX_BACKOFF_SECONDS),
    ("99999999999999999999", 0.0), ("999999999", MAX_BACKOFF_SECONDS), ("-5", 0.0),
    ("1.5", 0.0), ("1e9", 0.0), ("soon", 0.0),
    # A date is not read; other scripts' digits are no number of seconds.
    ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0), ("", 0.0), ("\u0661\u0662", 0.0),
])
def test_retry_after_is_whole_seconds_up_to_the_longest_backoff(header: str | None,
                                                                 seconds: float) -> None:
    assert retry_after(header) == seconds
