"""The README's screenshots of the web UI: the partition grid, a run page, a lineage
graph, a task graph and the charts.

Serves the daemon over an in-memory world watching two weeks of top_artists days, runs
some to success, one to failure, holds one running (printing its log) and one ready
behind it, then has headless Chromium (Debian's, as in the browser tests) photograph
the pages.
Usage: PYTHONPATH=. .venv/bin/python bench/ui_screenshots.py [--out docs]
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import timedelta
from pathlib import Path

import anyio

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.testing.world import DaemonWorld, build_world
from tests.support.browser import Watched, chromium, served_ui, watched_page
from tests.support.worlds import TODAY, make_world, output_revisions, publish_day

FAILURE = "JobFailed: Beam job exited with code 1: java.lang.OutOfMemoryError in ParDo(Count)"
JOB_OUTPUT = (
    "INFO:apache_beam.runners.portability.fn_api_runner:Running the pipeline on DirectRunner",
    "INFO:root:reading endContentFact <avro> and trackEntity <bigquery>",
    "INFO:apache_beam.runners.worker.statecache:Creating state cache with size 104857600",
    "INFO:root:CountPerArtist: 48,211 plays of 3,904 artists",
    "INFO:root:TopN(10): ranking",
)


async def shoot(out: Path) -> None:
    plain = make_world(max_runs=4)
    [workflow] = plain.daemon.settings.workflows
    settings = dataclasses.replace(plain.daemon.settings,
                                   workflows=(dataclasses.replace(workflow, lookback_days=13,
                                                                  max_concurrent_runs=1),))
    world = build_world(real_time=True).with_daemon(settings, today=lambda: TODAY)
    days = [(TODAY - timedelta(days=n)).isoformat() for n in range(13, 0, -1)]
    async with served_ui(world) as url, chromium() as browser:
        for day in days[:9]:
            await publish_day(world, day, f"/data/ecf/{day}")
        await settled(world, 9)
        world.runner.fail_with = FAILURE
        await publish_day(world, days[9], f"/data/ecf/{days[9]}")
        await settled(world, 10)
        world.runner.fail_with, world.runner.gate = None, anyio.Event()
        world.runner.output = JOB_OUTPUT
        await publish_day(world, days[10], f"/data/ecf/{days[10]}")
        await world.wait_for(lambda: world.runner.running == 1, timeout=30)
        # One run at a time: the next day, its inputs there, is ready.
        await publish_day(world, days[11], f"/data/ecf/{days[11]}")
        watched = await watched_page(browser)
        await watched.page.goto(url)
        await watched.page.locator("td.s-running").wait_for()
        await watched.page.locator("td.s-failed").wait_for()
        await watched.page.locator("td.s-ready").wait_for()
        await watched.page.screenshot(path=out / "ui-grid.png", full_page=True)
        await watched.page.locator("td.s-running a").click()
        await watched.page.locator("#log-lines").filter(has_text="TopN(10)").wait_for()
        await watched.page.screenshot(path=out / "ui-run.png", full_page=True)
        world.runner.gate.set()
        await settled(world, 11)
        await shoot_graphs(world, watched, url, (days[8], days[9]), out)
        assert watched.errors == [], watched.errors


async def shoot_graphs(world: DaemonWorld, watched: Watched, url: str, days: tuple[str, str],
                       out: Path) -> None:
    """The lineage of a day's output re-run for a late input, the task graph of the
    failed day, the charts."""
    day, failed = days
    await world.registry.publish(END_CONTENT_FACT, day, f"/data/ecf/{day}-late")
    with anyio.fail_after(30):
        while len(built := await output_revisions(world, day)) < 2:
            await anyio.sleep(0.05)
    newest = built[0]
    await watched.page.goto(f"{url}/lineage/{newest.id}")
    await watched.page.screenshot(path=out / "ui-lineage.png", full_page=True)
    await watched.page.goto(url)
    await watched.page.locator("thead a").click()
    await watched.page.wait_for_url("**/graph")
    await watched.page.goto(f"{watched.page.url}?date={failed}")
    await watched.page.screenshot(path=out / "ui-graph.png", full_page=True)
    await watched.page.goto(f"{url}/charts")
    await watched.page.screenshot(path=out / "ui-charts.png", full_page=True)


async def settled(world: DaemonWorld, jobs: int) -> None:
    """``jobs`` runs recorded and none still active: a job counted as started may still
    be recording its id, and would meet the next one's failure or gate."""
    with anyio.fail_after(30):
        while len(runs := await world.state.list_runs()) < jobs or any(
                run.state.active for run in runs):
            await anyio.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args()
    anyio.run(shoot, args.out)


if __name__ == "__main__":
    main()
