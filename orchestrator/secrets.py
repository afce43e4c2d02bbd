"""Secrets: read from the environment only, never from a configuration file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.bounds import shown
from orchestrator.errors import ConfigError

# Secrets never live in config files: only in these variables, or in the file a
# NAME_FILE variable points at.
SECRETS = {
    "registry_token": "CHARON_REGISTRY_TOKEN",
    "webhook_secret": "CHARON_WEBHOOK_SECRET",
    # Accepted as well as the current secret while a rotation lasts; senders sign with
    # the current one.
    "webhook_previous_secret": "CHARON_WEBHOOK_PREVIOUS_SECRET",
    # The bearer token of the daemon's action endpoints (trigger, re-run, cancel,
    # backfill); without it they are off.
    "api_token": "CHARON_API_TOKEN",
    # Sent as a bearer token with lineage.kind = "http".
    "lineage_api_key": "CHARON_LINEAGE_API_KEY",
}
SECRET_VARIABLES = {*SECRETS.values(), *(f"{name}_FILE" for name in SECRETS.values())}


@dataclass(frozen=True)
class Secrets:
    """Read from the environment only; ``repr`` hides the values."""

    registry_token: str = field(default="", repr=False)
    webhook_secret: str = field(default="", repr=False)
    webhook_previous_secret: str = field(default="", repr=False)
    api_token: str = field(default="", repr=False)
    lineage_api_key: str = field(default="", repr=False)


def read_secrets(env: Mapping[str, str]) -> Secrets:
    """The secrets from their variables, or the files their ``_FILE`` variables name."""
    values: dict[str, str] = {}
    for name, variable in SECRETS.items():
        if file_name := env.get(f"{variable}_FILE"):
            try:
                values[name] = Path(file_name).read_text().strip()
            # ValueError: a NUL in the name, or a file that is not text.
            except (OSError, ValueError) as exc:
                raise ConfigError(
                    f"cannot read {variable}_FILE={shown(file_name)}: {exc}") from None
        else:
            values[name] = env.get(variable, "")
        # A secret travels in HTTP headers and HMAC keys, where a control character
        # (a newline left inside a file, a NUL) would break every request, not this one.
        if any(not char.isprintable() for char in values[name]):
            raise ConfigError(f"{variable}: must not contain control characters")
    return Secrets(**values)
