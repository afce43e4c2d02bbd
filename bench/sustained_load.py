"""Sustained load: publish → launch while a publisher keeps a fixed rate for a while.

The registry service and the daemon run as subprocesses (`charon registry serve`,
`charon daemon`) on a fresh home, one workflow of bench.noop_tasks.Stamped (one day a
publish; each run writes the wall-clock time it began; up to 64 runs at once, the
workflow's limit and the engine's). The publisher, in this
process, publishes --rate days a second for --seconds, and its own calls are timed
from the moment each was due, so a publisher or registry falling behind counts
against the figure. Then it waits up to --drain seconds for the rest.
Configurations, alternated within each repeat:
  store    default: the embedded SQLite state store and the registry service on its
           SQLite file; postgres: state store and registry service on a fresh database
  mode     push: the service's signed webhook tells the daemon (its own feed polls
           only every 60 s); long-poll: the daemon follows the service's change feed
  replicas default 1; --replicas 1,2 also runs two daemon replicas sharing the state
           store (they split the days: README, Replicas share the watched days)
Figures: publish → launch p50/p90/p99/max (ms), the launches a second from the first
publish due to the last run begun (at a rate above what the daemons keep up with,
their capacity), the backlog (published, not launched) when the publisher stops and
how long it took to clear, the daemons' CPU time per launch, and how busy the
machine's cores were meanwhile (every process: the registry service, PostgreSQL and
the publisher share them with the daemons). Usage:
  .venv/bin/python bench/sustained_load.py [--rates 200,1000] [--seconds 10]
      [--stores default,postgres] [--modes push,long-poll] [--replicas 1,2]
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_stack import free_port  # after the path is set
from bench.idle_daemon import cpu_seconds
from bench.noop_tasks import INPUT_ENDPOINT
from bench.trigger_latency import percentile
from orchestrator.stores.registry.http import HttpRegistry
from orchestrator.testing.postgres import temporary_database

ROOT = Path(__file__).resolve().parent.parent
CHARON = str(Path(sys.executable).parent / "charon")
SECRET = "load-secret"
TOKEN = "load-token"
FIRST = date(2000, 1, 1)
READY_SECONDS = 300.0
MAX_IN_FLIGHT = 64
"""Runs in flight at once, the workflow's limit and the engine's."""


@dataclass(frozen=True)
class Case:
    store: str
    mode: str
    rate: int
    replicas: int = 1


@dataclass(frozen=True)
class Figures:
    latencies_ms: list[float]
    backlog: int
    drain_s: float
    cpu_ms_per_launch: float
    publish_rate: float
    launch_rate: float
    """Runs begun a second, from the first publish due to the last run begun."""
    machine_busy: float
    """The share of the machine's CPU time busy (all processes) while it ran."""


def _configs(case: Case, dsn: str, *, daemon_ports: list[int], service_port: int,
             days: int) -> tuple[str, str]:
    """The service's config and the daemons' (each replica's port is set apart)."""
    registry = (f'[registry]\nkind = "postgres"\ndsn = "{dsn}"\n' if case.store == "postgres"
                else "")
    # Every replica subscribes: the first to record a delivery acts on it.
    subscribers = ", ".join(f'"http://127.0.0.1:{port}/hooks/partitions"'
                            for port in daemon_ports) if case.mode == "push" else ""
    service = (f"{registry}\n[registry_service]\nport = {service_port}\n"
               f"subscribers = [{subscribers}]\n")
    if case.mode == "long-poll":
        registry = (f'[registry]\nkind = "http"\nurl = "http://127.0.0.1:{service_port}"\n'
                    "timeout_seconds = 60\n")
    state = f'[state]\nkind = "postgres"\ndsn = "{dsn}"\n' if case.store == "postgres" else ""
    daemon = (
        # The engine's limit as the workflow's: at its default (4) it would cap the runs
        # in flight below what the workflow allows.
        f"{registry}\n{state}\n[engine]\nmax_concurrent_runs = {MAX_IN_FLIGHT}\n\n[daemon]\n"
        f"poll_interval_ms = {60_000 if case.mode == 'push' else 500}\n\n"
        '[[workflows]]\nname = "daily"\nmodule = "bench.noop_tasks"\ntask = "Stamped"\n'
        f'start = "{FIRST}"\nend = "{FIRST + timedelta(days=days - 1)}"\n'
        f"max_concurrent_runs = {MAX_IN_FLIGHT}\n"
    )
    return service, daemon


def _start(argv: list[str], env: dict[str, str], config: Path, log: Path) -> subprocess.Popen[str]:
    with log.open("w") as err:
        return subprocess.Popen([CHARON, *argv], env={**env, "CHARON_CONFIG": str(config)},
                                stdout=subprocess.PIPE, stderr=err, text=True, cwd=ROOT)


@asynccontextmanager
async def _stack(case: Case, home: Path, dsn: str, days: int
                 ) -> AsyncIterator[tuple[str, list[int]]]:
    """The service's URL and the daemons' pids, once every day is evaluated."""
    daemon_ports, service_port = [free_port() for _ in range(case.replicas)], free_port()
    service_conf, daemon_conf = _configs(case, dsn, daemon_ports=daemon_ports,
                                         service_port=service_port, days=days)
    (home / "service.toml").write_text(service_conf)
    (home / "daemon.toml").write_text(daemon_conf)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHARON_")}
    env.update(PYTHONPATH=str(ROOT), CHARON_HOME=str(home), CHARON_LOG__LEVEL="warning",
               CHARON_WEBHOOK_SECRET=SECRET, CHARON_REGISTRY_TOKEN=TOKEN)
    processes = []
    try:
        service = _start(["registry", "serve"], env, home / "service.toml", home / "service.log")
        processes.append(service)
        assert service.stdout is not None
        url = (await anyio.to_thread.run_sync(service.stdout.readline)).strip().rsplit(" ", 1)[1]
        urls = []
        for n, port in enumerate(daemon_ports):
            daemon = _start(["daemon"], {**env, "CHARON_DAEMON__PORT": str(port)},
                            home / "daemon.toml", home / f"daemon-{n}.log")
            processes.append(daemon)
            assert daemon.stdout is not None
            urls.append((await anyio.to_thread.run_sync(daemon.stdout.readline)).strip()
                        .rsplit(" ", 1)[1])
        await _wait_swept(urls, days)
        yield url, [process.pid for process in processes[1:]]
    finally:
        for process in reversed(processes):
            process.send_signal(signal.SIGTERM)
            await anyio.to_thread.run_sync(process.wait)


async def _wait_swept(urls: list[str], days: int) -> None:
    """Until every replica knows the others and, between them, has evaluated every day
    (each evaluates the days it owns; the first may have evaluated all before the rest
    joined), the count of each no longer moving."""
    import aiohttp  # noqa: PLC0415  # the bench's own client; only here

    last: list[int] = []
    async with aiohttp.ClientSession() as session:
        with anyio.fail_after(READY_SECONDS):
            while True:
                seen = []
                for url in urls:
                    async with session.get(f"{url}/status?limit=1") as response:
                        status = await response.json()
                    evaluated = sum(status["totals"].values()) - status["totals"]["unevaluated"]
                    seen.append(evaluated if len(status["replicas"]) == len(urls) else -1)
                if min(seen) >= 0 and sum(seen) >= days and seen == last:
                    return
                last = seen
                await anyio.sleep(0.5)


def machine_ticks() -> tuple[int, int]:
    """The machine's busy and total CPU ticks since boot (/proc/stat)."""
    ticks = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]  # idle, iowait
    return sum(ticks) - idle, sum(ticks)


def _stamps(outputs: Path) -> dict[str, float]:
    found = {}
    for part in outputs.rglob("part"):
        day, stamp = part.read_text().split()
        found[day] = float(stamp)
    return found


async def _publish(publisher: HttpRegistry, rate: int, days: int) -> dict[str, float]:
    """Each day published when it is due (at most 256 calls in flight); the due times."""
    due: dict[str, float] = {}
    limit = anyio.Semaphore(256)
    start = time.time() + 0.1

    async def one(day: str) -> None:
        async with limit:
            await publisher.publish(INPUT_ENDPOINT, day, f"/inputs/{day}")

    async with anyio.create_task_group() as group:
        for n in range(days):
            day = (FIRST + timedelta(days=n)).isoformat()
            due[day] = start + n / rate
            await anyio.sleep(max(0.0, due[day] - time.time()))
            group.start_soon(one, day)
    return due


def _profile(py_spy: str, pid: int, seconds: float, out: str) -> None:
    """Samples the daemon while the publisher runs (py-spy's collapsed stacks)."""
    subprocess.Popen([py_spy, "record", "-p", str(pid), "-d", str(int(seconds)),
                      "--format", "raw", "-o", out],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(case: Case, seconds: float, drain: float, py_spy: str) -> Figures:
    days = int(case.rate * seconds)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        async with temporary_database("charon_load") as dsn, \
                _stack(case, home, dsn, days) as (url, pids):
            publisher = await HttpRegistry.open(url, token=TOKEN, timeout=60)
            cpu0, machine0 = sum(cpu_seconds(pid) for pid in pids), machine_ticks()
            if py_spy:
                for n, pid in enumerate(pids):
                    _profile(py_spy, pid, seconds,
                             f"{case.store}-{case.mode}-{case.rate}-{n}.txt")
            first = time.time()
            due = await _publish(publisher, case.rate, days)
            publish_rate = days / (time.time() - first)
            outputs = home / "storage" / "outputs"
            backlog = days - len(await anyio.to_thread.run_sync(_stamps, outputs))
            stopped = time.perf_counter()
            with anyio.move_on_after(drain):
                while len(stamps := await anyio.to_thread.run_sync(_stamps, outputs)) < days:
                    await anyio.sleep(0.2)
            drain_s = time.perf_counter() - stopped
            cpu = sum(cpu_seconds(pid) for pid in pids) - cpu0
            busy, total = (now - before for now, before in zip(machine_ticks(), machine0,
                                                                strict=True))
            await publisher.aclose()
    latencies = [(stamps[day] - due[day]) * 1000 for day in due if day in stamps]
    began = [stamps[day] for day in due if day in stamps]
    launch_rate = len(began) / max(1e-9, max(began, default=first) - min(due.values()))
    return Figures(latencies, backlog, drain_s, cpu * 1000 / max(1, len(latencies)),
                   publish_rate, launch_rate, busy / max(1, total))


def _row(case: Case, figures: Figures) -> str:
    values = figures.latencies_ms or [float("nan")]
    return (f"{case.store:<9}{case.mode:<10}{case.replicas:>4}{case.rate:>7}"
            f"{figures.publish_rate:>8.0f}{figures.launch_rate:>9.0f}"
            f"{statistics.median(values):>9.1f}{percentile(values, 0.9):>9.1f}"
            f"{percentile(values, 0.99):>9.1f}{max(values):>9.1f}{figures.backlog:>8}"
            f"{figures.drain_s:>8.1f}{len(figures.latencies_ms):>8}"
            f"{figures.cpu_ms_per_launch:>11.2f}{figures.machine_busy:>7.0%}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--drain", type=float, default=60.0)
    parser.add_argument("--stores", default="default,postgres")
    parser.add_argument("--modes", default="push,long-poll")
    parser.add_argument("--replicas", default="1",
                        help="daemon replicas sharing the state store, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--py-spy", default="", help="py-spy's path: profile the daemon")
    args = parser.parse_args()
    print(f"{'store':<9}{'mode':<10}{'reps':>4}{'rate/s':>7}{'kept/s':>8}{'launch/s':>9}"
          f"{'p50 ms':>9}{'p90':>9}{'p99':>9}{'max':>9}{'backlog':>8}{'drain s':>8}"
          f"{'runs':>8}{'CPU ms/run':>11}{'busy':>7}")
    for _ in range(args.repeat):
        for rate in (int(r) for r in args.rates.split(",")):
            for store in args.stores.split(","):
                for mode in args.modes.split(","):
                    for replicas in (int(n) for n in args.replicas.split(",")):
                        case = Case(store, mode, rate, replicas)
                        print(_row(case, await measure(case, args.seconds, args.drain,
                                                       args.py_spy)), flush=True)
    print(f"reproduce: .venv/bin/python bench/sustained_load.py --rates {args.rates} "
          f"--seconds {args.seconds:g} --drain {args.drain:g} --stores {args.stores} "
          f"--modes {args.modes} --replicas {args.replicas} --repeat {args.repeat}")


if __name__ == "__main__":
    anyio.run(main)
