import os
import re
import tomllib
from pathlib import Path

import pytest

from orchestrator.config import load_settings
from orchestrator.config_files import embedded_default_text
from orchestrator.errors import ConfigError


def test_embedded_defaults_need_no_file_and_no_service(tmp_path: Path) -> None:
    settings = load_settings({"CHARON_HOME": str(tmp_path)})
    assert settings.state.kind == "sqlite"
    assert settings.warehouse.kind == "duckdb"
    assert settings.storage.root == tmp_path / "storage"
    assert settings.beam.runner == "DirectRunner"


def test_env_overrides_are_typed_by_the_defaults(tmp_path: Path) -> None:
    settings = load_settings({
        "CHARON_HOME": str(tmp_path),
        "CHARON_ENGINE__MAX_CONCURRENT_RUNS": "7",
        "CHARON_BEAM__RUNNER": "DataflowRunner",
    })
    assert settings.engine.max_concurrent_runs == 7
    assert settings.beam.runner == "DataflowRunner"


def test_config_file_then_env(tmp_path: Path) -> None:
    config = tmp_path / "charon.toml"
    config.write_text('[warehouse]\nlocation = "US"\n[engine]\nmax_concurrent_runs = 2\n')
    settings = load_settings({
        "CHARON_CONFIG": str(config),
        "CHARON_HOME": str(tmp_path),
        "CHARON_ENGINE__MAX_CONCURRENT_RUNS": "3",
    })
    assert settings.warehouse.location == "US"
    assert settings.engine.max_concurrent_runs == 3


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CHARON_ENGINE__MAX_CONCURRENT_RUNZ": "3"}, "unknown config key"),
        ({"CHARON_NOPE__KEY": "3"}, "unknown config section"),
        ({"CHARON_ENGINE__MAX_CONCURRENT_RUNS": "many"}, "expected int"),
        ({"CHARON_ENGINE__MAX_CONCURRENT_RUNS": "0"}, "at least 1"),
        ({"CHARON_WAREHOUSE__KIND": "oracle"}, "expected one of"),
        ({"CHARON_STATE__KIND": "postgres"}, r"needs state\.dsn"),
        ({"CHARON_REGISTRY__KIND": "postgres"}, r"needs registry\.dsn"),
        ({"CHARON_REGISTRY__KIND": "http"}, r"needs registry\.url"),
        ({"CHARON_LOG__LEVEL": "loud"}, "log.level"),
        ({"CHARON_CONFIG": "/nonexistent/charon.toml"}, "cannot read"),
    ],
)
def test_bad_configuration_is_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


def test_unknown_keys_in_a_config_file_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "charon.toml"
    config.write_text("[warehouse]\nlocaton = 'US'\n")
    with pytest.raises(ConfigError, match=r"unknown key 'warehouse\.locaton' \(in .*\.toml\)"):
        load_settings({"CHARON_CONFIG": str(config)})


def test_secrets_come_from_the_environment_or_files_and_are_not_shown(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    settings = load_settings({
        "CHARON_WEBHOOK_SECRET": "hush",
        "CHARON_REGISTRY_TOKEN_FILE": str(token_file),
    })
    assert settings.secrets.webhook_secret == "hush"
    assert settings.secrets.registry_token == "from-file"
    assert "hush" not in repr(settings)
    assert "from-file" not in repr(settings)


@pytest.mark.parametrize("secret", ["two\nlines", "nul\x00", "bell\x07"])
def test_a_secret_with_control_characters_is_refused_naming_its_variable(
    tmp_path: Path, secret: str
) -> None:
    with pytest.raises(ConfigError, match=r"^CHARON_WEBHOOK_SECRET: .*control characters"):
        load_settings({"CHARON_WEBHOOK_SECRET": secret})
    token_file = tmp_path / "token"
    token_file.write_text(f"{secret}\n")
    with pytest.raises(ConfigError, match=r"^CHARON_REGISTRY_TOKEN: .*control characters"):
        load_settings({"CHARON_REGISTRY_TOKEN_FILE": str(token_file)})


@pytest.mark.parametrize("name", ["/no/such/file", "/nul\x00name"])
def test_a_secret_file_that_cannot_be_read_is_a_config_error(name: str) -> None:
    with pytest.raises(ConfigError, match=r"^cannot read CHARON_WEBHOOK_SECRET_FILE="):
        load_settings({"CHARON_WEBHOOK_SECRET_FILE": name})


def test_list_values_accept_comma_separated_overrides() -> None:
    settings = load_settings({
        "CHARON_REGISTRY_SERVICE__SUBSCRIBERS": "http://127.0.0.1:1/hooks, http://127.0.0.1:2/h"
    })
    assert settings.registry_service.subscribers == (
        "http://127.0.0.1:1/hooks", "http://127.0.0.1:2/h"
    )


def test_the_state_store_can_be_postgresql(tmp_path: Path) -> None:
    dsn = "postgresql://postgres@127.0.0.1:5432/charon"
    settings = load_settings({
        "CHARON_HOME": str(tmp_path), "CHARON_STATE__KIND": "postgres", "CHARON_STATE__DSN": dsn,
    })
    assert (settings.state.kind, settings.state.dsn) == ("postgres", dsn)


def _embedded_keys() -> list[tuple[str, object]]:
    """Every ``section.key`` of the embedded config.toml with its default."""
    raw = tomllib.loads(embedded_default_text())
    return [(f"{section}.{key}", default) for section, table in raw.items()
            if isinstance(table, dict) for key, default in table.items()]


def _variable(key: str) -> str:
    return "CHARON_" + key.upper().replace(".", "__")


@pytest.mark.parametrize("key", [key for key, default in _embedded_keys()
                                 if isinstance(default, int)])
def test_every_number_has_a_range(key: str) -> None:
    for value in ("-1", "99999999999999999999"):
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)} = {value}: must be at"):
            load_settings({_variable(key): value})


@pytest.mark.parametrize("key", [key for key, default in _embedded_keys()
                                 if isinstance(default, str | list)])
def test_no_string_takes_control_characters(key: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{re.escape(key)} = .*control characters"):
        load_settings({_variable(key): "x\x00y"})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"CHARON_DAEMON__POLL_INTERVAL_MS": "0"},
         r"^daemon\.poll_interval_ms = 0: must be at least 1 \(CHARON_DAEMON__POLL_INTERVAL_MS\)$"),
        ({"CHARON_DAEMON__MAX_BODY_BYTES": "-1"}, r"^daemon\.max_body_bytes = -1: must be at"),
        ({"CHARON_DAEMON__PORT": "99999999999999999999"},
         r"^daemon\.port = 99999999999999999999: must be at most 65535 \(CHARON_DAEMON__PORT\)$"),
        # Too long for int() (over 4,300 digits), and shown cut short.
        ({"CHARON_DAEMON__PORT": "9" * 5000}, r"^daemon\.port = '9{39}…: expected int \("),
        ({"CHARON_DAEMON__PORT": "\uff18\uff10"}, r"daemon\.port = .*: expected int"),
        ({"CHARON_DAEMON__JITTER_PERCENT": "101"}, r"jitter_percent = 101: must be at most 100"),
        ({"CHARON_DAEMON__HOST": "a host"}, r"daemon\.host = 'a host': expected a host name"),
        ({"CHARON_REGISTRY__URL": "ftp://registry"}, r"registry\.url = 'ftp://registry': expected"
                                                     r" an http:// or https:// URL"),
        ({"CHARON_DATAFLOW__API_ROOT": "dataflow.googleapis.com"}, r"dataflow\.api_root"),
        ({"CHARON_REGISTRY_SERVICE__SUBSCRIBERS": "http://a/hook, file:///etc/passwd"},
         r"registry_service\.subscribers = .*: expected an http:// or https:// URL"),
        ({"CHARON_STATE__DSN": "mysql://db"}, r"state\.dsn = 'mysql://db': expected a"
                                              r" postgresql:// or postgres:// DSN"),
        ({"CHARON_POSTGRES__DSN": "host=db"}, r"postgres\.dsn"),
        ({"CHARON_WAREHOUSE__LOCATION": "EU; DROP"}, r"warehouse\.location"),
        # The staging dataset's id would be invalid, failing every run that loads a table.
        ({"CHARON_WAREHOUSE__LOCATION": "europe-west1"}, r"warehouse\.location"),
        ({"CHARON_BEAM__AUTOSCALING_ALGORITHM": "FAST"}, r"beam\.autoscaling_algorithm = 'FAST'"),
        ({"CHARON_BEAM__OPTIONS": "--direct_num_workers=2,direct_running_mode=x"},
         r"^beam\.options = .*: expected a pipeline option such as --direct_num_workers=2"
         r" \(CHARON_BEAM__OPTIONS\)$"),
        ({"CHARON_HOME": "/srv/\x00"}, r"^home = .*control characters \(CHARON_HOME\)$"),
        ({"CHARON_CONFIG": "/srv/\x00"}, r"cannot read CHARON_CONFIG"),
    ],
)
def test_values_out_of_range_are_refused_naming_key_and_origin(
    environ: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[daemon]\npoll_interval_ms = 0\n",
         r"^daemon\.poll_interval_ms = 0: must be at least 1 \(in .*charon\.toml\)$"),
        ("[daemon]\nport = 70000\n", r"^daemon\.port = 70000: must be at most 65535 \(in "),
        (f"[daemon]\nport = {'9' * 5000}\n", r"charon\.toml is not valid TOML"),
        ("[log]\nlevel = 'loud'\n", r"^log\.level = 'loud': expected one of debug, info,"),
        ("[beam]\noptions = ['--direct_num_workers 2']\n", r"^beam\.options = .*: expected a"),
        ("[[workflows]]\nmodule = 'jobs.top_artists'\ntask = 'TopArtistsJob'\n"
         "lookback_days = 1000000000\n",
         r"^workflows\[0\]\.lookback_days = 1000000000: must be at most 36500 \(in .*toml\)$"),
    ],
)
def test_a_config_file_is_checked_the_same_way(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "charon.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings({"CHARON_CONFIG": str(config)})



def test_a_config_file_may_be_a_pipe() -> None:
    """The shell's ``CHARON_CONFIG=<(...)``: a file that can be read once, of no size."""
    read, write = os.pipe()
    try:
        os.write(write, b"[daemon]\nport = 9191\n")
        os.close(write)
        assert load_settings({"CHARON_CONFIG": f"/dev/fd/{read}"}).daemon.port == 9191
    finally:
        os.close(read)


@pytest.mark.parametrize(("content", "message"), [
    (b"x = 1\n" + b"# a comment\n" * 100_000, "is over 1,048,576 bytes"),
    (f"x = {'[' * 5000}{']' * 5000}\n".encode(), "is not valid TOML: nested too deeply"),
    (b"[daemon]\nport = 1\n# \xff\n", "cannot read CHARON_CONFIG"),
])
def test_a_config_file_too_big_too_deep_or_not_utf_8_is_refused(
    tmp_path: Path, content: bytes, message: str
) -> None:
    config = tmp_path / "charon.toml"
    config.write_bytes(content)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_settings({"CHARON_CONFIG": str(config)})
