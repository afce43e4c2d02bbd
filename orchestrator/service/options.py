"""What the registry service is run with, and the settings it refuses."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, replace

from orchestrator.config import Settings
from orchestrator.errors import ConfigError
from orchestrator.web import BODY_SECONDS


@dataclass(frozen=True)
class ServiceOptions:
    max_body_bytes: int = 65536
    body_seconds: float = BODY_SECONDS
    """How long a publish's body may take to arrive (tests shorten it)."""
    long_poll_max_seconds: float = 60.0
    token: str = ""
    webhook_secret: str = ""
    subscribers: tuple[str, ...] = ()
    notify_attempts: int = 5
    notify_backoff_seconds: float = 0.5  # the first retry's delay; doubles each time
    notify_queue_size: int = 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ServiceOptions:
        service = settings.registry_service
        return cls(
            max_body_bytes=service.max_body_bytes,
            long_poll_max_seconds=service.long_poll_max_seconds,
            token=settings.secrets.registry_token,
            webhook_secret=settings.secrets.webhook_secret,
            subscribers=service.subscribers,
            notify_attempts=service.notify_attempts,
        )


def served_settings(settings: Settings, backend: str | None = None) -> Settings:
    """The settings with the registry the service itself serves: ``backend`` (the
    ``--backend`` flag), else ``registry_service.backend``, else ``registry.kind``.

    One config can so serve clients (``registry.kind = "http"``) and the service behind
    them (``registry_service.backend = "sqlite"``, on ``registry.path``).
    """
    kind = backend or settings.registry_service.backend or settings.registry.kind
    if kind == "http":
        raise ConfigError(
            'the registry service serves a SQLite or PostgreSQL registry, and registry.kind'
            ' = "http" is what its clients use: set registry_service.backend = "sqlite" (or'
            ' "postgres") or pass --backend'
        )
    return replace(settings, registry=replace(settings.registry, kind=kind))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve to anything


def check_options(host: str, options: ServiceOptions) -> None:
    """Refuse settings that would make an unsafe or useless service."""
    if not options.token and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve the registry on {host} without a token: anyone who can "
            "reach it could publish; set CHARON_REGISTRY_TOKEN or listen on 127.0.0.1"
        )
    if options.subscribers and not options.webhook_secret:
        raise ConfigError("registry_service.subscribers needs CHARON_WEBHOOK_SECRET to sign "
                          "the notifications")
    if options.max_body_bytes < 1 or options.notify_attempts < 1:
        raise ConfigError("registry_service.max_body_bytes and notify_attempts must be >= 1")
    if options.long_poll_max_seconds < 0:
        raise ConfigError("registry_service.long_poll_max_seconds must not be negative")
