"""`charon registry serve` as a subprocess, used by `charon registry publish|ls` over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import CHARON, Cli, first_line, popen, reap

pytestmark = pytest.mark.slow

TOKEN = "acceptance-token"
DAY = "2018-10-31"
READY = "registry serving on "


@dataclass(frozen=True)
class HttpCli(Cli):
    """The CLI configured to use the registry service at ``url``."""

    url: str = ""
    token: str = TOKEN

    @property
    def env(self) -> dict[str, str]:
        env = super().env
        env.update(CHARON_REGISTRY__KIND="http", CHARON_REGISTRY__URL=self.url)
        if self.token:
            env["CHARON_REGISTRY_TOKEN"] = self.token
        return env


@dataclass(frozen=True)
class Server:
    process: subprocess.Popen[str]
    url: str
    log: Path


@pytest.fixture
def server(charon: Cli, tmp_path: Path) -> Iterator[Server]:
    log = tmp_path / "serve.log"
    with log.open("w") as stderr:
        process = popen(
            [CHARON, "registry", "serve", "--port", "0"],
            env={**charon.env, "CHARON_REGISTRY_TOKEN": TOKEN},
            stdout=subprocess.PIPE, stderr=stderr,
        )
    try:
        line = first_line(process, timeout=60)
        assert line.startswith(READY), f"no ready line: {line!r}\n{log.read_text()}"
        yield Server(process, line[len(READY):].strip(), log)
    finally:
        reap(process)


def test_publish_and_ls_through_the_service(charon: Cli, server: Server) -> None:
    # The service opens the registry alone, not the state store or the warehouse.
    assert all(p.name.startswith("registry.sqlite") for p in charon.home.iterdir())
    client = HttpCli(charon.home / "client", url=server.url)

    published = client("registry", "publish", "plays", DAY, "/data/plays/a",
                       "--lineage", "input-1")
    assert published.returncode == 0, published.stderr
    [header, row] = published.stdout.splitlines()
    assert header.split() == ["REVISION_ID", "CREATION_TIME", "URI"]
    revision_id = row.split()[0]

    listed = client("registry", "ls", "plays", DAY)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == [revision_id]

    anonymous = HttpCli(charon.home / "anonymous", url=server.url, token="")
    refused = anonymous("registry", "publish", "plays", DAY, "/data/plays/b")
    assert refused.returncode == 1
    assert "bearer token" in refused.stderr
    bad = client("registry", "publish", "bad endpoint", DAY, "/data/plays/c")
    assert bad.returncode == 2
    assert "invalid endpoint" in bad.stderr
    assert client("registry", "ls", "plays", DAY).stdout == listed.stdout

    keyed = ("registry", "publish", "plays", DAY, "/data/plays/k", "--idempotency-key", "k-1")
    first, retried = client(*keyed), client(*keyed)
    assert (first.returncode, retried.returncode) == (0, 0), first.stderr + retried.stderr
    assert retried.stdout == first.stdout  # the same revision, published once
    elsewhere = client("registry", "publish", "plays", "2018-11-01", "/data/plays/k",
                       "--idempotency-key", "k-1")
    assert elsewhere.returncode == 2
    assert "idempotency key 'k-1' already published" in elsewhere.stderr
    after_keyed = client("registry", "ls", "plays", DAY).stdout.splitlines()
    assert [line.split()[0] for line in after_keyed[1:]] == [
        first.stdout.splitlines()[1].split()[0], revision_id,
    ]

    begun = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=15) == 0, server.log.read_text()
    assert time.monotonic() - begun < 10
    assert "registry service stopping" in server.log.read_text()


def test_serve_refuses_all_interfaces_without_a_token(charon: Cli) -> None:
    result = charon("registry", "serve", "--host", "0.0.0.0", "--port", "0",  # noqa: S104
                    timeout=60)
    assert result.returncode == 2  # bad configuration
    assert "without a token" in result.stderr
    assert result.stdout == ""


HOSTILE_REQUESTS = [
    ("POST", "/v1/revisions", b"[" * 60_000),  # within the default 64 KiB body limit
    ("POST", "/v1/revisions",
     b'{"endpoint": "plays", "partition": "2018-10-31", "uri": "/data/\\ud800"}'),
    ("POST", "/v1/revisions", b'{"endpoint": ' + b"9" * 5000 + b"}"),
    ("GET", "/v1/changes?since=99999999999999999999", None),
    ("GET", "/v1/endpoints/%ED%A0%80/partitions/2018-10-31/latest", None),
    ("GET", "/v1/revisions/a%00b", None),
]


def test_hostile_requests_are_refused_and_the_service_stays_up(
    charon: Cli, server: Server
) -> None:
    for method, path, body in HOSTILE_REQUESTS:
        status, answer = _call(server.url + path, method, body)
        assert status == 400, (path, answer)
        assert isinstance(answer, dict)
        assert set(answer) == {"error", "code"}

    client = HttpCli(charon.home / "client", url=server.url)
    not_a_date = client("registry", "publish", "plays", "2018-99-99", "/data/plays/a")
    assert not_a_date.returncode == 2
    assert not_a_date.stderr.startswith("error: invalid partition '2018-99-99'")
    assert len(not_a_date.stderr.splitlines()) == 1

    assert _call(f"{server.url}/v1/changes") == (200, {"revisions": [], "next_since": 0})
    assert _call(f"{server.url}/healthz") == (200, {"status": "ok"})
    server.process.send_signal(signal.SIGHUP)  # a closed terminal: stops it as SIGTERM does
    assert server.process.wait(timeout=15) == 0
    log = server.log.read_text()
    assert "Traceback" not in log
    assert "request failed" not in log


def _call(url: str, method: str = "GET", body: bytes | None = None) -> tuple[int, object]:
    """One request to the service: its status and JSON answer."""
    # Both noqa: the URL is the service's own http:// one, on loopback.
    request = urllib.request.Request(url, data=body, method=method,  # noqa: S310
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read())
