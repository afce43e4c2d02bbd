"""``charon backfill``'s days: order, parallelism, resuming, waiting for a held run, the
summary and the progress lines, over in-memory adapters."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Sequence
from datetime import date, timedelta
from functools import partial
from pathlib import Path
from typing import ClassVar

import anyio
import pytest
import structlog

from orchestrator.cli.backfill import new_backfill, parse_days, progress
from orchestrator.cli.main import run_cli
from orchestrator.cli.summary import summary
from orchestrator.core.backfill import (
    DayResult,
    ErrorRetries,
    combined,
    exit_code,
    run_backfill,
)
from orchestrator.core.report import Report, RetCodes, Status
from orchestrator.errors import BackfillTaken, RegistryError, UsageError
from orchestrator.intervals import parse_interval
from orchestrator.model import Backfill, BackfillState, fingerprint
from orchestrator.tasks.params import DateParameter
from orchestrator.tasks.runcontext import RunContext
from orchestrator.tasks.targets import RegistryTarget
from orchestrator.tasks.task import LookupDaily, Task
from orchestrator.testing.world import World, build_world
from tests.support.backfill_tasks import DailyCount

MODULE = "tests.support.backfill_tasks"
OCTOBER = [date(2018, 10, 1) + timedelta(days=n) for n in range(31)]


class Gauge:
    """How many runs are in flight, and the most there ever were."""

    now = 0
    most = 0


class SlowDay(Task):
    date = DateParameter()

    async def run(self, context: RunContext) -> None:
        Gauge.now += 1
        Gauge.most = max(Gauge.most, Gauge.now)
        await anyio.sleep(0.02)
        Gauge.now -= 1
        if self.date.day == 13:
            raise RuntimeError("an unlucky day")


class TwoDays(Task):
    start = DateParameter()
    end = DateParameter()


@pytest.fixture
def world() -> World:
    return build_world(real_time=True, max_concurrent_runs=31)


@pytest.fixture
def runs_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = tmp_path / "runs.log"
    monkeypatch.setenv("BACKFILL_RUNS_LOG", str(log))
    return log


def ran(log: Path) -> list[str]:
    return log.read_text().split() if log.exists() else []


def arguments(interval: str = "2018-10", order: str = "oldest", family: str = "DailyCount",
              module: str = MODULE, partition_param: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(module=module, family=family, order=order,
                              date_interval=parse_interval(interval),
                              partition_param=partition_param)


async def backfill(world: World, args: argparse.Namespace, *, max_parallel: int = 4,
                   argv: Sequence[str] = (), errors: ErrorRetries | None = None,
                   ) -> tuple[Backfill, list[DayResult]]:
    roots = parse_days(args, argv)
    record = await world.state.open_backfill(new_backfill(args, roots))
    results = await run_backfill(world.engine(), world.state, record, roots,
                                 max_parallel=max_parallel, on_day=lambda _: None,
                                 errors=errors)
    return record, results


async def test_days_start_oldest_first_or_newest_first(world: World, runs_log: Path) -> None:
    await backfill(world, arguments("2018-10-01-2018-10-06"), max_parallel=1)
    assert ran(runs_log) == [day.isoformat() for day in OCTOBER[:5]]
    await backfill(world, arguments("2018-11-01-2018-11-04", order="newest"), max_parallel=1)
    assert ran(runs_log)[5:] == ["2018-11-03", "2018-11-02", "2018-11-01"]


async def test_at_most_max_parallel_days_run_at_once(world: World) -> None:
    Gauge.most = 0
    _, results = await backfill(world, arguments(family="SlowDay", module=__name__),
                                max_parallel=3)
    assert Gauge.most == 3
    assert len(results) == 31


async def test_every_day_runs_once_and_the_record_ends_succeeded(
    world: World, runs_log: Path
) -> None:
    record, results = await backfill(world, arguments())
    assert sorted(ran(runs_log)) == [day.isoformat() for day in OCTOBER]
    assert {result.status for result in results} == {Status.DONE}
    stored = await world.state.get_backfill(record.id)
    assert stored is not None
    assert stored.state is BackfillState.SUCCEEDED
    assert stored.days == {day.isoformat(): "done" for day in OCTOBER}
    assert exit_code(results, RetCodes()) == 0


async def test_running_it_again_resumes_the_record_and_skips_the_days_done(
    world: World, runs_log: Path
) -> None:
    args = arguments("2018-10-01-2018-10-08")
    roots = parse_days(args, [])
    first = await world.state.open_backfill(new_backfill(args, roots))
    await world.state.record_backfill_day(first.id, "2018-10-02", "done")
    await world.state.record_backfill_day(first.id, "2018-10-03", "failed")
    again, results = await backfill(world, args)
    assert again.id == first.id
    assert "2018-10-02" not in ran(runs_log)
    assert len(ran(runs_log)) == 6
    [earlier] = [result for result in results if result.report is None]
    assert earlier.day == date(2018, 10, 2)


async def test_other_parameters_make_another_backfill(world: World) -> None:
    first, _ = await backfill(world, arguments("2018-10-01"))
    other, _ = await backfill(world, arguments("2018-10-01"), argv=["--top-n", "5"])
    same, _ = await backfill(world, arguments("2018-10-01", order="newest"))
    assert other.id != first.id
    assert same.id == first.id


async def test_a_failed_day_fails_the_backfill_and_only_it_runs_again(world: World) -> None:
    args = arguments("2018-10-12-2018-10-15", family="SlowDay", module=__name__)
    record, results = await backfill(world, args)
    assert [r.status for r in sorted(results, key=lambda r: r.day)] == [
        Status.DONE, Status.FAILED, Status.DONE]
    assert exit_code(results, RetCodes()) == 1
    text = summary(combined(results))
    assert "* 2 ran successfully:" in text
    assert "* 1 failed:" in text
    stored = await world.state.get_backfill(record.id)
    assert stored is not None
    assert stored.state is BackfillState.FAILED
    _, again = await backfill(world, args)
    assert [(r.day.day, r.report is None) for r in sorted(again, key=lambda r: r.day)] == [
        (12, True), (13, False), (14, True)]


async def test_a_day_held_by_a_crashed_worker_is_taken_over_when_its_lease_ends(
    world: World, runs_log: Path
) -> None:
    [task] = parse_days(arguments("2018-10-05"), []).values()
    await world.state.claim(
        task_id=task.task_id, family=task.task_family, partition=task.partition_label,
        fingerprint=fingerprint([]), inputs=[], owner="crashed", lease=timedelta(seconds=0.3),
    )
    _, [result] = await backfill(world, arguments("2018-10-05"))
    assert result.status is Status.DONE
    assert ran(runs_log) == ["2018-10-05"]
    [run] = await world.state.list_runs()
    assert run.attempt == 2


INPUT = "backfill.input"


class FromInput(Task):
    """A day of a registry input, copied; ``Unlucky`` fails its 13th."""

    date = DateParameter()

    def requires(self) -> LookupDaily:
        return LookupDaily(endpoint=INPUT, partition=self.date, pattern="*")

    def output(self) -> RegistryTarget:
        return RegistryTarget("backfill.copied", self.date.isoformat())

    async def run(self, context: RunContext) -> None:
        if self.date.day == 13 and type(self).__name__ == "Unlucky":
            raise RuntimeError("an unlucky day")
        await context.storage.write(f"{context.outputs['output']}/part", b"copied\n")


class Unlucky(FromInput):
    pass


async def registry_down_for(world: World, lookups: int, days: Sequence[str]) -> list[str]:
    """The inputs of ``days`` published, then the registry's next ``lookups`` lookups
    failing as in an outage; what each lookup answered ("down" or "up")."""
    for day in days:
        await world.storage.write(f"/inputs/{day}/part", b"input\n")
        await world.registry.publish(INPUT, day, f"/inputs/{day}")
    answers: list[str] = []
    real = world.registry.latest_many

    async def down_then_up(*args: object, **kwargs: object) -> object:
        answers.append("down" if len(answers) < lookups else "up")
        if answers[-1] == "down":
            raise RegistryError("the registry is not answering")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    world.registry.latest_many = down_then_up  # type: ignore[method-assign,assignment]
    return answers


PATIENT = ErrorRetries(seconds=60, pause=lambda tries: 0.01 * tries)


async def test_a_day_an_outage_failed_is_tried_again_and_done_once_it_is_over(
        world: World) -> None:
    answers = await registry_down_for(world, 3, ["2018-10-01"])
    record, [result] = await backfill(world, arguments("2018-10-01", family="FromInput",
                                                       module=__name__), errors=PATIENT)
    assert result.status is Status.DONE
    assert answers[:4] == ["down", "down", "down", "up"]
    stored = await world.state.get_backfill(record.id)
    assert stored is not None
    assert stored.state is BackfillState.SUCCEEDED


async def test_without_retries_or_past_their_time_a_day_ends_in_its_error(
        world: World) -> None:
    await registry_down_for(world, 1000, ["2018-10-01", "2018-10-02"])

    async def tries_of(day: str, errors: ErrorRetries | None) -> tuple[Status, int]:
        with structlog.testing.capture_logs() as logs:
            _, [result] = await backfill(world, arguments(day, family="FromInput",
                                                          module=__name__), errors=errors)
        return result.status, sum(entry["event"] == "backfill day not evaluated; tried again "
                                  "later" for entry in logs)

    assert await tries_of("2018-10-01", None) == (Status.ERROR, 0)
    status, tries = await tries_of("2018-10-02", ErrorRetries(0.05, PATIENT.pause))
    assert status is Status.ERROR
    assert 1 <= tries <= 3  # tried again after 10, 20 and 30 ms at the most


async def test_a_day_s_own_failure_or_missing_input_is_not_tried_again(world: World) -> None:
    answers = await registry_down_for(world, 0, ["2018-10-13"])
    _, results = await backfill(world, arguments("2018-10-13-2018-10-15", family="Unlucky",
                                                 module=__name__), errors=PATIENT)
    assert sorted((r.day.day, r.status) for r in results) == [
        (13, Status.FAILED), (14, Status.BLOCKED)]
    assert len(answers) == 2


def test_the_day_parameter_is_found_or_named() -> None:
    assert list(parse_days(arguments("2018-10-01"), []).values()) == [
        DailyCount(date=date(2018, 10, 1))]
    named = parse_days(arguments("2018-10-01", family="TwoDays", module=__name__,
                                 partition_param="end"), ["--start", "2018-01-01"])
    assert list(named.values()) == [TwoDays(start="2018-01-01", end="2018-10-01")]
    with pytest.raises(UsageError, match=r"has 2 daily date parameters \(start, end\)"):
        parse_days(arguments(family="TwoDays", module=__name__), [])
    with pytest.raises(UsageError, match="--partition-param top_n: not a daily date"):
        parse_days(arguments(partition_param="top_n"), [])
    with pytest.raises(UsageError, match="backfill gives DailyCount its date itself"):
        parse_days(arguments(), ["--date", "2018-10-01"])
    with pytest.raises(UsageError, match="DailyCount does not take --colour red"):
        parse_days(arguments(), ["--colour", "red"])


def exit_status(argv: Sequence[str]) -> int:
    try:
        return run_cli(argv)
    except SystemExit as exc:  # argparse's refusals
        return int(str(exc.code))


@pytest.mark.parametrize(("argv", "error"), [
    ([], "error: backfill needs --date-interval (e.g. 2018-10)"),
    (["--date-interval", "2018-13"], "invalid date interval '2018-13'"),
    (["--date-interval", "2018-10", "--max-parallel", "0"], "expected a positive whole number"),
    (["--date-interval", "2018-10", "--order", "sideways"], "invalid choice: 'sideways'"),
    (["--date-interval", "2018-10", "--date", "2018-10-01"], "gives DailyCount its date"),
])
def test_bad_input_is_one_line_exit_code_2_and_nothing_written(
    argv: list[str], error: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHARON_HOME", str(tmp_path / "home"))
    assert exit_status(["backfill", "--module", MODULE, "DailyCount", *argv]) == 2
    err = capsys.readouterr().err
    assert error in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "home").exists()


def test_progress_is_a_line_per_day_in_plain_output_and_under_a_bar_in_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    days = [DayResult(date(2018, 10, 2), Status.DONE, Report("", {})),
            DayResult(date(2018, 10, 1), Status.COMPLETE),
            DayResult(date(2018, 10, 3), Status.FAILED, Report("", {}))]
    with progress(12, terminal=False) as shown:
        for day in days:
            shown(day)
    assert capsys.readouterr().out.splitlines() == [
        "[ 1/12] 2018-10-02 ran", "[ 2/12] 2018-10-01 done before this resume",
        "[ 3/12] 2018-10-03 failed"]
    with progress(12, terminal=True) as shown:
        for day in days:
            shown(day)
    out = capsys.readouterr().out
    assert "[ 3/12] 2018-10-03 failed" in out
    assert "3/12" in out.replace(" ", "") or "25%" in out


class Cancelling(Task):
    """A day whose run cancels its own backfill, as a user would meanwhile."""

    date = DateParameter()
    cancel: ClassVar[Callable[[], Awaitable[bool]]]

    async def run(self, context: RunContext) -> None:
        assert await Cancelling.cancel()


async def test_a_backfill_cancelled_meanwhile_stops_at_its_next_write(world: World) -> None:
    args = arguments("2018-10-01-2018-10-04", family="Cancelling", module=__name__)
    roots = parse_days(args, [])
    record = await world.state.open_backfill(new_backfill(args, roots))
    Cancelling.cancel = partial(world.state.cancel_backfill, record.id)
    stopped: list[BaseException] = []
    try:
        await run_backfill(world.engine(), world.state, record, roots, max_parallel=1,
                           on_day=lambda _: None)
    except* BackfillTaken as group:
        stopped.extend(group.exceptions)
    assert [str(error) for error in stopped] == [f"backfill {record.id} is cancelled now"]
    assert len(await world.state.list_runs()) == 1  # no day began after the first
    ended = await world.state.get_backfill(record.id)
    assert ended is not None
    assert (ended.state, ended.days) == (BackfillState.CANCELLED, {})
