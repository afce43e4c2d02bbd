"""The days waiting for a place: oldest first, within each workflow's limit and the
engine's, and a day evaluated again keeps its turn."""

from __future__ import annotations

from datetime import date, timedelta

import anyio

from orchestrator.daemon.places import AtLimit
from sensors.facts import Root

FIRST = date(2024, 1, 1)


def day(workflow: str, n: int) -> Root:
    return Root(workflow, FIRST + timedelta(days=n))


class Line:
    """An AtLimit over two workflows, the days it schedules, and the engine's places."""

    def __init__(self, *, x: int, y: int, engine: int) -> None:
        self.limiters = {"x": anyio.CapacityLimiter(x), "y": anyio.CapacityLimiter(y)}
        self.engine = engine
        self.scheduled: list[Root] = []
        self.at_limit = AtLimit(self.limiters, lambda: self.engine, self.scheduled.append)

    def places_free(self, count: int) -> None:
        """The engine has ``count`` places free, and a run just gave one back."""
        self.engine = count
        self.at_limit.offer()

    def evaluate_and_wait(self, root: Root) -> None:
        """An evaluation of ``root`` that found no place."""
        self.at_limit.leave(root)
        self.at_limit.wait(root)
        self.at_limit.evaluated(root)


def test_nothing_is_offered_while_no_place_is_free() -> None:
    line = Line(x=1, y=1, engine=0)
    line.evaluate_and_wait(day("x", 1))
    line.places_free(0)
    assert line.scheduled == []
    assert day("x", 1) in line.at_limit


def test_the_engine_s_places_go_to_the_oldest_days_of_any_workflow() -> None:
    line = Line(x=5, y=5, engine=0)
    for root in (day("y", 1), day("x", 2), day("y", 3), day("x", 4)):
        line.evaluate_and_wait(root)
    line.places_free(3)
    assert line.scheduled == [day("y", 1), day("x", 2), day("y", 3)]
    assert day("x", 4) in line.at_limit


def test_a_workflow_at_its_own_limit_leaves_the_places_to_the_others() -> None:
    line = Line(x=1, y=5, engine=0)
    for root in (day("x", 1), day("x", 2), day("y", 3)):
        line.evaluate_and_wait(root)
    line.places_free(3)
    assert line.scheduled == [day("x", 1), day("y", 3)]  # x's one place, then y's


def test_a_day_that_finds_its_place_taken_keeps_its_turn() -> None:
    """Woken, day 1 finds another evaluation took the place first and waits again: it
    is still ahead of day 2, which waited after it."""
    line = Line(x=5, y=5, engine=0)
    line.evaluate_and_wait(day("x", 1))
    line.evaluate_and_wait(day("x", 2))
    line.places_free(1)
    assert line.scheduled == [day("x", 1)]
    line.engine = 0  # a new day's run took it
    line.evaluate_and_wait(day("x", 1))
    line.places_free(1)
    assert line.scheduled == [day("x", 1), day("x", 1)]


def test_a_waiting_day_evaluated_for_something_else_keeps_its_turn_too() -> None:
    line = Line(x=5, y=5, engine=0)
    line.evaluate_and_wait(day("x", 1))
    line.evaluate_and_wait(day("x", 2))
    line.evaluate_and_wait(day("x", 1))  # a new input: evaluated again, no place yet
    line.places_free(1)
    assert line.scheduled == [day("x", 1)]


def test_a_day_that_ran_has_no_turn_left() -> None:
    """Day 1 got its place and ran: if it waits again later, it is behind day 2."""
    line = Line(x=5, y=5, engine=0)
    line.evaluate_and_wait(day("x", 1))
    line.evaluate_and_wait(day("x", 2))
    line.places_free(1)
    line.engine = 0  # day 1's run holds the place
    line.at_limit.leave(day("x", 1))
    line.at_limit.evaluated(day("x", 1))
    line.evaluate_and_wait(day("x", 1))
    line.places_free(1)
    assert line.scheduled == [day("x", 1), day("x", 2)]


def test_days_evaluated_again_and_again_while_waiting_are_not_kept_over_and_over() -> None:
    line = Line(x=5, y=5, engine=0)
    for _ in range(1000):
        line.evaluate_and_wait(day("x", 1))
    # Its memory, not its behaviour: each wait puts the day in line again, and the line
    # must not grow with every evaluation of a day that waits for hours.
    assert len(line.at_limit._turns["x"]) <= 66
    line.places_free(5)
    assert line.scheduled == [day("x", 1)]


async def test_runs_parked_by_the_engine_wait_in_line_with_the_days() -> None:
    line = Line(x=5, y=5, engine=0)
    turns: list[str] = []

    async def run(name: str) -> None:
        await line.at_limit.park(None)
        turns.append(name)

    async with anyio.create_task_group() as group:
        line.evaluate_and_wait(day("x", 1))
        group.start_soon(run, "first run")
        await anyio.sleep(0.01)
        line.evaluate_and_wait(day("y", 2))
        group.start_soon(run, "second run")
        await anyio.sleep(0.01)
        for _ in range(4):
            line.places_free(1)
            await anyio.sleep(0.01)
            line.engine = 0  # whoever had the turn took the place
    assert line.scheduled == [day("x", 1), day("y", 2)]
    assert turns == ["first run", "second run"]
    assert day("x", 1) not in line.at_limit


async def test_a_run_parked_while_a_place_is_free_goes_on_at_once() -> None:
    line = Line(x=5, y=5, engine=1)
    with anyio.fail_after(1):
        await line.at_limit.park(None)


async def test_a_parked_run_cancelled_leaves_the_line() -> None:
    line = Line(x=5, y=5, engine=0)
    with anyio.move_on_after(0.05):
        await line.at_limit.park(None)
    line.evaluate_and_wait(day("x", 1))
    line.places_free(1)
    assert line.scheduled == [day("x", 1)]


async def test_a_parked_run_cancelled_as_its_turn_came_passes_the_place_on() -> None:
    line = Line(x=5, y=5, engine=0)
    async with anyio.create_task_group() as group:
        group.start_soon(line.at_limit.park, None)
        await anyio.sleep(0.01)
        line.evaluate_and_wait(day("x", 1))
        line.places_free(1)  # the run's turn: its task is cancelled before it goes on
        group.cancel_scope.cancel()
    assert line.scheduled == [day("x", 1)]
