"""Prometheus text-format metrics: counters and histograms, nothing more than the daemon needs."""

from __future__ import annotations

import bisect
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio

from orchestrator.log import dropped_lines

Labels = tuple[tuple[str, str], ...]

# Trigger-to-launch latency spans sub-millisecond pushes to multi-second polls.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
LOOP_LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5)
LOOP_PROBE_SECONDS = 0.1


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               for _, value in labels)
    return "{" + ",".join(f'{k}="{v}"' for (k, _), v in zip(labels, escaped, strict=True)) + "}"


class Counter:
    def __init__(self, name: str, help_text: str) -> None:
        self.name, self.help = name, help_text
        self._values: dict[Labels, float] = defaultdict(float)

    def inc(self, amount: float = 1, **labels: str) -> None:
        self._values[tuple(sorted(labels.items()))] += amount

    def value(self, **labels: str) -> float:
        return self._values.get(tuple(sorted(labels.items())), 0.0)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_labels(k)} {v:g}" for k, v in sorted(self._values.items())]
        return lines


class Gauge(Counter):
    def set(self, value: float, **labels: str) -> None:
        self._values[tuple(sorted(labels.items()))] = value

    def render(self) -> list[str]:
        lines = super().render()
        lines[1] = f"# TYPE {self.name} gauge"
        return lines


class Histogram:
    def __init__(self, name: str, help_text: str, buckets: Sequence[float], *,
                 kept: int = 100_000) -> None:
        """``kept``: how many observations are kept as they are, for exact percentiles."""
        self.name, self.help = name, help_text
        self.buckets = tuple(buckets)
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._kept = kept
        self.observations: list[float] = []

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self.buckets, value)] += 1
        self._sum += value
        # Kept (bounded) so benchmarks and /status can report exact percentiles.
        if len(self.observations) < self._kept:
            self.observations.append(value)

    @property
    def counts(self) -> tuple[int, ...]:
        """Observations per bucket (not cumulative), the last one past every bound."""
        return tuple(self._counts)

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} histogram"]
        cumulative = 0
        for bound, count in zip(self.buckets, self._counts, strict=False):
            cumulative += count
            lines.append(f'{self.name}_bucket{{le="{bound:g}"}} {cumulative}')
        total = cumulative + self._counts[-1]
        lines += [f'{self.name}_bucket{{le="+Inf"}} {total}',
                  f"{self.name}_sum {self._sum:g}", f"{self.name}_count {total}"]
        return lines


@dataclass
class SourceHealth:
    """How one outside system has been answering the daemon."""

    failures: int = 0
    """Consecutive failures; 0 once it answers again."""
    last_error: str | None = None
    last_error_at: datetime | None = None
    last_ok_at: datetime | None = None

    def ok(self) -> None:
        self.failures, self.last_ok_at = 0, datetime.now(UTC)

    def failed(self, error: str) -> None:
        self.failures += 1
        self.last_error, self.last_error_at = error, datetime.now(UTC)

    def as_json(self) -> dict[str, object]:
        return {
            "up": self.failures == 0, "failures": self.failures, "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at), "last_ok_at": _iso(self.last_ok_at),
        }


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


class DaemonMetrics:
    """Everything ``GET /metrics`` shows."""

    def __init__(self) -> None:
        self.sources: dict[str, SourceHealth] = defaultdict(SourceHealth)
        """By source: the sensors, the state store, evaluations."""
        self.source_up = Gauge("charon_source_up",
                               "1 when the source answered its last request, else 0")
        self.evaluation_errors = Counter(
            "charon_evaluation_errors_total",
            "Evaluations that a store or source error cut short, by workflow",
        )
        self.runs = Gauge("charon_runs", "Runs in the state store by state")
        self.staging_removed = Counter(
            "charon_staging_removed_total",
            "Staging folders and tables the janitor removed: no live run owned them",
        )
        self.sensor_polls = Counter("charon_sensor_polls_total", "Sensor polls by sensor")
        self.sensor_errors = Counter("charon_sensor_errors_total", "Failed sensor polls")
        self.triggers = Counter("charon_triggers_total", "Triggers received by source")
        self.webhooks_rejected = Counter(
            "charon_webhooks_rejected_total", "Webhook requests refused, by reason"
        )
        self.launches = Counter("charon_launches_total", "Runs launched by workflow")
        self.replicas = Gauge("charon_replicas",
                              "Live daemon replicas sharing the watched days, this one included")
        self.trigger_latency = Histogram(
            "charon_trigger_to_launch_seconds", "From trigger received to run launched",
            LATENCY_BUCKETS,
        )
        self.loop_lag = Histogram(
            "charon_event_loop_lag_seconds",
            f"How late a {LOOP_PROBE_SECONDS:g} s sleep woke: how long the event loop was"
            " blocked (every request, sensor and evaluation waits that long)",
            # Ten a second for as long as the daemon runs: its buckets and the max say it.
            LOOP_LAG_BUCKETS, kept=0,
        )
        self.loop_lag_max = Gauge("charon_event_loop_lag_max_seconds",
                                  "The longest the event loop was blocked since start")
        self.log_lines_dropped = Counter(
            "charon_log_lines_dropped_total",
            "Log lines the log's stream refused (its reader gone, its disk full)",
        )

    def render(self) -> str:
        for name, health in self.sources.items():
            self.source_up.set(1 if health.failures == 0 else 0, source=name)
        self.log_lines_dropped.inc(dropped_lines() - self.log_lines_dropped.value())
        metrics = (self.runs, self.sensor_polls, self.sensor_errors, self.source_up,
                   self.evaluation_errors, self.staging_removed, self.triggers,
                   self.webhooks_rejected, self.replicas, self.launches,
                   self.trigger_latency, self.loop_lag, self.loop_lag_max,
                   self.log_lines_dropped)
        return "\n".join(line for metric in metrics for line in metric.render()) + "\n"

    async def probe_loop_lag(self) -> None:
        """Sleep and see how late the wake-up is, for as long as the daemon runs."""
        while True:
            asleep = time.monotonic()
            await anyio.sleep(LOOP_PROBE_SECONDS)
            lag = max(0.0, time.monotonic() - asleep - LOOP_PROBE_SECONDS)
            self.loop_lag.observe(lag)
            if lag > self.loop_lag_max.value():
                self.loop_lag_max.set(lag)
