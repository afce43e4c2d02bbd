"""Settings: the embedded ``config.toml``, an optional CHARON_CONFIG file, CHARON_* overrides.

The embedded file is both the defaults and the schema, so every key a user can set
is documented in one place and a misspelt key is an error, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any

from orchestrator.errors import ConfigError
from orchestrator.workflows import WorkflowSettings, parse_workflows

ENV_PREFIX = "CHARON_"
WORKFLOWS = "workflows"
_LOG_LEVELS = ("debug", "info", "warning", "error")
_LOG_FORMATS = ("auto", "console", "json")
CONFIG_ENV = "CHARON_CONFIG"
# Secrets never live in config files: only in these variables, or in the file a
# NAME_FILE variable points at.
SECRETS = {
    "registry_token": "CHARON_REGISTRY_TOKEN",
    "webhook_secret": "CHARON_WEBHOOK_SECRET",
    # Accepted as well as the current secret while a rotation lasts; senders sign with
    # the current one.
    "webhook_previous_secret": "CHARON_WEBHOOK_PREVIOUS_SECRET",
}
_SECRET_VARIABLES = {*SECRETS.values(), *(f"{name}_FILE" for name in SECRETS.values())}
_KINDS = {
    "state": ("sqlite", "postgres"),
    "registry": ("sqlite", "postgres", "http"),
    "warehouse": ("duckdb", "bigquery"),
    "storage": ("local", "gcs"),
}


@dataclass(frozen=True)
class StateSettings:
    kind: str
    path: Path
    dsn: str


@dataclass(frozen=True)
class RegistrySettings:
    kind: str
    path: Path
    dsn: str
    url: str
    timeout_seconds: int


@dataclass(frozen=True)
class RegistryServiceSettings:
    host: str
    port: int
    max_body_bytes: int
    long_poll_max_seconds: int
    subscribers: tuple[str, ...]
    notify_attempts: int


@dataclass(frozen=True)
class Secrets:
    """Read from the environment only; ``repr`` hides the values."""

    registry_token: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    webhook_previous_secret: str = field(default="", repr=False)


@dataclass(frozen=True)
class WarehouseSettings:
    kind: str
    path: Path
    location: str
    project: str


@dataclass(frozen=True)
class StorageSettings:
    kind: str
    root: Path
    output_prefix: str

    @property
    def resolved_output_prefix(self) -> str:
        """Where registry outputs without a ``uri_prefix`` of their own are written."""
        return self.output_prefix or str(self.root / "outputs")

    @property
    def data_prefix(self) -> str:
        """What relative storage URIs resolve against: the local root; GCS has none, so
        input data lives beside the outputs' prefix, in the same bucket."""
        return str(self.root) if self.kind == "local" else self.output_prefix


@dataclass(frozen=True)
class PostgresSettings:
    """The database CopyToTable tasks load into; empty dsn: none."""

    dsn: str


@dataclass(frozen=True)
class BeamSettings:
    runner: str
    python: str
    project: str
    region: str
    staging_location: str
    temp_location: str
    autoscaling_algorithm: str
    max_num_workers: int


@dataclass(frozen=True)
class DataflowSettings:
    api_root: str
    poll_interval_ms: int


@dataclass(frozen=True)
class EngineSettings:
    max_concurrent_runs: int
    lease_seconds: int


@dataclass(frozen=True)
class JanitorSettings:
    interval_seconds: int


@dataclass(frozen=True)
class DaemonSettings:
    host: str
    port: int
    poll_interval_ms: int
    jitter_percent: int
    max_backoff_seconds: int
    max_body_bytes: int
    shutdown_grace_seconds: int
    trigger_queue: int


@dataclass(frozen=True)
class LogSettings:
    level: str
    format: str


@dataclass(frozen=True)
class Settings:
    home: Path
    state: StateSettings
    registry: RegistrySettings
    registry_service: RegistryServiceSettings
    warehouse: WarehouseSettings
    storage: StorageSettings
    postgres: PostgresSettings
    beam: BeamSettings
    dataflow: DataflowSettings
    engine: EngineSettings
    janitor: JanitorSettings
    daemon: DaemonSettings
    log: LogSettings
    workflows: tuple[WorkflowSettings, ...]
    secrets: Secrets = field(default_factory=Secrets, repr=False)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the embedded defaults, CHARON_CONFIG and CHARON_* variables."""
    env = os.environ if environ is None else environ
    raw = _parse_toml(embedded_default_text(), "the embedded config.toml")
    if config_file := env.get(CONFIG_ENV):
        path = Path(config_file)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read {CONFIG_ENV}={config_file}: {exc}") from None
        _overlay(raw, _parse_toml(text, str(path)), str(path))
    _apply_env(raw, env)
    return dataclasses.replace(_build(raw), secrets=_secrets(env))


def _secrets(env: Mapping[str, str]) -> Secrets:
    values: dict[str, str] = {}
    for name, variable in SECRETS.items():
        if file_name := env.get(f"{variable}_FILE"):
            try:
                values[name] = Path(file_name).read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read {variable}_FILE={file_name}: {exc}") from None
        else:
            values[name] = env.get(variable, "")
    return Secrets(**values)


def embedded_default_text() -> str:
    # An installed wheel carries the file inside the package; a source checkout has
    # it at the top level, where contributors look for it.
    packaged = resources.files("orchestrator").joinpath("default_config.toml")
    if packaged.is_file():
        return packaged.read_text()
    return (Path(__file__).resolve().parent.parent / "config.toml").read_text()


def _parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None


def _overlay(base: dict[str, Any], update: Mapping[str, Any], origin: str) -> None:
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"{origin}: unknown key {key!r}")
        if key == WORKFLOWS:
            # A list of tables has no per-key defaults to merge with: it is replaced whole
            # and checked by the workflow parser.
            base[key] = value
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{origin}: {key!r} must be a table")
            _overlay(base[key], value, f"{origin} [{key}]")
        else:
            base[key] = _coerce(value, base[key], f"{origin}: {key}")


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> None:
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in (CONFIG_ENV, *_SECRET_VARIABLES):
            continue
        path = name[len(ENV_PREFIX) :].lower().split("__")
        target = raw
        for part in path[:-1]:
            section = target.get(part)
            if not isinstance(section, dict):
                raise ConfigError(f"{name}: unknown config section {part!r}")
            target = section
        key = path[-1]
        if key == WORKFLOWS:
            raise ConfigError(f"{name}: workflows can only be set in a CHARON_CONFIG file")
        if key not in target or isinstance(target[key], dict):
            raise ConfigError(f"{name}: unknown config key {'.'.join(path)!r}")
        target[key] = _coerce(value, target[key], name)


def _coerce(value: object, default: object, origin: str) -> object:
    """``value`` as the type of ``default``; strings (from the environment) are parsed."""
    converted = _CONVERTERS[type(default)](value)
    if converted is None:
        raise ConfigError(f"{origin}: expected {type(default).__name__}, got {value!r}")
    return converted


def _to_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def _to_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def _to_list(value: object) -> list[str] | None:
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return None


def _to_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


_CONVERTERS: dict[type, Callable[[object], object | None]] = {
    bool: _to_bool, int: _to_int, list: _to_list, str: _to_str,
}


def _build(raw: dict[str, Any]) -> Settings:
    home = Path(raw["home"]).expanduser().resolve()
    for section, kinds in _KINDS.items():
        kind = raw[section]["kind"]
        if kind not in kinds:
            raise ConfigError(f"{section}.kind = {kind!r}: expected one of {', '.join(kinds)}")
    _check_gcs_prefix(raw["storage"])
    _check_connections(raw)
    if raw["log"]["level"] not in _LOG_LEVELS:
        raise ConfigError(f"log.level = {raw['log']['level']!r}: expected one of {_LOG_LEVELS}")
    if raw["log"]["format"] not in _LOG_FORMATS:
        raise ConfigError(f"log.format = {raw['log']['format']!r}: expected one of {_LOG_FORMATS}")
    for key in ("max_concurrent_runs", "lease_seconds"):
        if raw["engine"][key] < 1:
            raise ConfigError(f"engine.{key} must be at least 1")
    if raw["dataflow"]["poll_interval_ms"] < 1:
        raise ConfigError("dataflow.poll_interval_ms must be at least 1")
    if raw["janitor"]["interval_seconds"] < 0:
        raise ConfigError("janitor.interval_seconds must not be negative (0: never)")
    sections: dict[str, object] = {"home": home}
    for name, klass in _SECTION_TYPES.items():
        values = {f.name: raw[name][f.name] for f in fields(klass)}
        for f in fields(klass):
            if f.type == "Path":
                values[f.name] = home / Path(values[f.name]).expanduser()
            elif isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        sections[name] = klass(**values)
    sections[WORKFLOWS] = parse_workflows(raw[WORKFLOWS])
    return Settings(**sections)  # type: ignore[arg-type]  # built field by field above


def _check_connections(raw: Mapping[str, Any]) -> None:
    """A server-backed kind needs its address, refused here before anything is opened."""
    for section in ("state", "registry"):
        if raw[section]["kind"] == "postgres" and not raw[section]["dsn"]:
            raise ConfigError(
                f'{section}.kind = "postgres" needs {section}.dsn'
                f" (CHARON_{section.upper()}__DSN)"
            )
    if raw["registry"]["kind"] == "http" and not raw["registry"]["url"]:
        raise ConfigError('registry.kind = "http" needs registry.url (CHARON_REGISTRY__URL)')


def _check_gcs_prefix(storage: Mapping[str, Any]) -> None:
    """On GCS, outputs need a bucket: the local default ("<root>/outputs") cannot work."""
    prefix = storage["output_prefix"]
    if storage["kind"] == "gcs" and not (prefix.startswith("gs://") and len(prefix) > 5):
        raise ConfigError(
            f'storage.output_prefix = {prefix!r}: storage.kind = "gcs" needs a gs://bucket/path'
            " prefix (CHARON_STORAGE__OUTPUT_PREFIX)"
        )


_SECTION_TYPES: dict[str, type] = {
    "state": StateSettings,
    "registry": RegistrySettings,
    "registry_service": RegistryServiceSettings,
    "warehouse": WarehouseSettings,
    "storage": StorageSettings,
    "postgres": PostgresSettings,
    "beam": BeamSettings,
    "dataflow": DataflowSettings,
    "engine": EngineSettings,
    "janitor": JanitorSettings,
    "daemon": DaemonSettings,
    "log": LogSettings,
}
