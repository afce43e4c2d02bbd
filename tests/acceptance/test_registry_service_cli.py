"""`charon registry serve` as a subprocess, used by `charon registry publish|ls` over HTTP."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.acceptance.conftest import CHARON, Cli, first_line

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
        process = subprocess.Popen(
            [CHARON, "registry", "serve", "--port", "0"],
            env={**charon.env, "CHARON_REGISTRY_TOKEN": TOKEN},
            stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        line = first_line(process, timeout=60)
        assert line.startswith(READY), f"no ready line: {line!r}\n{log.read_text()}"
        yield Server(process, line[len(READY):].strip(), log)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


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
