"""The UI's actions in a real headless Chromium: without the API token the buttons say
so, with a wrong one the daemon refuses them, with the right one a day is triggered, a
backfill started and followed, a run cancelled and re-run; no page logs another error."""

from __future__ import annotations

from pathlib import Path

import anyio
from playwright.async_api import Page

from orchestrator.testing.world import DaemonWorld
from tests.support.browser import chromium, served_ui, watched_page
from tests.support.worlds import DAY, make_world, publish_day

TOKEN = "browser-api-token"
OUTSIDE = "2018-10-01"  # outside the daemon's window: only a trigger runs it
# What Chromium logs for an answer of 401 to the page's own request: the refusal the test
# provokes, and nothing else, is allowed.
REFUSED = "Failed to load resource: the server responded with a status of 401 (Unauthorized)"


async def use_token(page: Page, token: str) -> None:
    await page.fill("#api-token", token)
    await page.click("#token-use")


async def runs_of(world: DaemonWorld, day: str) -> list[str]:
    return [run.id for run in await world.state.list_runs() if run.partition == day]


async def test_the_grid_triggers_a_day_and_follows_a_backfill_with_the_token() -> None:
    world = make_world()
    await publish_day(world, OUTSIDE)
    for day in ("2018-10-02", "2018-10-03"):
        await publish_day(world, day)
    async with chromium() as browser, served_ui(world, TOKEN) as url:
        tab = await watched_page(browser)
        page = tab.page
        await page.goto(url)
        trigger = page.locator('button[data-act="trigger"]')
        assert await trigger.is_disabled()
        assert "API token" in (await page.locator(".act-result").text_content() or "")

        await use_token(page, "not-the-token")
        await page.fill("#act-day", OUTSIDE)
        await trigger.click()
        await page.locator(".act-result", has_text="refused").wait_for()
        assert "401" in (await page.locator(".act-result").text_content() or "")
        await anyio.sleep(0.2)
        assert await runs_of(world, OUTSIDE) == []

        await use_token(page, TOKEN)
        await trigger.click()
        await page.locator(".act-result", has_text=f"top_artists {OUTSIDE} triggered").wait_for()
        with anyio.fail_after(5):
            while not await runs_of(world, OUTSIDE):
                await anyio.sleep(0.02)

        await page.fill("#act-interval", "2018-10-02-2018-10-04")
        await page.click('button[data-act="backfill"]')
        await page.locator(".act-result", has_text="started: 2 days").wait_for()
        await page.locator("#backfills tr", has_text="2 done, 0 failed, of 2").wait_for()
        # The backfill is marked finished after its last day is counted: a refresh of
        # the panel between the two shows both days done, the backfill still running.
        await page.locator("#backfills .s-succeeded").first.wait_for()
        assert await page.locator("#backfills .s-succeeded").count() == 1
        await page.close()
    assert tab.errors == [REFUSED]


async def test_the_run_page_cancels_and_reruns_with_the_token_only() -> None:
    world = make_world()
    world.runner.gate = anyio.Event()
    await publish_day(world)
    async with chromium() as browser, served_ui(world, TOKEN) as url:
        await world.wait_for(lambda: world.runner.running == 1)
        [run_id] = await runs_of(world, DAY)
        tabs = [await watched_page(browser), await watched_page(browser)]
        without, page = (tab.page for tab in tabs)
        await without.goto(f"{url}/runs/{run_id}")
        assert await without.locator("#act-cancel").is_disabled()
        assert await without.locator("button.act").first.get_attribute("title") == (
            "enter the API token first")

        await page.goto(f"{url}/runs/{run_id}")
        await page.locator("#live.on").wait_for()
        await use_token(page, TOKEN)
        await page.click("#act-cancel")
        await page.locator(".act-result", has_text="cancelled").wait_for()
        await page.locator("#run-state.s-failed").wait_for()  # told live, no reload
        assert await page.locator("#act-cancel").is_hidden()
        assert set(world.runner.cancelled) == {"fake-1"}

        world.runner.gate.set()
        await page.click('button[data-act$="/rerun"]')
        await page.locator(".act-result", has_text="re-run requested").wait_for()
        await page.locator("#run-state.s-succeeded").wait_for()
        assert len(world.runner.calls) == 2
        for tab in tabs:
            await tab.page.close()
    assert [tab.errors for tab in tabs] == [[], []]


async def test_the_backfills_panel_cancels_a_running_backfill_with_the_token(
        tmp_path: Path) -> None:
    world = make_world()
    world.runner.gate = anyio.Event()  # the backfill's first day runs until the end
    for day in ("2018-10-02", "2018-10-03"):
        await publish_day(world, day)
    async with chromium() as browser, served_ui(world, TOKEN) as url:
        tab = await watched_page(browser)
        page = tab.page
        await page.goto(url)
        await use_token(page, TOKEN)
        await page.fill("#act-interval", "2018-10-02-2018-10-04")
        await page.click('button[data-act="backfill"]')
        cancel = page.locator("#backfills button.cancel-backfill")
        await cancel.wait_for()
        await cancel.click()
        await page.locator(".act-result", has_text="cancelled").wait_for()
        await page.locator("#backfills .s-cancelled").wait_for()
        assert await cancel.count() == 0  # only a running backfill has one
        await page.screenshot(path=str(tmp_path / "backfill-cancelled.png"))
        await page.close()
        world.runner.gate.set()
    assert tab.errors == []
