"""What a Luigi user types works: ``TASK --help`` lists the task's parameters, ``--help-all``
every command's options, ``--<Family>-<param>`` sets a family's parameter wherever it is
built, ``--log-level`` overrides log.level; help is plain text."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli

pytestmark = pytest.mark.slow

LUIGI = ("--module", "jobs.luigi_top_artists")
GOLDEN = ("--module", "jobs.top_artists", "TopArtistsJob")
RST = re.compile(r"``|:[a-z:]+:`|`_")

# A graph whose leaf is built without its `size`, as Luigi's --<Family>-<param> reaches.
PROBE_TASKS = textwrap.dedent('''
    from orchestrator.tasks.params import DateParameter, IntParameter
    from orchestrator.tasks.targets import StorageTarget
    from orchestrator.tasks.task import ExternalTask, WrapperTask


    class Leaf(ExternalTask):
        """A file per day and size, never there."""

        day = DateParameter()
        size = IntParameter(1, minimum=1, description="how big, see :class:`Leaf`")

        def output(self) -> StorageTarget:
            return StorageTarget(f"data/leaf_{self.size}_{self.day}.txt")


    class Root(WrapperTask):
        day = DateParameter()

        def requires(self) -> Leaf:
            return Leaf(day=self.day)
''')


def importing(charon: Cli, folder: Path, module: str, text: str) -> Cli:
    """``charon`` with the task module ``module`` (its source ``text``) importable."""
    folder.mkdir(exist_ok=True)
    (folder / f"{module}.py").write_text(text)
    return Cli(charon.home, {"PYTHONPATH": f"{folder}:{Path.cwd()}"})


@pytest.fixture
def probe(charon: Cli, tmp_path: Path) -> Cli:
    return importing(charon, tmp_path / "modules", "probe_tasks", PROBE_TASKS)


@pytest.mark.parametrize(
    ("task", "expected"),
    [
        ((*LUIGI, "Top10Artists"),
         ["Top10Artists parameters:", "--date-interval DATE_INTERVAL", "date interval:",
          "2012-06-01-2012-07-01 (the end date excluded", "required",
          "--use-spark [USE_SPARK]", "boolean flag", "default false",
          "The interval's 10 most streamed artists: date_from date_to artist streams.",
          "--Top10Artists-date-interval"]),
        (GOLDEN,
         ["TopArtistsJob parameters:", "--date DATE", "date YYYY-MM-DD; required",
          "--top-n TOP_N", "integer from 1 to", "default di.golden.path.charon.top_artists",
          "not part of the task's identity", "--workers", "--log-level"]),
    ],
)
def test_task_help_lists_its_parameters_in_plain_text(
    charon: Cli, task: tuple[str, ...], expected: list[str],
) -> None:
    for flag in ("--help", "-h"):
        shown = charon("run", *task, flag)
        assert shown.returncode == 0, shown.stderr
        flat = " ".join(shown.stdout.split())
        assert [text for text in expected if text not in flat] == []
        assert not RST.search(shown.stdout), shown.stdout


def test_help_works_before_the_task_is_known_and_is_plain(charon: Cli) -> None:
    for args in (("--help",), ("run", "--help"), ("run", "--help", *LUIGI, "Top10Artists")):
        shown = charon(*args)
        assert shown.returncode == 0, shown.stderr
        assert not RST.search(shown.stdout), shown.stdout
    assert "Top10Artists parameters:" in charon("run", "--help", *LUIGI, "Top10Artists").stdout
    missing = charon("run", "Top10Artists")
    assert missing.returncode == 2
    assert "the following arguments are required: --module" in missing.stderr


def test_help_all_lists_every_option_of_every_command(charon: Cli) -> None:
    everything = charon("--help-all")
    assert everything.returncode == 0, everything.stderr
    for option in ("--workers", "--local-scheduler", "--limit", "--lineage", "--idempotency-key",
                   "--events", "--streams", "--new-revision", "--dry-run", "--host", "--port",
                   "--log-level", "--help-all"):
        assert option in everything.stdout, option
    for command in ("charon run", "charon show", "charon registry ls", "charon registry serve",
                    "charon sample-data", "charon daemon", "charon explain", "charon janitor"):
        assert f"=== {command} ===" in everything.stdout, command
    with_task = charon("run", *LUIGI, "Top10Artists", "--help-all")
    assert with_task.returncode == 0, with_task.stderr
    for flag in ("--workers", "--lineage", "--AggregateArtists-date-interval",
                 "--ArtistToplistToDatabase-use-spark", "--Streams-date"):
        assert flag in with_task.stdout, flag


def test_a_family_parameter_applies_wherever_the_family_is_built(probe: Cli) -> None:
    plain = probe("run", "--module", "probe_tasks", "Root", "--day", "2012-06-05")
    assert plain.returncode == 20, plain.stderr
    assert "Leaf(day=2012-06-05, size=1)" in plain.stdout
    sized = probe("run", "--module", "probe_tasks", "Root", "--day", "2012-06-05",
                  "--Leaf-size", "5")
    assert sized.returncode == 20, sized.stderr
    assert "Leaf(day=2012-06-05, size=5)" in sized.stdout
    assert "data/leaf_5_2012-06-05.txt" in sized.stdout
    # The root's own family flag, as Luigi's --<RootFamily>-<param>.
    rooted = probe("run", "--module", "probe_tasks", "Root", "--Root-day", "2012-06-06",
                   "--Leaf-size=2")
    assert "Leaf(day=2012-06-06, size=2)" in rooted.stdout, rooted.stderr


def test_the_golden_path_takes_a_family_flag_for_its_root(charon: Cli) -> None:
    explained = charon("explain", *GOLDEN, "--date", "2018-10-31", "--TopArtistsJob-top-n", "5")
    assert explained.returncode == 0, explained.stderr
    assert "TopArtistsJob(date=2018-10-31, top_n=5," in explained.stdout
    # The task's own --top-n wins over its family's, as in Luigi.
    both = charon("explain", *GOLDEN, "--date", "2018-10-31", "--top-n", "7",
                  "--TopArtistsJob-top-n", "5")
    assert "TopArtistsJob(date=2018-10-31, top_n=7," in both.stdout, both.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--Leaf-size", "0"), "error: --Leaf-size: --size = 0: must be at least 1"),
        (("--Leaf-size", "big"), "error: --Leaf-size: parameter 'size': 'big' is not an integer"),
        # A per-family flag misspelt: the close ones are named.
        (("--Leaf-sise", "5"), "error: Root does not take --Leaf-sise 5; did you mean --Leaf-size"),
        (("--Leaf-sise=5",), "does not take --Leaf-sise=5; did you mean --Leaf-size"),
        (("--log-level", "LOUD"), "argument --log-level: expected one of DEBUG, INFO, WARNING,"
                                  " ERROR, got 'LOUD'"),
    ],
)
def test_bad_family_flags_and_levels_are_refused(probe: Cli, args: tuple[str, ...],
                                                 message: str) -> None:
    refused = probe("run", "--module", "probe_tasks", "Root", "--day", "2012-06-05", *args)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(refused.stderr.splitlines()) == 1


def test_log_level_overrides_the_configured_level(charon: Cli) -> None:
    made = charon("sample-data", "--streams", "--date-interval", "2012-06-01-2012-06-03",
                  "--events", "20")
    assert made.returncode == 0, made.stderr
    run = ("run", *LUIGI, "AggregateArtists", "--date-interval")
    quiet = charon(*run, "2012-06-01-2012-06-02", "--log-level", "WARNING")
    assert quiet.returncode == 0, quiet.stderr
    assert "AggregateArtists(date_interval=2012-06-01-2012-06-02): ran" in quiet.stdout
    assert '"level": "info"' not in quiet.stderr
    configured_quiet = Cli(charon.home, {"CHARON_LOG__LEVEL": "error"})
    loud = configured_quiet(*run, "2012-06-01-2012-06-03", "--log-level", "info")
    assert loud.returncode == 0, loud.stderr
    assert '"event": "run started"' in loud.stderr


# Luigi's running total: each day requires the day before, back to a first day.
CHAIN_TASKS = textwrap.dedent('''
    from datetime import date, timedelta

    from orchestrator.tasks.params import DateParameter
    from orchestrator.tasks.task import WrapperTask


    class RunningTotal(WrapperTask):
        day = DateParameter()

        def requires(self) -> list[WrapperTask]:
            first = self.day <= date(2010, 1, 1)
            return [] if first else [RunningTotal(day=self.day - timedelta(days=1))]
''')


def test_a_task_requiring_the_day_before_for_thousands_of_days_runs(
    charon: Cli, tmp_path: Path,
) -> None:
    """3,000 days down: Python's own stack ran out about 990 down, a traceback."""
    chain = importing(charon, tmp_path / "modules", "chain_tasks", CHAIN_TASKS)
    task = ("--module", "chain_tasks", "RunningTotal", "--day", "2018-03-19")
    ran = chain("run", *task)
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert "* 3000 complete ones were encountered:" in ran.stdout, ran.stdout[-2000:]
    explained = chain("explain", *task)
    assert explained.returncode == 0, explained.stderr[-2000:]
    assert "Traceback" not in ran.stderr + explained.stderr


MISDECLARED_TASKS = textwrap.dedent('''
    from orchestrator.tasks.params import DateParameter
    from orchestrator.tasks.task import ExternalTask, WrapperTask


    class Leaf(WrapperTask):
        day = DateParameter()


    class Number(WrapperTask):
        day = DateParameter()

        def requires(self) -> object:
            return 42


    class Name(WrapperTask):
        day = DateParameter()

        def requires(self) -> object:
            return [Leaf(day=self.day), "Leaf(day=2018-10-31)"]


    class IntKey(WrapperTask):
        day = DateParameter()

        def requires(self) -> object:
            return {1: Leaf(day=self.day)}


    class RequiresRaises(WrapperTask):
        day = DateParameter()

        def requires(self) -> object:
            return {"a": Leaf(day=self.day)}["b"]


    class OutputRaises(ExternalTask):
        day = DateParameter()

        def output(self) -> object:
            raise RuntimeError("the bucket could not be listed")


    class NeedsOutputRaises(WrapperTask):
        day = DateParameter()

        def requires(self) -> object:
            return [Leaf(day=self.day), OutputRaises(day=self.day)]


    class YieldsThenRaises(WrapperTask):
        day = DateParameter()

        def requires(self) -> object:
            yield Leaf(day=self.day)
            yield {"a": Leaf(day=self.day)}["c"]


    class Yields(WrapperTask):
        """Luigi's habit: requires() as a generator."""

        day = DateParameter()

        def requires(self) -> object:
            yield Leaf(day=self.day)
''')


@pytest.mark.parametrize(("family", "code", "said"), [
    ("Number", 2, "Number(day=2018-10-31).requires() returned 42: a task, a list or a dict"),
    ("Name", 2, "Name(day=2018-10-31).requires() holds 'Leaf(day=2018-10-31)' (at '1'), not"),
    ("IntKey", 2, "IntKey(day=2018-10-31).requires() names a task by 1: a dict's keys are"),
    ("RequiresRaises", 1, "RequiresRaises(day=2018-10-31).requires() raised KeyError: 'b' ("),
    ("YieldsThenRaises", 1, "YieldsThenRaises(day=2018-10-31).requires() raised KeyError: 'c'"),
    ("NeedsOutputRaises", 1, "OutputRaises(day=2018-10-31).output() raised RuntimeError: the"
                             " bucket could not be listed ("),
])
def test_a_task_whose_requires_or_output_goes_wrong_is_one_line(
    charon: Cli, tmp_path: Path, family: str, code: int, said: str,
) -> None:
    """Each was a traceback: a TypeError's, an AttributeError's, the task's own error's
    through charon's and anyio's frames. What the task returned is bad input (exit 2);
    what it raised, a failure (exit 1), said with where in the task's module."""
    misdeclared = importing(charon, tmp_path / "modules", "misdeclared_tasks", MISDECLARED_TASKS)
    ran = misdeclared("run", "--module", "misdeclared_tasks", family, "--day", "2018-10-31")
    assert ran.returncode == code, ran.stderr[-2000:]
    [line] = [line for line in ran.stderr.splitlines() if not line.startswith("{")]
    assert line.startswith(f"error: {said}")
    assert code == 2 or line.endswith(f"misdeclared_tasks.py:{line.rsplit(':', 1)[1]}")
    yields = misdeclared("run", "--module", "misdeclared_tasks", "Yields", "--day", "2018-10-31")
    assert yields.returncode == 0, yields.stderr[-2000:]


EXITING_TASKS = textwrap.dedent('''
    import sys

    from orchestrator.tasks.params import DateParameter
    from orchestrator.tasks.targets import RegistryTarget
    from orchestrator.tasks.task import Task


    class Exits(Task):
        """A script's habit, ported as it was."""

        day = DateParameter()

        def output(self) -> RegistryTarget:
            return RegistryTarget("exits.out", self.day.isoformat())

        async def run(self, context: object) -> None:
            sys.exit(3)


    class Shouts(Exits):
        """Its error carries a whole rejected batch."""

        async def run(self, context: object) -> None:
            raise ValueError("rows rejected: " + "x" * 50_000_000)
''')


def test_a_run_that_calls_sys_exit_fails_its_run_and_charon_goes_on(
    charon: Cli, tmp_path: Path,
) -> None:
    """It ended the thread task code runs on, and `charon run` hung for good."""
    exiting = importing(charon, tmp_path / "modules", "exiting_tasks", EXITING_TASKS)
    ran = exiting("run", "--module", "exiting_tasks", "Exits", "--day", "2018-10-31",
                  timeout=60)
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert "Exits(day=2018-10-31): failed (the task's run() raised SystemExit(3))" in ran.stdout
    assert "Traceback" not in ran.stderr


def test_a_run_s_error_of_megabytes_is_told_in_a_bounded_line(
    charon: Cli, tmp_path: Path,
) -> None:
    """The 50 MB went whole into the summary, the log and the run's row in the state
    store (and on a daemon, into every page showing the day)."""
    exiting = importing(charon, tmp_path / "modules", "exiting_tasks", EXITING_TASKS)
    ran = exiting("run", "--module", "exiting_tasks", "Shouts", "--day", "2018-10-31")
    assert ran.returncode == 1, ran.stderr[-2000:]
    assert "more characters]" in ran.stdout
    assert len(ran.stdout) + len(ran.stderr) < 50_000
    assert (charon.home / "state.sqlite").stat().st_size < 1_000_000
