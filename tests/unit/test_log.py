"""Logging: what log_context binds reaches every line inside it and nothing outside;
the level filters lines before structlog, which a line that passes gets configured."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
import structlog.testing

from orchestrator.log import (
    Throttled,
    bound_context,
    configure_logging,
    dropped_lines,
    get_logger,
    log_context,
    merge_log_context,
    reset_logging,
)


@pytest.fixture(autouse=True)
def unconfigured() -> Iterator[None]:
    yield
    reset_logging()
    structlog.reset_defaults()


def test_values_are_bound_inside_and_gone_after() -> None:
    with log_context(task="T(date=2018-10-31)", attempt=1):
        assert bound_context() == {"task": "T(date=2018-10-31)", "attempt": 1}
    assert bound_context() == {}


def test_an_outer_value_is_restored_after_an_inner_one_shadowed_it() -> None:
    with log_context(task="outer", workflow="daily"):
        with log_context(task="inner"):
            assert bound_context() == {"task": "inner", "workflow": "daily"}
        assert bound_context() == {"task": "outer", "workflow": "daily"}


def test_values_are_restored_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), log_context(run_id="r1"):
        raise RuntimeError("boom")
    assert bound_context() == {}


def test_log_lines_inside_carry_the_values_and_a_line_s_own_value_wins() -> None:
    with structlog.testing.capture_logs(processors=[merge_log_context]) as logs:
        with log_context(run_id="r1", task="bound"):
            get_logger("charon.test").info("inside", task="own")
        get_logger("charon.test").info("outside")
    assert logs[0]["run_id"] == "r1"
    assert logs[0]["task"] == "own"
    assert "run_id" not in logs[1]


def test_a_configured_logger_writes_json_lines_at_its_level_with_context() -> None:
    out = io.StringIO()
    configure_logging("warning", "json", out)
    log = get_logger("charon.test", component="engine")
    with log_context(run_id="r1"):
        log.info("dropped")
        log.bind(attempt=2).warning("kept", detail="x")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(line["event"], line["level"]) for line in lines] == [("kept", "warning")]
    assert lines[0]["component"] == "engine"
    assert lines[0]["attempt"] == 2
    assert lines[0]["run_id"] == "r1"
    assert lines[0]["detail"] == "x"


class ClosedPipe(io.StringIO):
    """A stream whose reader has gone: every write fails, as a pipe's then does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_line_the_stream_refuses_is_dropped_and_counted_not_raised() -> None:
    configure_logging("info", "json", ClosedPipe())
    log = get_logger("charon.test")
    log.info("one")
    log.error("two")
    structlog.get_logger().warning("three")
    assert dropped_lines() == 3


def test_structlog_used_directly_gets_the_configuration_too() -> None:
    """A task's module may log through structlog itself; its lines go where charon's do."""
    out = io.StringIO()
    configure_logging("info", "json", out)
    with log_context(run_id="r2"):
        structlog.get_logger().info("from a task")
    assert json.loads(out.getvalue())["run_id"] == "r2"


def test_a_throttled_warning_is_said_at_most_every_ten_seconds_with_its_count() -> None:
    now = [100.0]
    refused = Throttled(get_logger("charon.test"), "turned away", "connections",
                        clock=lambda: now[0])
    with structlog.testing.capture_logs() as logs:
        for at in (100.0, 101.0, 105.0, 110.0, 110.5, 125.0):
            now[0] = at
            refused(open=at)
    assert [(entry["event"], entry["connections"], entry["open"]) for entry in logs] == [
        ("turned away", 1, 100.0), ("turned away", 3, 110.0), ("turned away", 2, 125.0)]
    assert {entry["log_level"] for entry in logs} == {"warning"}
