"""Settings: the embedded ``config.toml``, an optional CHARON_CONFIG file, CHARON_* overrides.

The embedded file is both the defaults and the schema, so every key a user can set
is documented in one place and a misspelt key is an error, not silently ignored.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from orchestrator.bounds import (
    DSN,
    HOST_NAME,
    IDENTIFIER,
    INTEGER,
    PORT,
    URL,
    matching,
    one_of,
    problems,
    shown,
    within,
)
from orchestrator.config_files import embedded_default_text, parse_toml, read_config_file
from orchestrator.errors import ConfigError
from orchestrator.secrets import SECRET_VARIABLES, Secrets, read_secrets
from orchestrator.workflows import WorkflowSettings, parse_workflows

ENV_PREFIX = "CHARON_"
WORKFLOWS = "workflows"
CONFIG_ENV = "CHARON_CONFIG"
EMBEDDED = "the embedded config.toml"
# Bounds of the numeric keys, far beyond any sensible value but small enough that
# nothing downstream overflows (a timedelta, a socket option, a buffer).
HOUR = 3600
DAY = 24 * HOUR
WEEK = 7 * DAY
MAX_BODY_BYTES = 1 << 30
_PROJECT = r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{0,62}"
_GCS_PATH = matching(r"gs://[^\s]+", "a gs://bucket/path")


@dataclass(frozen=True)
class StateSettings:
    kind: str = field(metadata=one_of("sqlite", "postgres"))
    path: Path
    dsn: str = field(metadata=DSN)


@dataclass(frozen=True)
class RegistrySettings:
    kind: str = field(metadata=one_of("sqlite", "postgres", "http"))
    path: Path
    dsn: str = field(metadata=DSN)
    url: str = field(metadata=URL)
    timeout_seconds: int = field(metadata=within(1, HOUR))


@dataclass(frozen=True)
class RegistryServiceSettings:
    backend: str = field(metadata=one_of("", "sqlite", "postgres"))
    host: str = field(metadata=HOST_NAME)
    port: int = field(metadata=PORT)
    max_body_bytes: int = field(metadata=within(1, MAX_BODY_BYTES))
    long_poll_max_seconds: int = field(metadata=within(0, HOUR))
    subscribers: tuple[str, ...] = field(metadata=URL)
    notify_attempts: int = field(metadata=within(1, 100))


@dataclass(frozen=True)
class WarehouseSettings:
    kind: str = field(metadata=one_of("duckdb", "bigquery"))
    path: Path
    # Part of the staging dataset's id (_incoming_<location>), which takes no hyphen.
    location: str = field(metadata=matching(r"[A-Za-z0-9_]{1,64}", "a location such as EU"))
    project: str = field(metadata=matching(_PROJECT, "a Google Cloud project id"))


@dataclass(frozen=True)
class StorageSettings:
    kind: str = field(metadata=one_of("local", "gcs"))
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

    dsn: str = field(metadata=DSN)


@dataclass(frozen=True)
class BeamSettings:
    runner: str = field(metadata=matching(IDENTIFIER, "a Beam runner such as DirectRunner"))
    python: str
    project: str = field(metadata=matching(_PROJECT, "a Google Cloud project id"))
    region: str = field(metadata=matching(r"[a-z0-9-]{1,64}", "a region such as europe-west1"))
    staging_location: str = field(metadata=_GCS_PATH)
    temp_location: str = field(metadata=_GCS_PATH)
    autoscaling_algorithm: str = field(metadata=one_of("", "NONE", "THROUGHPUT_BASED"))
    max_num_workers: int = field(metadata=within(0, 1000))  # 0: Dataflow's default
    # Beam's own pipeline options for every job; the pipeline checks them against Beam's.
    options: tuple[str, ...] = field(metadata=matching(
        r"--[A-Za-z][A-Za-z0-9_]*(?:=.*)?", "a pipeline option such as --direct_num_workers=2"))


@dataclass(frozen=True)
class DataflowSettings:
    api_root: str = field(metadata=URL)
    poll_interval_ms: int = field(metadata=within(1, HOUR * 1000))


@dataclass(frozen=True)
class EngineSettings:
    max_concurrent_runs: int = field(metadata=within(1, 1000))
    lease_seconds: int = field(metadata=within(1, WEEK))
    lookup_timeout_seconds: int = field(metadata=within(1, HOUR))


@dataclass(frozen=True)
class JanitorSettings:
    interval_seconds: int = field(metadata=within(0, WEEK))  # 0: never


@dataclass(frozen=True)
class DaemonSettings:
    host: str = field(metadata=HOST_NAME)
    port: int = field(metadata=PORT)
    poll_interval_ms: int = field(metadata=within(1, HOUR * 1000))
    # Beyond 100 a poll's delay could be negative.
    jitter_percent: int = field(metadata=within(0, 100))
    max_backoff_seconds: int = field(metadata=within(1, DAY))
    backfill_retry_seconds: int = field(metadata=within(0, DAY))
    max_body_bytes: int = field(metadata=within(1, MAX_BODY_BYTES))
    shutdown_grace_seconds: int = field(metadata=within(0, DAY))
    trigger_queue: int = field(metadata=within(1, 1_000_000))
    replica_timeout_seconds: int = field(metadata=within(1, HOUR))
    replica_id: str = field(metadata=matching(r"[A-Za-z0-9_.:-]{1,200}",
                                              "a replica id such as charon-0"))


@dataclass(frozen=True)
class LogSettings:
    level: str = field(metadata=one_of("debug", "info", "warning", "error"))
    format: str = field(metadata=one_of("auto", "console", "json"))


@dataclass(frozen=True)
class LineageSettings:
    kind: str = field(metadata=one_of("none", "console", "file", "http"))
    url: str = field(metadata=URL)
    path: Path
    namespace: str = field(metadata=matching(r"[A-Za-z0-9_.:/-]{1,200}", "a job namespace",
                                             optional=False))
    queue: int = field(metadata=within(1, 1_000_000))
    timeout_seconds: int = field(metadata=within(1, HOUR))


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
    lineage: LineageSettings
    workflows: tuple[WorkflowSettings, ...]
    secrets: Secrets = field(default_factory=Secrets, repr=False)


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build the settings from the embedded defaults, CHARON_CONFIG and CHARON_* variables."""
    env = os.environ if environ is None else environ
    raw = parse_toml(embedded_default_text(), EMBEDDED)
    origins: dict[str, str] = {}
    """Where a key's value came from ("daemon.port" → the file or variable), for errors."""
    if config_file := env.get(CONFIG_ENV):
        text = read_config_file(config_file, CONFIG_ENV)
        _overlay(raw, parse_toml(text, config_file), f"in {config_file}", origins)
    _apply_env(raw, env, origins)
    return dataclasses.replace(_build(raw, origins), secrets=read_secrets(env))


def _overlay(base: dict[str, Any], update: Mapping[str, Any], origin: str,
             origins: dict[str, str], prefix: str = "") -> None:
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in base:
            raise ConfigError(f"unknown key {name!r} ({origin})")
        origins[name] = origin
        if key == WORKFLOWS:
            # A list of tables has no per-key defaults to merge with: it is replaced whole
            # and checked by the workflow parser.
            base[key] = value
        elif isinstance(base[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{name} must be a table ({origin})")
            _overlay(base[key], value, origin, origins, f"{name}.")
        else:
            base[key] = _coerce(value, base[key], name, origin)


def _apply_env(raw: dict[str, Any], env: Mapping[str, str], origins: dict[str, str]) -> None:
    for variable, value in env.items():
        if not variable.startswith(ENV_PREFIX) or variable in (CONFIG_ENV, *SECRET_VARIABLES):
            continue
        path = variable[len(ENV_PREFIX) :].lower().split("__")
        target = raw
        for part in path[:-1]:
            section = target.get(part)
            if not isinstance(section, dict):
                raise ConfigError(f"{variable}: unknown config section {part!r}")
            target = section
        key, name = path[-1], ".".join(path)
        if key == WORKFLOWS:
            raise ConfigError(f"{variable}: workflows can only be set in a CHARON_CONFIG file")
        if key not in target or isinstance(target[key], dict):
            raise ConfigError(f"{variable}: unknown config key {name!r}")
        target[key] = _coerce(value, target[key], name, variable)
        origins[name] = variable


def _coerce(value: object, default: object, name: str, origin: str) -> object:
    """``value`` as the type of ``default``; strings (from the environment) are parsed."""
    converted = _CONVERTERS[type(default)](value)
    if converted is None:
        raise ConfigError(
            f"{name} = {shown(value)}: expected {type(default).__name__} ({origin})"
        )
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
    # Only spaces and tabs around the digits: str.strip() would also take control
    # characters such as "\x1f", which int() then refuses.
    text = value.strip(" \t") if isinstance(value, str) else ""
    if INTEGER.fullmatch(text):
        return int(text)
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


def _resolved_home(home: str, origins: Mapping[str, str]) -> Path:
    try:
        return Path(home).expanduser().resolve()
    # A name the file system cannot hold: a lone surrogate no encoding takes, a user
    # (~name) who does not exist, a link loop.
    except (UnicodeEncodeError, RuntimeError, OSError) as exc:
        raise ConfigError(f"home = {shown(home)}: not a usable path ({exc})"
                          f" ({origins.get('home', EMBEDDED)})") from None


def _build(raw: dict[str, Any], origins: Mapping[str, str]) -> Settings:
    _check_rules(raw, origins)
    _check_gcs_prefix(raw["storage"])
    _check_connections(raw)
    home = _resolved_home(raw["home"], origins)
    sections: dict[str, object] = {"home": home}
    for name, klass in _SECTION_TYPES.items():
        values = {f.name: raw[name][f.name] for f in fields(klass)}
        for f in fields(klass):
            if f.type == "Path":
                values[f.name] = home / Path(values[f.name]).expanduser()
            elif isinstance(values[f.name], list):
                values[f.name] = tuple(values[f.name])
        sections[name] = klass(**values)
    sections[WORKFLOWS] = parse_workflows(raw[WORKFLOWS], origins.get(WORKFLOWS, EMBEDDED))
    return Settings(**sections)  # type: ignore[arg-type]  # built field by field above


def _check_rules(raw: Mapping[str, Any], origins: Mapping[str, str]) -> None:
    """Every key against the rule its field declares: the first breach is the error."""
    checked: list[tuple[str, Mapping[str, Any], type]] = [("", {"home": raw["home"]}, _Home)]
    checked += [(f"{name}.", raw[name], klass) for name, klass in _SECTION_TYPES.items()]
    for prefix, values, klass in checked:
        for key, problem in problems(klass, values):
            name = f"{prefix}{key}"
            raise ConfigError(f"{name} = {shown(values[key])}: {problem}"
                              f" ({origins.get(name, EMBEDDED)})")


def _check_connections(raw: Mapping[str, Any]) -> None:
    """A server-backed kind needs its address, refused here before anything is opened."""
    for section in ("state", "registry"):
        if raw[section]["kind"] == "postgres" and not raw[section]["dsn"]:
            raise ConfigError(
                f'{section}.kind = "postgres" needs {section}.dsn'
                f" (CHARON_{section.upper()}__DSN)"
            )
    for section in ("registry", "lineage"):
        if raw[section]["kind"] == "http" and not raw[section]["url"]:
            raise ConfigError(f'{section}.kind = "http" needs {section}.url'
                              f" (CHARON_{section.upper()}__URL)")


def _check_gcs_prefix(storage: Mapping[str, Any]) -> None:
    """On GCS, outputs need a bucket: the local default ("<root>/outputs") cannot work."""
    prefix = storage["output_prefix"]
    if storage["kind"] == "gcs" and not (prefix.startswith("gs://") and len(prefix) > 5):
        raise ConfigError(
            f'storage.output_prefix = {prefix!r}: storage.kind = "gcs" needs a gs://bucket/path'
            " prefix (CHARON_STORAGE__OUTPUT_PREFIX)"
        )


@dataclass(frozen=True)
class _Home:
    """The top-level key, with no rule but the one every string has."""

    home: str


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
    "lineage": LineageSettings,
}
