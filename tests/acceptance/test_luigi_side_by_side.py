"""charon and real Luigi (3.8.1 from PyPI, its own venv) side by side on Luigi's top-artists
example: the same stream files give the same aggregate and a byte-identical top 10 for every
spelling of the interval, and a deleted output is rebuilt as Luigi rebuilds it — except where
charon's staleness rule goes past Luigi's, tested here as charon's documented behaviour.

Each side works in its own folder on copies of one set of stream files (``charon sample-data
--streams``, a day's file fixed by the day): charon through its command, with its embedded
registry and state store; Luigi as ``python -m luigi --module bench.luigi_top_artists``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.luigi_venv import luigi_python
from tests.acceptance.conftest import Cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]
YEAR = "2012"  # every interval below lies in it
EVENTS = "100"  # streams a day: enough for close races in the top 10, and fast
MONTH = "2012-06"
AGGREGATE, TOP10 = "charon.examples.artist_streams", "charon.examples.top_artists"
SUMMARY_ENTRY = re.compile(r"^    - \d+ (.+)$")


@pytest.fixture(scope="module")
def streams(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A year of stream files, made once; every side works on a copy."""
    home = tmp_path_factory.mktemp("streams") / "home"
    made = Cli(home)("sample-data", "--streams", "--date-interval", YEAR, "--events", EVENTS)
    assert made.returncode == 0, made.stderr
    return home / "storage" / "data"


@dataclass(frozen=True)
class Sides:
    charon: Cli
    luigi: Path
    """Luigi's working folder: it reads and writes data/ there, as in its example."""

    def run_charon(self, interval: str, task: str = "Top10Artists") -> str:
        """charon's stdout: a line per task and the execution summary."""
        done = self.charon("run", "--module", "jobs.luigi_top_artists", task,
                           "--date-interval", interval)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def run_luigi(self, interval: str, task: str = "Top10Artists") -> str:
        """Luigi's stderr, where its execution summary is logged."""
        env = {**os.environ, "PYTHONPATH": str(ROOT),
               # No luigi.cfg of the machine's or the user's bends the run.
               "LUIGI_CONFIG_PATH": str(self.luigi / "none.cfg")}
        argv = [luigi_python(), "-m", "luigi", "--module", "bench.luigi_top_artists", task,
                "--date-interval", interval, "--local-scheduler", "--log-level", "INFO"]
        done = subprocess.run(argv, env=env, cwd=self.luigi, capture_output=True, text=True,
                              timeout=120, check=False)
        assert done.returncode == 0, done.stderr
        assert "Luigi Execution Summary" in done.stderr, done.stderr
        return done.stderr

    def charon_file(self, endpoint: str, interval: str) -> Path:
        """The part file of the partition's latest revision (folders begin with their
        time stamp)."""
        parts = self.charon.home / "storage" / "outputs" / endpoint / interval
        return sorted(parts.glob("*/part-00000"))[-1]

    def luigi_file(self, stem: str, interval: str) -> Path:
        return self.luigi / "data" / f"{stem}_{interval}.tsv"


@pytest.fixture
def sides(streams: Path, tmp_path: Path) -> Sides:
    charon = Cli(tmp_path / "charon")
    shutil.copytree(streams, charon.home / "storage" / "data")
    shutil.copytree(streams, tmp_path / "luigi" / "data")
    return Sides(charon, tmp_path / "luigi")


def counts(path: Path) -> dict[str, int]:
    """An aggregate file as artist -> streams, each artist on one line only."""
    pairs = [line.split("\t") for line in path.read_text().splitlines()]
    mapping = {artist: int(streams) for artist, streams in pairs}
    assert len(mapping) == len(pairs), f"an artist twice in {path}"
    return mapping


def ran(summary: str) -> list[str]:
    """The tasks an execution summary (charon's or Luigi's, one format) says ran.

    Luigi names ``use_spark=False`` too; charon leaves that runner parameter out of its
    task ids (it chooses how the aggregate is computed, not what it is), so it is dropped.
    """
    section = summary.split(" ran successfully:\n", 1)
    if len(section) == 1:
        return []
    entries = []
    for line in section[1].splitlines():
        if not (entry := SUMMARY_ENTRY.match(line)):
            break
        entries.append(entry[1].replace(", use_spark=False", ""))
    return entries


def assert_same_outputs(sides: Sides, interval: str) -> None:
    # Luigi writes the aggregate in its dict's order (each artist where its first stream
    # came), charon sorted by artist: the same counts, lines in another order.
    assert counts(sides.charon_file(AGGREGATE, interval)) == counts(
        sides.luigi_file("artist_streams", interval))
    assert sides.charon_file(TOP10, interval).read_bytes() == sides.luigi_file(
        "top_artists", interval).read_bytes()


@pytest.mark.parametrize(("interval", "days"), [
    ("2012-06", 30),
    ("2012-W05", 7),  # ISO week 5: 2012-01-30 to 2012-02-05
    ("2012", 366),
    ("2012-06-05-2012-06-11", 6),  # Luigi's custom interval leaves its end date out
])
def test_every_spelling_gives_luigis_outputs(sides: Sides, interval: str, days: int) -> None:
    both = ran(sides.run_charon(interval)), ran(sides.run_luigi(interval))
    assert_same_outputs(sides, interval)
    assert both[0] == both[1] == [f"AggregateArtists(date_interval={interval})",
                                  f"Top10Artists(date_interval={interval})"]
    # Both read exactly the interval's days (the custom one: its end date left out).
    assert sum(counts(sides.charon_file(AGGREGATE, interval)).values()) == days * int(EVENTS)
    assert len(sides.charon_file(TOP10, interval).read_text().splitlines()) == 10


@pytest.fixture
def built(sides: Sides) -> Sides:
    """The month built on both sides, and a second run finding it complete on both."""
    sides.run_charon(MONTH)
    sides.run_luigi(MONTH)
    assert ran(sides.run_charon(MONTH)) == ran(sides.run_luigi(MONTH)) == []
    return sides


def test_a_deleted_top10_is_rebuilt_alone_as_in_luigi(built: Sides) -> None:
    built.charon_file(TOP10, MONTH).unlink()
    built.luigi_file("top_artists", MONTH).unlink()
    expected = [f"Top10Artists(date_interval={MONTH})"]
    assert ran(built.run_charon(MONTH)) == ran(built.run_luigi(MONTH)) == expected
    assert_same_outputs(built, MONTH)


def test_a_deleted_aggregate_asked_for_is_rebuilt_alone_as_in_luigi(built: Sides) -> None:
    built.charon_file(AGGREGATE, MONTH).unlink()
    built.luigi_file("artist_streams", MONTH).unlink()
    expected = [f"AggregateArtists(date_interval={MONTH})"]
    assert (ran(built.run_charon(MONTH, "AggregateArtists"))
            == ran(built.run_luigi(MONTH, "AggregateArtists")) == expected)
    assert_same_outputs(built, MONTH)


def test_both_deleted_are_both_rebuilt_as_in_luigi(built: Sides) -> None:
    for path in (built.charon_file(AGGREGATE, MONTH), built.charon_file(TOP10, MONTH),
                 built.luigi_file("artist_streams", MONTH),
                 built.luigi_file("top_artists", MONTH)):
        path.unlink()
    expected = [f"AggregateArtists(date_interval={MONTH})",
                f"Top10Artists(date_interval={MONTH})"]
    assert ran(built.run_charon(MONTH)) == ran(built.run_luigi(MONTH)) == expected
    assert_same_outputs(built, MONTH)


def test_a_deleted_aggregate_under_a_complete_top10_is_left_as_in_luigi(built: Sides) -> None:
    """Luigi asks a complete task nothing more: its requirements are never scheduled, so the
    missing aggregate stays missing. charon looks below (for new input revisions) but leaves
    an output that is merely gone until something that reads it has to run."""
    aggregate = built.charon_file(AGGREGATE, MONTH)
    aggregate.unlink()
    built.luigi_file("artist_streams", MONTH).unlink()
    luigi = built.run_luigi(MONTH)
    assert ran(luigi) == ran(built.run_charon(MONTH)) == []
    assert ("Scheduled 1 tasks of which:\n* 1 complete ones were encountered:\n"
            f"    - 1 Top10Artists(date_interval={MONTH}, use_spark=False)\n") in luigi
    assert not built.luigi_file("artist_streams", MONTH).exists()
    assert not any(aggregate.parent.parent.glob("*/part-00000"))
    # Asked for the top 10 once its own output is gone too, both rebuild the pair.
    built.charon_file(TOP10, MONTH).unlink()
    built.luigi_file("top_artists", MONTH).unlink()
    expected = [f"AggregateArtists(date_interval={MONTH})",
                f"Top10Artists(date_interval={MONTH})"]
    assert ran(built.run_charon(MONTH)) == ran(built.run_luigi(MONTH)) == expected
    assert_same_outputs(built, MONTH)


def test_a_rewritten_stream_file_rebuilds_the_chain_in_charon_only(built: Sides) -> None:
    """charon's addition to Luigi's completeness, the reason it looks below a complete task:
    an output must match its current inputs, and a rewritten day is a new revision."""
    day = "data/streams_2012_06_10_faked.tsv"
    late = "2012-06-10T23:59:59\tartist9999\tartist9999-track00\n"
    for folder in (built.charon.home / "storage", built.luigi):
        with (folder / day).open("a") as streams_file:
            streams_file.write(late)
    assert ran(built.run_luigi(MONTH)) == []
    assert "artist9999" not in built.luigi_file("artist_streams", MONTH).read_text()
    assert ran(built.run_charon(MONTH)) == [f"AggregateArtists(date_interval={MONTH})",
                                            f"Top10Artists(date_interval={MONTH})"]
    assert counts(built.charon_file(AGGREGATE, MONTH))["artist9999"] == 1
