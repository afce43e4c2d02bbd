"""The web UI in a real headless Chromium: the grid follows a partition live, without a
reload, from waiting to running to succeeded; the run page shows the run; no page logs
an error."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest

from tests.support.browser import Watched, chromium, served_ui, server_sent, watched_page
from tests.support.worlds import DAY, make_world, publish_day

CELL = f'td[data-key="top_artists/{DAY}"]'


@pytest.fixture
async def pages() -> AsyncIterator[tuple[Watched, Watched]]:
    """Two tabs of one browser; neither may log an error."""
    async with chromium() as browser:
        tabs = (await watched_page(browser), await watched_page(browser))
        yield tabs
        assert [tab.errors for tab in tabs] == [[], []]


async def test_the_grid_and_the_run_page_follow_a_run_live(
    pages: tuple[Watched, Watched],
) -> None:
    grid, run_page = (tab.page for tab in pages)
    world = make_world()
    world.runner.gate = anyio.Event()  # the job runs until the test lets it finish
    async with served_ui(world) as url:
        await grid.goto(url)
        cell = grid.locator(CELL)
        await cell.and_(grid.locator(".s-waiting")).wait_for()
        await grid.locator("#live.on").wait_for()
        # Set on this document only: still there at the end means it never reloaded.
        await grid.evaluate("window.notReloaded = true")

        revision = await publish_day(world)
        await grid.locator(f"{CELL}.s-running a").wait_for()
        assert await cell.text_content() == "running"
        link = await cell.locator("a").get_attribute("href")
        assert link is not None
        await run_page.goto(url + link)
        assert await run_page.locator("#run-state").text_content() == "running"
        await run_page.locator("#live.on").wait_for()

        world.runner.gate.set()
        await grid.locator(f"{CELL}.s-succeeded a").wait_for()
        await run_page.locator("#run-state.s-succeeded").wait_for()
        assert await grid.evaluate("window.notReloaded") is True

        await run_page.reload()  # for the fields the run's end changed
        text = await run_page.locator("body").inner_text()
        [run] = await world.state.list_runs()
        for shown in (run.id, run.fingerprint, "fake-1", revision.id, revision.uri,
                      run.task_id, " UTC"):
            assert shown in text


async def test_the_pages_refuse_scripts_they_did_not_serve() -> None:
    async with served_ui(make_world()) as url, aiohttp.ClientSession() as session:
        async with session.get(url) as response:
            policy = response.headers["Content-Security-Policy"]
        async with session.get(f"{url}/runs/%3Cscript%3E") as response:
            assert response.status == 404
            assert (await response.json())["code"] == "not_found"
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy


async def test_the_event_stream_catches_up_then_sends_changes() -> None:
    world = make_world()
    async with served_ui(world) as url, aiohttp.ClientSession() as session, \
            session.get(f"{url}/events") as response:
        assert response.content_type == "text/event-stream"
        await publish_day(world)
        events: list[tuple[str, dict[str, Any]]] = []
        with anyio.fail_after(10):
            async for event in server_sent(response.content):
                events.append(event)
                if event[0] == "run" and event[1]["state"] == "succeeded":
                    break
    day = [(e["day"], e["state"]) for kind, e in events if kind == "partition"]
    # Every cell as last seen first (this day waited for its inputs), then the changes.
    assert day[:2] == [("2018-10-30", "waiting"), (DAY, "waiting")]
    assert (DAY, "succeeded") in day[2:]
    [run] = await world.state.list_runs()
    assert events[-1] == ("run", {"id": run.id, "state": "succeeded"})


async def test_a_client_coming_after_changes_nobody_watched_catches_up_on_them() -> None:
    """With nobody listening the partitions are not compared; the first client to come
    still starts from where they stand now, not from the last time someone listened."""
    world = make_world()
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await publish_day(world)
        await world.wait_for(lambda: bool(world.runner.calls) and not world.runner.running)
        await world.wait_for(lambda: not any(
            state.evaluating for state in world.daemon.roots.values()))
        async with session.get(f"{url}/events") as response:
            with anyio.fail_after(5):
                caught_up = {event["day"]: event["state"] async for kind, event
                             in _first_events(server_sent(response.content), 2)}
    assert caught_up[DAY] == "succeeded"


async def _first_events(
    events: AsyncIterator[tuple[str, dict[str, Any]]], count: int,
) -> AsyncIterator[tuple[str, dict[str, Any]]]:
    for _ in range(count):
        yield await anext(events)


async def test_a_failed_run_waiting_for_its_retry_shows_failed_with_its_error() -> None:
    world = make_world()
    world.runner.fail_with = "Beam said <no>"
    async with served_ui(world) as url, aiohttp.ClientSession() as session:
        await publish_day(world)
        await world.wait_for(lambda: bool(world.runner.calls) and not world.runner.running)
        [run] = await world.state.list_runs()
        with anyio.fail_after(5):
            while f'class="cell s-failed" data-key="top_artists/{DAY}"' not in (
                    grid := await (await session.get(url)).text()):
                await anyio.sleep(0.05)
        assert f'href="/runs/{run.id}"' in grid
        async with session.get(f"{url}/runs/{run.id}") as response:
            page = await response.text()
    assert "Beam said &lt;no&gt;" in page
