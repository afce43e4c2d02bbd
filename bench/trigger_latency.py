"""Trigger latency: from a revision's publish to its run's launch.

Real components over loopback in one process: the registry service (SQLite), the
daemon with its HTTP server, and a publisher using the registry API. For each of
--publishes days, the publisher publishes the day's input revision and the clock
stops when the daemon launches that day's run (bench.noop_tasks.Daily). Modes:
  push       the service notifies the daemon by signed webhook; the daemon's own feed
             polls the registry file only every 60 s, so the webhook is what fires
  long-poll  no webhook; the daemon follows the service's change feed by long-poll
  poll       no webhook; the daemon polls the registry every --poll-ms
Usage: .venv/bin/python bench/trigger_latency.py [--publishes 200] [--poll-ms 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import socket
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from functools import partial
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.noop_tasks import INPUT_ENDPOINT  # after the path is set
from jobs.runners.beam import SubprocessJobRunner
from orchestrator.adapters import build_engine
from orchestrator.config import Settings, load_settings
from orchestrator.core.ports import Adapters
from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.http_api import daemon_app
from orchestrator.log import configure_logging
from orchestrator.service.app import running_service
from orchestrator.service.options import ServiceOptions
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.registry.http import HttpRegistry
from orchestrator.stores.registry.sqlite import SqliteRegistry
from orchestrator.stores.state.sqlite import SqliteStateStore
from orchestrator.stores.storage.local import LocalStorage
from orchestrator.stores.warehouse.duckdb import DuckDBWarehouse
from orchestrator.tasks.task import Task
from orchestrator.web.http import serve
from orchestrator.workflows import WorkflowSettings

SECRET = "bench-secret"
FIRST = date(2020, 1, 1)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def measure(mode: str, publishes: int, poll_ms: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        settings = load_settings({
            "CHARON_HOME": tmp, "CHARON_DAEMON__POLL_INTERVAL_MS":
                str(60_000 if mode == "push" else poll_ms),
        })
        workflow = WorkflowSettings(
            name="daily", module="bench.noop_tasks", task="Daily", start=FIRST.isoformat(),
            end=(FIRST + timedelta(days=publishes - 1)).isoformat(), max_concurrent_runs=64,
        )
        settings = dataclasses.replace(
            settings, workflows=(workflow,),
            secrets=dataclasses.replace(settings.secrets, webhook_secret=SECRET),
        )
        daemon_port = free_port()
        subscribers = (f"http://127.0.0.1:{daemon_port}/hooks/partitions",)
        options = ServiceOptions(webhook_secret=SECRET,
                                 subscribers=subscribers if mode == "push" else ())
        served = await SqliteRegistry.open(home / "registry.sqlite")
        async with running_service(served, options, host="127.0.0.1", port=0) as url:
            daemon_registry: Registry = (
                await HttpRegistry.open(url, token="", timeout=30) if mode == "long-poll"
                else await SqliteRegistry.open(home / "registry.sqlite")
            )
            publisher = await HttpRegistry.open(url, token="", timeout=30)
            adapters = Adapters(
                daemon_registry, DuckDBWarehouse(home / "warehouse", "EU"),
                LocalStorage(home / "storage"), await SqliteStateStore.open(home / "state.db"),
                str(home / "storage" / "outputs"),
            )
            # Polls are on a fixed cycle: a random pause before each publish keeps the
            # publishes from locking to its phase (which would bias the figure).
            pause = poll_ms / 1000 if mode == "poll" else 0.0
            latencies = await _publish_and_time(settings, adapters, publisher, port=daemon_port,
                                                publishes=publishes, pause=pause)
            for closable in (publisher, daemon_registry, adapters.state):
                await closable.aclose()
        await served.aclose()
    return latencies


async def _publish_and_time(settings: Settings, adapters: Adapters, publisher: HttpRegistry,
                            *, port: int, publishes: int, pause: float) -> list[float]:
    launched: dict[str, float] = {}
    arrived: dict[str, anyio.Event] = {}

    def on_launch(task: Task) -> None:
        launched[task.partition_label] = time.perf_counter()
        arrived.setdefault(task.partition_label, anyio.Event()).set()

    engine = build_engine(adapters, settings, SubprocessJobRunner(),
                          local_runner=SubprocessJobRunner())
    daemon = Daemon(settings, adapters, engine, on_launch=on_launch)
    app = daemon_app(daemon, secret=SECRET, max_body_bytes=65536)
    latencies = []
    async with anyio.create_task_group() as group:
        await group.start(daemon.run, partial(serve, app, "127.0.0.1", port))
        while not (daemon.roots and all(s.verdict for s in daemon.roots.values())):
            await anyio.sleep(0.01)
        for n in range(publishes):
            day = (FIRST + timedelta(days=n)).isoformat()
            event = arrived.setdefault(day, anyio.Event())
            await anyio.sleep(random.uniform(0, pause))
            started = time.perf_counter()
            await publisher.publish(INPUT_ENDPOINT, day, f"/inputs/{day}")
            with anyio.fail_after(30):
                await event.wait()
            latencies.append(launched[day] - started)
        await daemon.stop()
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--publishes", type=int, default=200)
    parser.add_argument("--poll-ms", type=int, default=500)
    args = parser.parse_args()
    configure_logging("error", "json")
    print(f"publish → launch, {args.publishes} publishes per mode, milliseconds")
    print(f"{'mode':<28}{'p50':>8}{'p90':>8}{'p99':>8}{'max':>8}")
    for mode in ("push", "long-poll", "poll"):
        values = [v * 1000 for v in await measure(mode, args.publishes, args.poll_ms)]
        label = f"poll every {args.poll_ms} ms" if mode == "poll" else mode
        print(f"{label:<28}{statistics.median(values):>8.2f}{percentile(values, 0.9):>8.2f}"
              f"{percentile(values, 0.99):>8.2f}{max(values):>8.2f}")
    print(f"reproduce: .venv/bin/python bench/trigger_latency.py --publishes {args.publishes} "
          f"--poll-ms {args.poll_ms}")


if __name__ == "__main__":
    anyio.run(main)
