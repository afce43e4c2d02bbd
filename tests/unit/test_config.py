from pathlib import Path

import pytest

from orchestrator.config import load_settings
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
