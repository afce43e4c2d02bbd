"""The system the chaos benchmark attacks, every piece a process it can kill, pause and
restart: a fresh PostgreSQL database (state store and registry), the registry service
in front of it on a fixed port, and daemon replicas sharing one home.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
CHARON = str(Path(sys.executable).parent / "charon")
HARNESS_APP = "charon-chaos-harness"
"""The harness's own connections say so, so a fault cutting the daemons' spares them."""
TOKEN = "chaos-registry-token"
READY_SECONDS = 90.0
EXIT_SECONDS = 15.0
RESTART_AFTER_CRASH_SECONDS = 1.0
POLL_SECONDS = 0.1
LAST_WORDS_BYTES = 20_000
_RAISED = re.compile(r"^[\w.]+(Error|Exception|Group)\b.*:")
TOP_ARTISTS_N = 10

Say = Callable[[str], None]


@dataclass(frozen=True)
class Layout:
    """Where everything of one chaos run lives: one temporary folder."""

    root: Path

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def storage(self) -> Path:
        return self.home / "storage"

    @property
    def outputs(self) -> Path:
        return self.storage / "outputs"

    @property
    def inputs(self) -> Path:
        return self.storage / "chaos-inputs"

    @property
    def warehouse(self) -> Path:
        return self.home / "warehouse"

    @property
    def executions(self) -> Path:
        """The small job's execution log and locks (bench.chaos_job)."""
        return self.root / "executions"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def config(self) -> Path:
        return self.root / "charon.toml"

    def make(self) -> None:
        for folder in (self.storage, self.inputs, self.executions, self.logs):
            folder.mkdir(parents=True, exist_ok=True)


@dataclass(frozen=True)
class StackConfig:
    replicas: int
    lease_seconds: int
    janitor_seconds: int
    poll_ms: int
    first_day: date
    partitions: int
    top_days: tuple[date, ...]
    max_runs: int = 8
    top_max_runs: int = 1
    shutdown_grace_seconds: int = 15
    retry_delay_seconds: int = 5

    @property
    def days(self) -> list[date]:
        return [self.first_day + timedelta(days=n) for n in range(self.partitions)]


def config_toml(config: StackConfig, layout: Layout, dsn: str, registry_url: str) -> str:
    """The replicas' CHARON_CONFIG: shared state and registry, short leases, two workflows."""
    last = config.days[-1]
    top_first, top_last = min(config.top_days), max(config.top_days)
    return "\n".join([
        f'[state]\nkind = "postgres"\ndsn = "{dsn}"\n',
        f'[registry]\nkind = "http"\nurl = "{registry_url}"\ntimeout_seconds = 10\n',
        f"[engine]\nlease_seconds = {config.lease_seconds}\n"
        f"max_concurrent_runs = {config.max_runs + config.top_max_runs}\n",
        f"[janitor]\ninterval_seconds = {config.janitor_seconds}\n",
        # Replicas killed every few seconds come back under new ids: the dead ones'
        # days are taken over once their heartbeats are as old as a lease.
        f"[daemon]\npoll_interval_ms = {config.poll_ms}\n"
        f"shutdown_grace_seconds = {config.shutdown_grace_seconds}\n"
        f"replica_timeout_seconds = {config.lease_seconds}\n",
        '[log]\nformat = "json"\n',
        '[[workflows]]\nname = "chaos"\nmodule = "bench.chaos_tasks"\ntask = "ChaosTask"\n'
        f'params = {{ log_dir = "{layout.executions}" }}\n'
        f'start = "{config.first_day}"\nend = "{last}"\n'
        f"max_concurrent_runs = {config.max_runs}\n"
        f"retry_delay_seconds = {config.retry_delay_seconds}\n",
        '[[workflows]]\nname = "top_artists"\nmodule = "jobs.top_artists"\n'
        f'task = "TopArtistsJob"\nparams = {{ top_n = {TOP_ARTISTS_N} }}\n'
        f'start = "{top_first}"\nend = "{top_last}"\n'
        f"max_concurrent_runs = {config.top_max_runs}\n"
        f"retry_delay_seconds = {config.retry_delay_seconds}\n",
    ])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def base_env(home: Path) -> dict[str, str]:
    """This environment without any CHARON_ setting, running this checkout's code."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARON_")}
    env.update(PYTHONPATH=str(ROOT), CHARON_HOME=str(home), CHARON_LOG__FORMAT="json",
               CHARON_REGISTRY_TOKEN=TOKEN, CHARON_API_TOKEN=TOKEN)
    return env


@asynccontextmanager
async def harness_pool(dsn: str) -> AsyncIterator[asyncpg.Pool[Any]]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4, command_timeout=30,
                                     server_settings={"application_name": HARNESS_APP})
    try:
        yield pool
    finally:
        with anyio.CancelScope(shield=True):
            await pool.close()


class Service:
    """One long-running charon command: started, killed, paused, and supervised.

    An exit the harness did not cause is recorded, and the process restarted after a
    moment, as a supervisor would; the figures count such exits.
    """

    def __init__(self, name: str, argv: list[str], env: dict[str, str], *, logs: Path,
                 ready: str, say: Say) -> None:
        self.name = name
        self._argv, self._env, self._ready = argv, env, ready
        self.log = logs / f"{name}.log"
        self._out = logs / f"{name}.out"
        self._say = say
        self.process: anyio.abc.Process | None = None
        self.paused = False
        self.starts = 0
        self.unexpected_exits: list[str] = []
        self._intended = False
        self._closing = False
        self._exited = anyio.Event()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    @property
    def pid(self) -> int:
        assert self.process is not None  # asked only of a started service
        return self.process.pid

    async def start(self, group: anyio.abc.TaskGroup) -> None:
        with self.log.open("ab") as log, self._out.open("wb") as out:
            # In this checkout: jobs run as `python -m`, which looks in the working
            # directory first, so another checkout's folder would run its code.
            process = await anyio.open_process(self._argv, stdin=subprocess.DEVNULL,
                                               stdout=out, stderr=log, env=self._env,
                                               cwd=ROOT)
        self.process, self.paused, self._intended = process, False, False
        self._exited = anyio.Event()
        self.starts += 1
        group.start_soon(self._watch, process, self._exited, group)

    async def _watch(self, process: anyio.abc.Process, exited: anyio.Event,
                     group: anyio.abc.TaskGroup) -> None:
        code = await process.wait()
        await process.aclose()
        intended = self._intended
        exited.set()
        if intended or self._closing:
            return
        why = await _last_words(self.log)
        self.unexpected_exits.append(f"{self.name} pid {process.pid} exited with code {code}:"
                                     f" {why}")
        self._say(f"UNEXPECTED: {self.name} (pid {process.pid}) exited with code {code}"
                  f" ({why}); restarting it")
        await anyio.sleep(RESTART_AFTER_CRASH_SECONDS)
        if not self._closing and self.process is process:
            await self.start(group)

    async def wait_ready(self, *, through_restarts: bool = False) -> str:
        """What follows the ready line on the service's stdout (its URL): the current
        process's, the file being new with each start. An exit before it is an error,
        unless ``through_restarts``: then the restarted process's line is waited for."""
        with anyio.fail_after(READY_SECONDS):
            while True:
                for line in (await anyio.Path(self._out).read_text()).splitlines():
                    if line.startswith(self._ready):
                        return line[len(self._ready):].strip()
                if not self.running and not through_restarts:
                    raise RuntimeError(f"{self.name} exited before it was ready; see {self.log}")
                await anyio.sleep(POLL_SECONDS)

    def _signal(self, signum: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def kill(self) -> None:
        """SIGKILL (a stopped process dies too), and wait until it is reaped."""
        if not self.running:
            return
        self._intended = True
        exited = self._exited
        self._signal(signal.SIGKILL)
        self.paused = False
        with anyio.fail_after(EXIT_SECONDS):
            await exited.wait()

    def pause(self) -> None:
        if self.running:
            self._signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.running:
            self._signal(signal.SIGCONT)
        self.paused = False

    async def terminate(self, timeout: float) -> int | None:  # noqa: ASYNC109  # a bound on the exit
        """SIGTERM and the exit code; None (and SIGKILL) when it does not exit in time."""
        self._closing = True
        if not self.running:
            return None if self.process is None else self.process.returncode
        self.resume()
        self._intended = True
        exited = self._exited
        self._signal(signal.SIGTERM)
        with anyio.move_on_after(timeout):
            await exited.wait()
            assert self.process is not None
            return self.process.returncode
        await self.kill()
        return None

    async def close(self) -> None:
        """Whatever state it is in, end it: the harness leaves no process behind."""
        self._closing = True
        with anyio.CancelScope(shield=True):
            await self.kill()


async def _last_words(log: Path) -> str:
    """The last line of a log that is not a JSON event: an ``error:`` line or the end of
    a traceback, which says why a process exited."""
    text = await anyio.Path(log).read_text(errors="replace")
    lines = text[-LAST_WORDS_BYTES:].splitlines()[1:]  # the first may be cut short
    said = [line for line in lines if line.strip() and not line.startswith("{")]
    # The error line, else the exception a task group's traceback ended with, else any
    # (asyncio's "never retrieved" notes come after the traceback and say less).
    best = ([line for line in said if line.startswith("error:")]
            or [line for line in said if line.lstrip().startswith("|")
                and _RAISED.match(line.strip(" |"))]
            or [line for line in said if _RAISED.match(line)] or said)
    return best[-1].strip(" |")[:300] if best else "nothing said"


class Stack:
    """The registry service and the daemon replicas, over one database and one home."""

    def __init__(self, layout: Layout, config: StackConfig, dsn: str, say: Say) -> None:
        self.layout, self.config, self.dsn = layout, config, dsn
        port = free_port()
        self.registry_url = f"http://127.0.0.1:{port}"
        registry_env = {**base_env(layout.home), "CHARON_REGISTRY__KIND": "postgres",
                        "CHARON_REGISTRY__DSN": dsn}
        self.registry = Service("registry", [CHARON, "registry", "serve", "--port", str(port)],
                                registry_env, logs=layout.logs, ready="registry serving on ",
                                say=say)
        layout.config.write_text(config_toml(config, layout, dsn, self.registry_url))
        self.replicas = [
            Service(f"replica-{n}", [CHARON, "daemon", "--port", str(free_port())],
                    self.client_env, logs=layout.logs, ready="daemon listening on ", say=say)
            for n in range(1, config.replicas + 1)
        ]

    @property
    def client_env(self) -> dict[str, str]:
        """What a replica or a charon command against this system runs with."""
        return {**base_env(self.layout.home), "CHARON_CONFIG": str(self.layout.config)}

    @property
    def services(self) -> list[Service]:
        return [self.registry, *self.replicas]

    def replica_with_pid(self, pid: int) -> Service | None:
        return next((r for r in self.replicas if r.running and r.pid == pid), None)

    async def start(self, group: anyio.abc.TaskGroup) -> None:
        await self.registry.start(group)
        await self.registry.wait_ready()
        for replica in self.replicas:
            await replica.start(group)
        for replica in self.replicas:
            await replica.wait_ready()

    async def close(self) -> None:
        for service in self.services:
            await service.close()
