"""Acceptance tests run the installed ``charon`` command as a subprocess, on a fresh home."""

from __future__ import annotations

import json
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bench.noop_tasks import INPUT_ENDPOINT, OUTPUT_ENDPOINT

CHARON = str(Path(sys.executable).parent / "charon")
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Cli:
    home: Path
    extra: dict[str, str] = field(default_factory=dict)
    """Environment on top of the home: another registry, a state store."""

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARON_")}
        env.update(CHARON_HOME=str(self.home), CHARON_LOG__FORMAT="json")
        return {**env, **self.extra}

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CHARON, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """A server's first stdout line, without hanging the test if it never comes."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@pytest.fixture
def charon(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")


def wait_until(condition: Callable[[], bool], timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}\n{log.read_text()[-4000:]}")
        time.sleep(0.2)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def publish_daily_input(cli: Cli, day: str) -> None:
    """Publish ``day``'s input of bench.noop_tasks.Daily (a folder holding one file)
    through ``cli``'s registry."""
    folder = cli.home / "storage" / "inputs" / day
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part").write_text("input\n")
    result = cli("registry", "publish", INPUT_ENDPOINT, day, str(folder))
    assert result.returncode == 0, result.stderr


def daily_outputs(cli: Cli, day: str) -> int:
    """How many revisions of bench.noop_tasks.Daily's output ``day`` has in ``cli``'s
    registry."""
    return revisions(cli, OUTPUT_ENDPOINT, day)


def revisions(cli: Cli, endpoint: str, partition: str) -> int:
    """How many revisions the partition has in ``cli``'s registry."""
    listed = cli("registry", "ls", endpoint, partition)
    return max(0, len(listed.stdout.splitlines()) - 1)  # a header, then one line each


def reap(process: subprocess.Popen[str]) -> None:
    """Kill ``process`` if it still runs, wait for it and close its stdout pipe: what a
    test leaves of a server it started, whatever happened."""
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)
    assert process.stdout is not None
    process.stdout.close()


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _caught(signum: int, frame: object) -> None:
    """Never called: it only stands in for the handlers during a fork (see below)."""


@contextmanager
def _stop_signals_at_their_defaults() -> Iterator[None]:
    # What a process ignores its children inherit: a test run a shell without job control
    # started in the background ignores SIGINT, one under nohup SIGHUP, and charon keeps
    # what it was started ignoring. A caught signal is reset to its default in a child,
    # so catching them for the moment of the fork gives the child a terminal's defaults.
    previous = {signum: signal.signal(signum, _caught) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def popen(argv: list[str], **options: Any) -> subprocess.Popen[str]:
    """``argv`` as a terminal would start it (SIGINT, SIGTERM and SIGHUP at their
    defaults, whatever this test run ignores), its streams text."""
    with _stop_signals_at_their_defaults():
        return subprocess.Popen(argv, text=True, **options)


def start(argv: list[str], env: dict[str, str], log: Path, ready: str) -> tuple[
    subprocess.Popen[str], str
]:
    with log.open("w") as stderr:
        process = popen(argv, env=env, stdout=subprocess.PIPE, stderr=stderr)
    line = first_line(process, timeout=60)
    assert line.startswith(ready), f"no ready line: {line!r}\n{log.read_text()}"
    return process, line[len(ready):].strip()


def daily_daemon(tmp_path: Path, first: str, last: str, dsn: str,
                 extra: str = "") -> dict[str, str]:
    """The environment of a daemon on a fresh home watching bench.noop_tasks.Daily from
    ``first`` to ``last`` (``extra``: more of its workflow's settings), with its registry
    on PostgreSQL at ``dsn``."""
    config = tmp_path / "charon.toml"
    config.write_text(
        '[[workflows]]\nname = "daily"\nmodule = "bench.noop_tasks"\ntask = "Daily"\n'
        f'start = "{first}"\nend = "{last}"\n{extra}'
    )
    return {**importing_tests(Cli(tmp_path / "home").env), "CHARON_CONFIG": str(config),
            "CHARON_REGISTRY__KIND": "postgres", "CHARON_REGISTRY__DSN": dsn}


def importing_tests(env: dict[str, str]) -> dict[str, str]:
    """``env`` with the repository on PYTHONPATH: the task modules of tests/support and
    bench import from there."""
    return {**env, "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])}


def resumed_attempts(log: str) -> list[int]:
    """The attempts of the runs resumed, as the JSON lines of a charon log say."""
    return [json.loads(line)["attempt"] for line in log.splitlines()
            if '"run resumed"' in line]


API_TOKEN = "api-token"
"""The ``CHARON_API_TOKEN`` of the daemons that tests act through."""


def act(url: str, path: str, body: Mapping[str, object] | None = None) -> tuple[int, Any]:
    """The daemon's API's answer to ``body`` posted to ``path`` (to a GET without one),
    with API_TOKEN: its HTTP status and JSON."""
    request = urllib.request.Request(  # noqa: S310  # the test's own daemon on the loopback
        f"{url}{path}", data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
        return int(answer.status), json.load(answer)
