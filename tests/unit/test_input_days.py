"""``window = "inputs"``: a workflow watches every day its external registry inputs have a
revision for, learnt from the registry change feed, however old the day."""

from __future__ import annotations

import dataclasses
from datetime import date

import anyio
import pytest

from jobs.top_artists import END_CONTENT_FACT
from orchestrator.config import load_settings
from orchestrator.daemon.watch import Watchlist
from orchestrator.errors import ConfigError
from orchestrator.testing.world import build_world
from orchestrator.workflows import WorkflowSettings, parse_workflows
from sensors.facts import Root, registry_key
from tests.support.worlds import OUTPUT, TODAY, output_revisions, publish_day

BASE = {"module": "jobs.top_artists", "task": "TopArtistsJob", "params": {"top_n": 10},
        "name": "top_artists"}
OLD_DAY = "2018-01-15"


def watchlist(**entry: object) -> Watchlist:
    watch = Watchlist(parse_workflows([{**BASE, "window": "inputs", **entry}]))
    assert watch.refresh(TODAY) == []  # no calendar: nothing until inputs are seen
    return watch


def test_a_revision_of_an_input_brings_its_day_in() -> None:
    watch = watchlist()
    key = registry_key(END_CONTENT_FACT, OLD_DAY)
    [root] = watch.discover([key])
    assert root == Root("top_artists", date(2018, 1, 15))
    watch.index(root)  # as its first evaluation does
    assert watch.roots_for([key]) == {root}
    assert watch.discover([key]) == []  # already watched: nothing new


@pytest.mark.parametrize("key", [
    registry_key(OUTPUT, OLD_DAY),  # the workflow's own output: no input of it
    registry_key("some.other.endpoint", OLD_DAY),
    registry_key(END_CONTENT_FACT, "2018-01"),  # a month: no day of TopArtistsJob reads it
    "table:scio-playground:di_golden_path.track_entity_20180115",
])
def test_partitions_no_root_reads_bring_nothing_in(key: str) -> None:
    assert watchlist().discover([key]) == []


def test_start_and_end_bound_the_days_with_inputs() -> None:
    watch = watchlist(start="2018-01-10", end="2018-01-20")
    inside, before, after = (registry_key(END_CONTENT_FACT, day)
                             for day in (OLD_DAY, "2018-01-09", "2018-01-21"))
    assert watch.discover([before, after]) == []
    assert watch.discover([inside]) == [Root("top_artists", date(2018, 1, 15))]


def test_the_window_kinds_are_checked() -> None:
    with pytest.raises(ConfigError, match=r"window = 'weekly': expected one of calendar, inputs"):
        parse_workflows([{**BASE, "window": "weekly"}])
    with pytest.raises(ConfigError, match=r"lookback_days: window = \"inputs\" watches every"):
        parse_workflows([{**BASE, "window": "inputs", "lookback_days": 3}])
    [calendar] = parse_workflows([BASE])
    assert calendar.window == "calendar"
    assert len(calendar.days(TODAY)) == 8


async def test_the_daemon_runs_a_day_with_inputs_far_outside_any_lookback() -> None:
    settings = load_settings({"CHARON_DAEMON__POLL_INTERVAL_MS": "10"})
    workflow = WorkflowSettings(name="top_artists", module="jobs.top_artists",
                                task="TopArtistsJob", params=(("top_n", 10),), window="inputs")
    world = build_world(real_time=True).with_daemon(
        dataclasses.replace(settings, workflows=(workflow,)), today=lambda: TODAY)
    async with anyio.create_task_group() as group:
        await group.start(world.daemon.run)
        await publish_day(world, OLD_DAY)
        await world.wait_for(lambda: len(world.runner.calls) == 1)
        await world.wait_for(lambda: world.runner.running == 0)
        with anyio.fail_after(5):
            while not await output_revisions(world, OLD_DAY):
                await anyio.sleep(0.01)
        assert world.daemon.watch.roots == [Root("top_artists", date(2018, 1, 15))]
        await world.daemon.stop()
