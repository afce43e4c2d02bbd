"""What ``charon run`` prints and exits with: one truthful line per task, Luigi's execution
summary, and Luigi's ``--retcode-*`` options over charon's exit codes."""

from __future__ import annotations

import argparse
from datetime import date, timedelta

import pytest

from jobs.luigi_top_artists import ArtistToplistToDatabase, Top10Artists
from orchestrator.cli import render
from orchestrator.cli.main import build_parser
from orchestrator.cli.retcodes import reported
from orchestrator.core.report import Category, Outcome, Report, RetCodes, Status
from orchestrator.testing.world import World, build_world
from tests.unit.test_top_artists_example import DATA, write_days

JULY = [date(2012, 7, 1) + timedelta(days=n) for n in range(31)]
LOAD = ArtistToplistToDatabase(date_interval="2012-07")


@pytest.fixture
def world() -> World:
    return build_world(database=True, output_prefix="/out", data_prefix=DATA, real_time=True)


async def test_a_first_run_is_summarised_as_luigi_groups_it(world: World) -> None:
    await write_days(world, JULY, events=50)
    text = render.report(await world.engine().run(LOAD))
    assert "ArtistToplistToDatabase(date_interval=2012-07): ran" in text
    assert "Streams(" not in text.split("=====")[0]  # inputs that are there: summary only
    assert (
        "Scheduled 34 tasks of which:\n"
        "* 31 complete ones were encountered:\n"
        "    - 31 Streams(date=2012-07-01...2012-07-31)\n"
        "* 3 ran successfully:\n"
        "    - 1 AggregateArtists(date_interval=2012-07)\n"
        "    - 1 ArtistToplistToDatabase(date_interval=2012-07)\n"
        "    - 1 Top10Artists(date_interval=2012-07)\n"
        "\n"
        "This progress looks :) because there were no failed tasks or missing dependencies\n"
    ) in text


async def test_a_second_run_says_nothing_ran(world: World) -> None:
    await write_days(world, JULY, events=50)
    await world.engine().run(LOAD)
    text = render.report(await world.engine().run(LOAD))
    assert " ran" not in text.split("=====")[0]
    assert ("ArtistToplistToDatabase(date_interval=2012-07): already"
            " complete for the current inputs, nothing to do") in text
    assert "* 34 complete ones were encountered:\n" in text
    assert "ran successfully" not in text
    assert "\nDid not run any tasks\nThis progress looks :) because" in text


async def test_missing_days_leave_their_dependents_pending(world: World) -> None:
    await write_days(world, JULY[:29], events=20)
    report = await world.engine().run(LOAD)
    text = render.report(report)
    assert "Streams(date=2012-07-30): missing input\n" in text
    assert (
        "* 29 complete ones were encountered:\n"
        "    - 29 Streams(date=2012-07-01...2012-07-29)\n"
        "* 5 were left pending, among these:\n"
        "    * 2 were missing external dependencies:\n"
        "        - 2 Streams(date=2012-07-30) and Streams(date=2012-07-31)\n"
        "    * 3 had missing dependencies:\n"
        "        - 1 AggregateArtists(date_interval=2012-07)\n"
    ) in text
    assert "\nDid not run any tasks\nThis progress looks :| because there were missing" \
        " external dependencies" in text
    assert report.exit_code == 20


def outcomes(*statuses: Status) -> Report:
    found = {f"T(n={i})": Outcome(f"T(n={i})", status, "x") for i, status in enumerate(statuses)}
    return Report("T(n=0)", found)


def test_every_status_is_exactly_one_category() -> None:
    said = {Outcome("T()", status).category for status in Status}
    assert said == set(Category)


def test_retcodes_default_to_charons_codes_and_follow_the_most_serious_outcome() -> None:
    assert outcomes(Status.DONE).exit_code == 0
    assert outcomes(Status.BLOCKED, Status.MISSING).exit_code == 20
    assert outcomes(Status.BLOCKED, Status.MISSING, Status.FAILED).exit_code == 1
    assert outcomes(Status.SUPERSEDED).exit_code == 1
    codes = RetCodes(task_failed=3, scheduling_error=4, missing_data=5, already_running=6,
                     not_run=7)
    assert outcomes(Status.BLOCKED, Status.MISSING, Status.FAILED).exit_code_with(codes) == 3
    assert outcomes(Status.BLOCKED, Status.ERROR, Status.MISSING).exit_code_with(codes) == 4
    assert outcomes(Status.BLOCKED, Status.MISSING).exit_code_with(codes) == 5
    assert outcomes(Status.WAITING).exit_code_with(codes) == 6
    assert outcomes(Status.SUPERSEDED).exit_code_with(codes) == 7
    assert outcomes(Status.COMPLETE, Status.AVAILABLE).exit_code_with(codes) == 0


def run_args(*options: str) -> argparse.Namespace:
    return build_parser().parse_known_args(
        ["run", "--module", "jobs.luigi_top_artists", "Top10Artists", *options])[0]


async def test_the_options_set_the_exit_code_and_an_unhandled_exception_its_own() -> None:
    missing = Report(Top10Artists.__name__, {
        "Top10Artists": Outcome("Top10Artists", Status.BLOCKED),
        "Streams": Outcome("Streams", Status.MISSING, missing=("storage x",)),
    })

    async def missing_data() -> Report:
        return missing

    async def broken() -> Report:
        raise KeyError("a bug")

    assert await reported(run_args(), missing_data) == 20
    assert await reported(run_args("--retcode-missing-data", "3"), missing_data) == 3
    assert await reported(run_args(), broken) == 1
    assert await reported(run_args("--retcode-unhandled-exception", "4"), broken) == 4


def test_a_retcode_must_be_an_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        run_args("--retcode-task-failed", "256")
    assert exited.value.code == 2
    assert "expected an exit code from 0 to 255, got '256'" in capsys.readouterr().err
