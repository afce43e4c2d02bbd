"""log_context: what it binds reaches every log line inside it, and nothing outside."""

from __future__ import annotations

import pytest
import structlog
from structlog.contextvars import bind_contextvars, get_contextvars, reset_contextvars

from orchestrator.log import log_context


@pytest.fixture(autouse=True)
def clean_context() -> None:
    structlog.contextvars.clear_contextvars()


def test_values_are_bound_inside_and_gone_after() -> None:
    with log_context(task="T(date=2018-10-31)", attempt=1):
        assert get_contextvars() == {"task": "T(date=2018-10-31)", "attempt": 1}
    assert get_contextvars() == {}


def test_an_outer_value_is_restored_after_an_inner_one_shadowed_it() -> None:
    tokens = bind_contextvars(task="outer", workflow="daily")
    with log_context(task="inner"):
        assert get_contextvars() == {"task": "inner", "workflow": "daily"}
    assert get_contextvars() == {"task": "outer", "workflow": "daily"}
    reset_contextvars(**tokens)


def test_values_are_restored_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), log_context(run_id="r1"):
        raise RuntimeError("boom")
    assert get_contextvars() == {}


def test_log_lines_inside_carry_the_values() -> None:
    merge = structlog.contextvars.merge_contextvars
    with structlog.testing.capture_logs(processors=[merge]) as logs:
        with log_context(run_id="r1"):
            structlog.get_logger().info("inside")
        structlog.get_logger().info("outside")
    assert logs[0]["run_id"] == "r1"
    assert "run_id" not in logs[1]
