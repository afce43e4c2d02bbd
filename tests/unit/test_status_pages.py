"""``/status`` at 10,000 watched partitions: pages bounded by their size, cursors that
visit every partition once, totals kept right as evaluations report, filters."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import pytest

from orchestrator.config import load_settings
from orchestrator.daemon.status import STATES, PageQuery
from orchestrator.errors import UsageError
from orchestrator.testing.world import DaemonWorld, build_world
from orchestrator.workflows import WorkflowSettings
from tests.support.worlds import DAY, TODAY, publish_day, running

T = TypeVar("T")

DAYS = 5_000
WORKFLOWS = ("daily", "top_artists")  # two workflows of DAYS days: 10,000 partitions


def big_world() -> DaemonWorld:
    settings = load_settings({"CHARON_DAEMON__POLL_INTERVAL_MS": "10"})
    workflows = tuple(
        WorkflowSettings(name=name, module="jobs.top_artists", task="TopArtistsJob",
                         params=(("top_n", 10), ("endpoint", f"charon.{name}")),
                         lookback_days=DAYS - 1)
        for name in WORKFLOWS
    )
    settings = dataclasses.replace(settings, workflows=workflows)
    return build_world(real_time=True).with_daemon(settings, today=lambda: TODAY)


async def every_page(world: DaemonWorld, **query: str) -> list[list[dict[str, Any]]]:
    """The pages of ``query``, following each page's ``next``."""
    pages: list[list[dict[str, Any]]] = []
    after: dict[str, str] = {}
    while True:
        status = await world.daemon.status(PageQuery.parse({**query, **after},
                                                            world.daemon.watch))
        pages.append(status["partitions"])
        if status["next"] is None:
            return pages
        after = {"after": status["next"]}


async def gather_pages(world: DaemonWorld,
                       queries: list[dict[str, str]]) -> list[list[list[dict[str, Any]]]]:
    return [await every_page(world, **query) for query in queries]


async def unchanged_meanwhile(world: DaemonWorld, read: Callable[[], Awaitable[T]]) -> T:
    """What ``read`` found while no partition changed state: the two workflows write one
    warehouse table, so the sensor may wake either for a late re-evaluation (done
    becomes complete) between two queries."""
    while True:
        before = (await world.daemon.status(PageQuery(limit=1)))["totals"]
        found = await read()
        if (await world.daemon.status(PageQuery(limit=1)))["totals"] == before:
            return found


def state_of(partition: dict[str, Any]) -> str:
    return str(partition.get("state", "unevaluated"))


def settled(world: DaemonWorld) -> bool:
    return len(world.daemon.roots) == 2 * DAYS and all(
        s.verdict and not s.evaluating for s in world.daemon.roots.values())


async def test_pages_visit_every_partition_once_and_the_totals_add_up() -> None:
    world = big_world()
    async with running(world):
        await publish_day(world)  # both workflows' 2018-10-31 runs
        await world.wait_for(lambda: len(world.runner.calls) == 2 and settled(world),
                             timeout=100)
        pages = await unchanged_meanwhile(world, lambda: every_page(world, limit="1000"))
        assert [len(page) for page in pages] == [1000] * 10
        seen = [(p["workflow"], p["partition"]) for page in pages for p in page]
        newest_first = [(name, (TODAY - timedelta(days=n)).isoformat())
                        for n in range(DAYS) for name in WORKFLOWS]
        assert seen == newest_first  # each once, newest day first, then by workflow

        status = await world.daemon.status()
        counted = Counter(state_of(p) for page in pages for p in page)
        assert status["totals"] == {state: counted[state] for state in STATES}
        assert status["totals"]["done"] + status["totals"]["complete"] == 2
        assert status["totals"]["blocked"] == 2 * DAYS - 2
        assert len(status["partitions"]) == 1000  # the first page by default

        ran = await unchanged_meanwhile(world, lambda: gather_pages(
            world, [{"state": state, "limit": "1"} for state in ("done", "complete")]))
        assert all(len(page) <= 1 for pages in ran for page in pages)
        assert sorted((p["workflow"], p["partition"]) for pages in ran for page in pages
                      for p in page) == [("daily", DAY), ("top_artists", DAY)]
        daily = await every_page(world, workflow="daily", state="blocked", limit="777")
        assert all(len(page) <= 777 for page in daily)
        assert {p["workflow"] for page in daily for p in page} == {"daily"}
        assert sum(map(len, daily)) == DAYS - 1
        one = await world.daemon.status(PageQuery.parse({"workflow": "daily"},
                                                        world.daemon.watch))
        assert one["totals"]["blocked"] == DAYS - 1
        assert sum(one["totals"].values()) == DAYS

        # A day whose inputs arrive moves from blocked to run, in the totals too.
        await publish_day(world, (TODAY - timedelta(days=3)).isoformat())
        await world.wait_for(lambda: len(world.runner.calls) == 4 and settled(world))
        after = (await world.daemon.status())["totals"]
        assert (after["blocked"], after["done"] + after["complete"]) == (2 * DAYS - 4, 4)


@pytest.mark.parametrize(("query", "message"), [
    ({"limit": "0"}, "limit must be a whole number from 1 to 10000, got '0'"),
    ({"limit": "10001"}, "limit must be"),
    ({"limit": "9" * 5000}, "limit must be"),
    ({"limit": "\u0661\u0660"}, "limit must be"),
    ({"state": "sleeping"}, "state must be one of done, complete"),
    ({"workflow": "nope"}, "no workflow named 'nope'"),
    ({"after": "daily"}, "after must be a page's next"),
    ({"after": "daily/2018-02-30"}, "after must be a page's next"),
])
def test_a_bad_query_value_is_named(query: dict[str, str], message: str) -> None:
    world = big_world()
    with pytest.raises(UsageError, match="^" + message.replace("(", r"\(")):
        PageQuery.parse(query, world.daemon.watch)
