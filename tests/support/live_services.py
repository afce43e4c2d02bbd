"""`charon registry serve` and `charon daemon` as subprocesses on loopback, for the tests
that hold the services to their OpenAPI documents (tests/integration/test_openapi.py and
test_schemathesis.py): those talk to them with schemathesis's blocking HTTP client, so
the services cannot share the test's event loop."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from orchestrator.web.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signed_headers,
)
from tests.acceptance.conftest import CHARON, Cli, start

TOKEN = "openapi-token"
SECRET = "openapi-webhook-secret"
API_TOKEN = "openapi-api-token"
WORKFLOW = "top_artists"
# Long-polls answer at once: a fuzzer asking for `wait` would otherwise spend most of
# its time waiting (the long-poll itself is tested in test_registry_service.py).
NO_LONG_POLL = {"CHARON_REGISTRY_SERVICE__LONG_POLL_MAX_SECONDS": "0"}


@dataclass(frozen=True)
class LiveService:
    url: str
    log: Path


@contextmanager
def _running(argv: list[str], env: dict[str, str], log: Path, ready: str) -> Iterator[LiveService]:
    process, url = start(argv, env, log, ready)
    try:
        yield LiveService(url, log)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


@contextmanager
def live_registry(home: Path) -> Iterator[LiveService]:
    """The registry service on a SQLite file, with a token: publishing needs it."""
    env = {**Cli(home).env, **NO_LONG_POLL, "CHARON_REGISTRY_TOKEN": TOKEN}
    with _running([CHARON, "registry", "serve", "--port", "0"], env,
                  home.parent / f"{home.name}-registry.log", "registry serving on ") as live:
        yield live


@contextmanager
def live_daemon(home: Path) -> Iterator[LiveService]:
    """The daemon watching the top-artists workflow, its webhooks signed with SECRET,
    its actions behind API_TOKEN."""
    home.mkdir(parents=True, exist_ok=True)
    config = home / "charon.toml"
    config.write_text(
        f'[[workflows]]\nname = "{WORKFLOW}"\nmodule = "jobs.top_artists"\n'
        'task = "TopArtistsJob"\nparams = { top_n = 10 }\nlookback_days = 2\n'
    )
    env = {**Cli(home).env, "CHARON_CONFIG": str(config), "CHARON_WEBHOOK_SECRET": SECRET,
           "CHARON_API_TOKEN": API_TOKEN}
    with _running([CHARON, "daemon", "--port", "0"], env,
                  home.parent / f"{home.name}-daemon.log", "daemon listening on ") as live:
        yield live


_WELL_FORMED = {
    TIMESTAMP_HEADER: re.compile(r"[0-9]{1,12}"),
    SIGNATURE_HEADER: re.compile(r"sha256=[0-9a-f]{64}"),
    DELIVERY_HEADER: re.compile(r".{1,128}", re.DOTALL),
}


class SigningSession(requests.Session):
    """Signs a webhook whose signature headers the fuzzer made well formed, over the
    very bytes sent; the delivery id stays the fuzzer's, so repeats happen too."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        path = urlsplit(request.url or "").path
        headers = request.headers
        if path.startswith("/hooks/") and all(
            pattern.fullmatch(_text(headers.get(name))) for name, pattern in _WELL_FORMED.items()
        ):
            body = request.body or b""
            assert isinstance(body, bytes | str), "a webhook body is sent whole"
            raw = body.encode() if isinstance(body, str) else body
            headers.update(signed_headers(SECRET.encode(), raw,
                                          delivery_id=_text(headers[DELIVERY_HEADER])))
        return super().send(request, **kwargs)


def _text(header: str | bytes | None) -> str:
    return header.decode("latin-1") if isinstance(header, bytes) else header or ""
