"""The loop every polling sensor runs: jittered interval, exponential backoff, never crash."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from orchestrator.core.ports import Adapters
from orchestrator.daemon.metrics import DaemonMetrics
from orchestrator.daemon.watch import Watchlist
from orchestrator.errors import CharonError, described, named
from orchestrator.log import get_logger
from sensors.facts import Trigger
from sensors.guard import STORAGE, WAREHOUSE, SourceGuards
from sensors.watches import RegistryFeed, StorageWatch, TableWatch


@dataclass(frozen=True)
class PollSchedule:
    interval: float
    jitter: float  # a fraction of the interval, e.g. 0.1
    max_backoff: float

    def next_delay(self, failures: int) -> float:
        """The pause before the next poll; it doubles per consecutive failure."""
        base = self.interval if not failures else min(
            self.interval * 2 ** failures, self.max_backoff
        )
        spread = base * self.jitter
        return max(0.0, base + random.uniform(-spread, spread))  # noqa: S311  # not crypto


async def poll_forever(
    name: str,
    poll_once: Callable[[], Awaitable[bool]],
    schedule: PollSchedule,
    metrics: DaemonMetrics,
) -> None:
    """Call ``poll_once`` until cancelled.

    ``poll_once`` returns True when it should be called again at once (it found work
    and more may be waiting, or it already waited on a long-poll). A failing source is
    logged and retried with backoff: one bad source never stops the daemon. Nor does a
    bug, or an answer no adapter foresaw: as an evaluation's, it is logged with its
    traceback, and the source is said to be down until a poll goes through.
    """
    log = get_logger("charon.sensor").bind(sensor=name)
    health = metrics.sources[name]
    while True:
        try:
            again = await poll_once()
        except Exception as exc:  # a bug too: see the docstring
            foreseen = isinstance(exc, CharonError)
            health.failed(described(exc) if foreseen else named(exc))
            metrics.sensor_errors.inc(sensor=name)
            if foreseen:
                log.warning("sensor poll failed", error=str(exc), failures=health.failures)
            else:
                log.exception("sensor poll crashed", failures=health.failures)
            again = False
        else:
            health.ok()
        metrics.sensor_polls.inc(sensor=name)
        if not again:
            await anyio.sleep(schedule.next_delay(health.failures))


def source_polls(
    adapters: Adapters, watch: Watchlist, send: MemoryObjectSendStream[Trigger],
    schedule: PollSchedule, metrics: DaemonMetrics, *, guards: SourceGuards,
) -> list[Callable[[], Awaitable[None]]]:
    """The daemon's polling sensors, each looping under :func:`poll_forever`: the
    registry's change feed, and the tables and objects ``watch`` watches, their
    listings bounded by the sources' ``guards``, the engine's lookups' too: a source that
    stops answering is one outage to both."""
    feed = RegistryFeed(adapters.registry, send)
    tables = TableWatch(adapters.warehouse, lambda: watch.datasets, send,
                        guards[WAREHOUSE])
    objects = StorageWatch(adapters.storage, adapters.data_prefix, lambda: watch.objects, send,
                           guards[STORAGE])
    return [partial(poll_forever, "registry", feed.poll_once, schedule, metrics),
            partial(poll_forever, "warehouse", tables.poll_once, schedule, metrics),
            partial(poll_forever, "storage", objects.poll_once, schedule, metrics)]
