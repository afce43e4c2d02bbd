"""The TOML a configuration is read from: the embedded defaults, and the file
``CHARON_CONFIG`` names, read whole within a bound and parsed into plain dicts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from orchestrator.bounds import shown
from orchestrator.errors import ConfigError

MAX_CONFIG_BYTES = 1024 * 1024
"""A configuration is a few kilobytes; more is a mistake (a log, a device such as
/dev/urandom that never ends), refused before it fills the memory."""


def embedded_default_text() -> str:
    # An installed wheel carries the file inside the package; a source checkout has
    # it at the top level, where contributors look for it. The package is read as the
    # folder it is (charon is never imported from a zip), without importlib.resources,
    # whose import is a twentieth of the start-up of every command.
    here = Path(__file__).resolve().parent
    packaged = here / "default_config.toml"
    if packaged.is_file():
        return packaged.read_text()
    return (here.parent / "config.toml").read_text()


def read_config_file(name: str, variable: str) -> str:
    """The text of the configuration file ``name`` (from ``variable``), which may be any
    file that can be read, a pipe of the shell's ``<(...)`` included."""
    try:
        with Path(name).open("rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{variable}={shown(name)} is over {MAX_CONFIG_BYTES:,} bytes:"
                              " not a configuration file")
        return data.decode()
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the name, or not UTF-8
        raise ConfigError(f"cannot read {variable}={shown(name)}: {exc}") from None


def parse_toml(text: str, origin: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    # ValueError: an integer too long to convert (over 4,300 digits).
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise ConfigError(f"{origin} is not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise ConfigError(f"{origin} is not valid TOML: nested too deeply") from None
