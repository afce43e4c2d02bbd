"""The UI's pages and events: what they show is text, never markup; times are readable;
many days are paged; a slow client is dropped, not waited for."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import anyio

from orchestrator.daemon.ui import pages
from orchestrator.daemon.ui.events import Changes, Interest, changes
from orchestrator.daemon.ui.states import STATES, Cell
from orchestrator.model import InputRevision, Run, RunState
from tests.support.worlds import make_world

HOSTILE = "<script>alert('x')</script>"
CREATED = datetime(2018, 10, 31, 6, 0, 1, 123456, tzinfo=UTC)
RUN = Run(id="r<1>", task_id=f"Job(date={HOSTILE})", family="Job", partition="2018-10-31",
          fingerprint="fp", state=RunState.FAILED, attempt=2, created=CREATED,
          updated=CREATED + timedelta(minutes=5), error=HOSTILE, job_id="job-7",
          inputs=(InputRevision("plays", "/data/plays/<b>r1", "rev-1"),))


def grid_of(days: list[date], cells: list[Cell], page: int = 1, pages_count: int = 1) -> str:
    return pages.grid(pages.GridPage([HOSTILE], days, cells, page, pages_count))


def test_the_run_page_escapes_everything_and_shows_readable_times() -> None:
    page = pages.run_page(RUN)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "2018-10-31 06:00:01 UTC" in page
    assert "123456" not in page
    assert "not yet" in page  # it has not finished
    for shown in ("job-7", "rev-1", "/data/plays/&lt;b&gt;r1", "fp", "r&lt;1&gt;"):
        assert shown in page


def test_the_grid_escapes_names_and_reasons_and_links_runs() -> None:
    day = date(2018, 10, 31)
    cell = Cell(HOSTILE, day, "failed", run_id="a/b", run_state="failed", why=HOSTILE)
    page = grid_of([day], [cell])
    assert "<script>" not in page
    assert 'href="/runs/a%2Fb"' in page
    assert '<th scope="row" class="day">2018-10-31</th>' in page
    assert all(f"s-{state}" in page for state in STATES)  # the legend


def test_many_days_are_paged() -> None:
    page = grid_of([date(2018, 1, 1)], [], page=2, pages_count=3)
    assert 'href="/?page=1"' in page
    assert 'href="/?page=3"' in page
    assert "page 2 of 3" in page


def test_changes_name_only_what_changed() -> None:
    day = date(2018, 10, 31)
    waiting = Cell("w", day, "waiting")
    running = replace(waiting, state="running", run_id="r1", run_state="running")
    assert changes({waiting.key: waiting}, {waiting.key: waiting}) == []
    found = changes({waiting.key: waiting}, {running.key: running})
    assert [event.text.split("\n")[0] for event in found] == ["event: partition",
                                                              "event: run"]
    assert '"state":"running"' in found[0].text


def test_a_client_gets_only_the_days_and_runs_it_asked_for() -> None:
    day = date(2018, 10, 31)
    cell = Cell("w", day, "running", run_id="r1", run_state="running")
    other = replace(cell, day=day - timedelta(days=100), run_id="r2")
    partition, run = changes({}, {cell.key: cell})
    far, far_run = changes({}, {other.key: other})
    grid = Interest(days=frozenset({day}))
    assert [grid.wants(e) for e in (partition, run, far, far_run)] == [True, True, False, True]
    run_page = Interest(days=frozenset(), run_id="r1")
    assert [run_page.wants(e) for e in (partition, run, far, far_run)] == [
        False, True, False, False]
    assert Interest().wants(far)


async def test_a_client_that_does_not_read_is_dropped() -> None:
    hub = Changes(make_world().daemon, poll_seconds=0.01, queue_events=1)
    with hub.subscribe(Interest()) as (_, receive):
        assert hub.clients == 1
        async with anyio.create_task_group() as group:
            group.start_soon(hub.run)
            with anyio.fail_after(5):
                while hub.clients:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()
        # What was queued before the drop is still there, then the stream ends.
        assert [event async for event in receive]
    assert hub.clients == 0

