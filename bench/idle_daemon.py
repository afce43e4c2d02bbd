"""The daemon idle: CPU and memory while it watches 10,000 partitions none of which is ready.

Starts `charon daemon` on a fresh home with one workflow covering --partitions days
(bench.noop_tasks.Daily: a registry input per day), waits until every partition has
been evaluated once, then samples the process's CPU time and resident memory over
--seconds of idling (the registry change feed polled every poll_interval_ms), then
times each page of /status (1,000 partitions a page) from the first to the last, the
web UI's grid (its first and last pages, each fetched --fetches times: time and size)
and the live stream's catch-up, and reads the longest the event loop was blocked
(the daemon's loop-lag probe, /metrics) over all of it.
Usage: .venv/bin/python bench/idle_daemon.py [--partitions 10000] [--seconds 30]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHARON = str(Path(sys.executable).parent / "charon")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
FIRST_DAY = date(1920, 1, 1)
SWEEP_POLL = 0.1
"""Seconds between two looks for the sweep's end (`/status?limit=1`): the sweep's time is
at most this much late (it was 0.5 s, a tenth of a 100,000-day sweep)."""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def get_json(url: str) -> dict[str, object]:
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310  # loopback only
        result: dict[str, object] = json.load(response)
        return result


def page_times(url: str) -> list[float]:
    """Seconds each page of ``/status`` took to answer, the cursors followed to the last."""
    times, query = [], "limit=1000"
    while True:
        started = time.perf_counter()
        status = get_json(f"{url}/status?{query}")
        times.append(time.perf_counter() - started)
        if status["next"] is None:
            return times
        query = f"limit=1000&after={urllib.parse.quote(str(status['next']))}"


def fetch(url: str) -> tuple[float, int]:
    """Seconds to answer and bytes answered."""
    started = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310  # loopback only
        size = len(response.read())
    return time.perf_counter() - started, size


def grid_figures(url: str, partitions: int, fetches: int) -> list[str]:
    """The grid's first and last pages (60 days each), and the /events catch-up."""
    last = max(1, -(-partitions // 60))
    lines = []
    for page in dict.fromkeys((1, last)):
        timed = [fetch(f"{url}/?page={page}") for _ in range(fetches)]
        times = sorted(seconds for seconds, _ in timed)
        lines.append(f"grid page {page} of {last}: min {times[0] * 1000:.1f} ms, median "
                     f"{statistics.median(times) * 1000:.1f} ms, max {times[-1] * 1000:.1f} ms,"
                     f" {timed[0][1] / 1024:.1f} KiB")
    started = time.perf_counter()
    with urllib.request.urlopen(f"{url}/events?page=1", timeout=60) as stream:  # noqa: S310
        caught_up = len(stream.read1())
    lines.append(f"/events?page=1 catch-up: {(time.perf_counter() - started) * 1000:.1f} ms,"
                 f" {caught_up / 1024:.1f} KiB")
    return lines


def loop_lags(url: str) -> dict[str, float]:
    """The loop-lag probe's figures from /metrics: its histogram's cumulative bucket
    counts by upper bound, and ``max``, the longest block since start."""
    found = {}
    with urllib.request.urlopen(f"{url}/metrics", timeout=60) as response:  # noqa: S310
        for line in response.read().decode().splitlines():
            if line.startswith("charon_event_loop_lag_seconds_bucket"):
                found[line.split('"')[1]] = float(line.split()[-1])
            elif line.startswith("charon_event_loop_lag_max_seconds"):
                found["max"] = float(line.split()[-1])
    return found


def blocks_between(before: dict[str, float], after: dict[str, float]) -> str:
    """How many probes between two readings found the loop blocked over 10 ms, and the
    smallest bucket bound every one of them was under."""
    def new(bound: str) -> float:
        return after[bound] - before[bound]

    over = new("+Inf") - new("0.01")
    bounds = sorted((bound for bound in after if bound not in ("max", "+Inf")), key=float)
    under = next((bound for bound in bounds if new(bound) == new("+Inf")), "+Inf")
    return f"{over:.0f}, each under {under} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--partitions", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--poll-ms", type=int, default=2000)
    parser.add_argument("--fetches", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        config = Path(home) / "charon.toml"
        config.write_text(
            f"[daemon]\nport = 0\npoll_interval_ms = {args.poll_ms}\n\n[[workflows]]\n"
            'name = "daily"\nmodule = "bench.noop_tasks"\ntask = "Daily"\n'
            # An explicit range: lookback_days stops at a century, 36,501 days.
            f'start = "{FIRST_DAY}"\nend = "{FIRST_DAY + timedelta(days=args.partitions - 1)}"\n'
        )
        env = {**os.environ, "CHARON_HOME": home, "CHARON_CONFIG": str(config),
               "CHARON_LOG__LEVEL": "warning", "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen([CHARON, "daemon"], env=env, stdout=subprocess.PIPE,
                                  text=True)
        try:
            assert daemon.stdout is not None
            url = daemon.stdout.readline().strip().rsplit(" ", 1)[1]
            started = time.perf_counter()
            while True:
                totals = get_json(f"{url}/status?limit=1")["totals"]
                assert isinstance(totals, dict)
                if sum(totals.values()) == args.partitions and totals["unevaluated"] == 0:
                    break
                time.sleep(SWEEP_POLL)
            sweep = time.perf_counter() - started
            time.sleep(2)
            after_sweep = loop_lags(url)
            cpu0, wall0 = cpu_seconds(daemon.pid), time.perf_counter()
            time.sleep(args.seconds)
            cpu = (cpu_seconds(daemon.pid) - cpu0) / (time.perf_counter() - wall0)
            memory = rss_mib(daemon.pid)
            pages = page_times(url)
            grid = grid_figures(url, args.partitions, args.fetches)
            lags = loop_lags(url)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=60)
    print(f"daemon watching {args.partitions} partitions (registry polled every "
          f"{args.poll_ms} ms)")
    print(f"start-up sweep (evaluate every partition once): {sweep:.1f} s")
    print(f"idle CPU over {args.seconds:.0f} s: {cpu * 100:.2f}% of one core")
    print(f"resident memory: {memory:.0f} MiB")
    print(f"/status, {len(pages)} pages of up to 1,000 partitions: median "
          f"{statistics.median(pages) * 1000:.1f} ms, max {max(pages) * 1000:.1f} ms")
    print(*grid, sep="\n")
    print(f"longest event-loop block since start (sweep included): {lags['max'] * 1000:.0f} ms;"
          f" blocks over 10 ms after the sweep (idle, /status, grid, /events):"
          f" {blocks_between(after_sweep, lags)}")
    print(f"reproduce: .venv/bin/python bench/idle_daemon.py --partitions {args.partitions} "
          f"--seconds {args.seconds:.0f}")


if __name__ == "__main__":
    main()
