"""The run page and the partition page in a real headless Chromium: a running job's log
lines appear as it prints them, the timeline follows the run to its end, and a waiting
partition's page names the input it waits for; no page logs an error."""

from __future__ import annotations

import anyio

from jobs.top_artists import END_CONTENT_FACT
from tests.support.browser import Watched, served_ui
from tests.support.worlds import DAY, make_world, publish_day

CELL = f'td[data-key="top_artists/{DAY}"]'


async def test_the_run_page_streams_a_running_job_s_log_and_follows_it_to_its_end(
    tab: Watched,
) -> None:
    page, world = tab.page, make_world()
    world.runner.output = tuple(f"step {n} <b>of</b> 4" for n in range(4))
    world.runner.output_pause = 0.4
    world.runner.gate = anyio.Event()
    async with served_ui(world) as url:
        await page.goto(url)
        await page.locator(f"{CELL}.s-waiting a").click()  # to the partition's page
        await page.locator("#explain").filter(has_text=END_CONTENT_FACT).wait_for()
        assert "waiting for input" in await page.locator("#explain").inner_text()

        await publish_day(world)
        await page.goto(url)
        await page.locator(f"{CELL}.s-running a").click()
        lines = page.locator("#log-lines")
        await lines.filter(has_text="step 0").wait_for()
        # Still printing when the page had its first lines: the rest come live.
        assert "step 3" not in await lines.inner_text()
        await page.evaluate("window.notReloaded = true")
        await lines.filter(has_text="step 3 <b>of</b> 4").wait_for()
        assert await page.locator("#log-lines b").count() == 0  # shown as text
        timeline = page.locator("#timeline")
        assert [await s.inner_text() for s in await timeline.locator(".state").all()] == [
            "created", "running"]

        world.runner.gate.set()
        await page.locator("#run-state.s-succeeded").wait_for()
        await timeline.locator(".s-succeeded").wait_for()
        await page.locator("#log-note").filter(has_text="the run ended: succeeded").wait_for()
        assert "the job finished" in await lines.inner_text()
        assert await page.evaluate("window.notReloaded") is True
