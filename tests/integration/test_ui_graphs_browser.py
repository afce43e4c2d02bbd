"""The drawn pages in a real headless Chromium: the lineage of a re-run revision, reached
from its run page, shows the input revisions of both builds; a workflow's task graph,
reached from the grid, shows its requires() edges; the charts have bars; no page logs
an error. Bad ids and dates are refused in the JSON error shape."""

from __future__ import annotations

import aiohttp
import anyio
import pytest

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.model import Revision
from orchestrator.testing.world import DaemonWorld
from tests.support.browser import Watched, served_ui
from tests.support.worlds import DAY, make_world, output_revisions, publish_day


async def built(world: DaemonWorld, count: int) -> list[Revision]:
    """The day's output revisions, newest first, once there are ``count``."""
    with anyio.fail_after(10):
        while len(found := await output_revisions(world)) < count:
            await anyio.sleep(0.02)
    return found


async def test_the_lineage_of_a_rerun_revision_shows_both_input_revisions(tab: Watched) -> None:
    page, world = tab.page, make_world()
    async with served_ui(world) as url:
        first = await publish_day(world)
        await built(world, 1)
        late = await world.registry.publish(END_CONTENT_FACT, DAY, "/data/ecf/r2")
        newest, older = await built(world, 2)
        [run] = [r for r in await world.state.list_runs() if newest.id in r.outputs.values()]

        await page.goto(f"{url}/runs/{run.id}")
        await page.locator(f'a[href="/lineage/{newest.id}"]').click()
        await page.wait_for_url(f"**/lineage/{newest.id}")
        graph = page.locator("svg.graph")
        for revision in (first, late, older, newest):
            await graph.locator(f'g.node[data-id="{revision.id}"]').wait_for()
        assert await graph.locator(f'path[data-from="{late.id}"][data-to="{newest.id}"]').count()
        assert await graph.locator(f'path[data-from="{first.id}"][data-to="{older.id}"]').count()
        await graph.locator(f'g.node[data-id="{first.id}"] a').click()
        await page.wait_for_url(f"**/lineage/{first.id}")  # upstream, now with downstream
        await page.locator(f'svg.graph g.node[data-id="{older.id}"]').wait_for()


async def test_the_task_graph_shows_the_workflows_edges(tab: Watched) -> None:
    page, world = tab.page, make_world()
    async with served_ui(world) as url:
        await publish_day(world)
        await built(world, 1)
        await page.goto(url)
        await page.locator("thead a", has_text="top_artists").click()
        await page.wait_for_url("**/workflows/top_artists/graph")
        assert await page.locator("h1").text_content() == f"Task graph of top_artists for {DAY}"
        [job] = [await n.get_attribute("data-id") for n in await page.locator("g.node").all()
                 if (await n.get_attribute("data-id") or "").startswith("TopArtistsJob")]
        sources = {await edge.get_attribute("data-from")
                   for edge in await page.locator(f'path.edge[data-to="{job}"]').all()}
        assert {(s or "").partition("(")[0] for s in sources} == {"LookupDaily", "TrackEntity"}
        assert await page.locator(f'g.node.s-succeeded[data-id="{job}"] a').count() == 1


async def test_the_charts_show_durations_and_latencies(tab: Watched) -> None:
    page, world = tab.page, make_world()
    async with served_ui(world) as url:
        await publish_day(world)
        await built(world, 1)
        await page.goto(url)
        await page.locator("nav a", has_text="charts").click()
        await page.wait_for_url("**/charts")
        [durations, latency] = await page.locator("svg.chart").all()
        assert await durations.locator("g.bar.s-succeeded rect").count() == 1
        assert "latency: 1 since" in await page.locator("body").inner_text()
        heights = [int(await bar.get_attribute("height") or 0)
                   for bar in await latency.locator("g.bar rect").all()]
        assert sum(1 for height in heights if height) == 1  # the one launch


@pytest.mark.parametrize(("path", "status", "code"), [
    ("/lineage/%3Cb%3E", 400, "malformed"),
    ("/lineage/no-such-revision", 404, "not_found"),
    ("/workflows/nope/graph", 404, "not_found"),
    ("/workflows/top_artists/graph?date=2018-13-01", 400, "malformed"),
])
async def test_bad_ids_and_dates_are_refused(path: str, status: int, code: str) -> None:
    async with served_ui(make_world()) as url, aiohttp.ClientSession() as session, \
            session.get(url + path) as response:
        assert response.status == status
        assert (await response.json())["code"] == code
