"""Properties of the configuration loader: whatever a CHARON_* variable holds, the
settings load or ConfigError says why (the CLI turns it into exit 2 and one line),
never another exception; and what loads is usable (a port a socket can bind)."""

from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from bench.hostile_corpus import HOSTILE_TEXTS, HUGE_DIGITS, SUPERSCRIPT_TWO
from orchestrator.config import Settings, load_settings
from orchestrator.errors import ConfigError

BOUNDED = settings(max_examples=200, deadline=None, database=None)
HOME = "/nonexistent/charon-properties-home"  # resolved, never opened
KEYS = st.sampled_from([
    "CHARON_HOME",
    "CHARON_ENGINE__MAX_CONCURRENT_RUNS",
    "CHARON_ENGINE__LEASE_SECONDS",
    "CHARON_DAEMON__PORT",
    "CHARON_DAEMON__POLL_INTERVAL_MS",
    "CHARON_DAEMON__MAX_BODY_BYTES",
    "CHARON_DAEMON__REPLICA_ID",
    "CHARON_DAEMON__REPLICA_TIMEOUT_SECONDS",
    "CHARON_REGISTRY_SERVICE__PORT",
    "CHARON_REGISTRY_SERVICE__SUBSCRIBERS",
    "CHARON_REGISTRY__TIMEOUT_SECONDS",
    "CHARON_REGISTRY__KIND",
    "CHARON_JANITOR__INTERVAL_SECONDS",
    "CHARON_LOG__LEVEL",
    "CHARON_STORAGE__KIND",
    "CHARON_STORAGE__OUTPUT_PREFIX",
])
values = (st.text() | st.sampled_from(HOSTILE_TEXTS) | st.integers().map(str)
          | st.from_regex(r"\A\s?-?\d{1,8}\s?\Z"))


def _loaded(environ: dict[str, str]) -> Settings | None:
    try:
        return load_settings({"CHARON_HOME": HOME, **environ})
    except ConfigError:
        return None


@BOUNDED
@given(KEYS, values)
@example("CHARON_DAEMON__PORT", "-1")
@example("CHARON_ENGINE__LEASE_SECONDS", SUPERSCRIPT_TWO)
@example("CHARON_ENGINE__LEASE_SECONDS", HUGE_DIGITS)
@example("CHARON_HOME", "/home/\x00")
@example("CHARON_ENGINE__LEASE_SECONDS", "0\x1f")
@example("CHARON_HOME", "\ud800")  # no file system encoding takes it
def test_any_value_loads_or_is_a_config_error(key: str, value: str) -> None:
    loaded = _loaded({key: value})
    if loaded is not None:
        for port in (loaded.daemon.port, loaded.registry_service.port):
            assert 0 <= port <= 65535


@BOUNDED
@given(st.dictionaries(KEYS, values, max_size=4))
def test_any_values_together_load_or_are_a_config_error(environ: dict[str, str]) -> None:
    _loaded(environ)


@BOUNDED
@given(st.integers(1, 1000))  # engine.max_concurrent_runs's range
def test_integers_are_taken_as_written(number: int) -> None:
    loaded = _loaded({"CHARON_ENGINE__MAX_CONCURRENT_RUNS": str(number)})
    assert loaded is not None
    assert loaded.engine.max_concurrent_runs == number
