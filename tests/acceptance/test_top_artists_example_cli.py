"""The Luigi example through the charon command: sample streams, the PostgreSQL load, re-runs,
missing days and the Spark variant, checked against an independent computation."""

from __future__ import annotations

import subprocess
from datetime import date

import anyio.to_thread
import asyncpg
import pytest

from tests.acceptance.conftest import CHARON, Cli
from tests.support.reference_toplist import artist_counts_in, top10_rows

pytestmark = pytest.mark.slow

MODULE = ("--module", "jobs.luigi_top_artists")
LOAD = ("run", *MODULE, "ArtistToplistToDatabase", "--date-interval", "2012-07",
        "--local-scheduler")
JULY = (date(2012, 7, 1), date(2012, 7, 31))


async def charon_with(charon: Cli, dsn: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**charon.env, "CHARON_POSTGRES__DSN": dsn}

    def call() -> subprocess.CompletedProcess[str]:
        return subprocess.run([CHARON, *args], env=env, capture_output=True, text=True,
                              timeout=300, check=False)

    return await anyio.to_thread.run_sync(call)


async def table_rows(dsn: str) -> list[tuple[object, ...]]:
    connection = await asyncpg.connect(dsn)
    try:
        records = await connection.fetch(
            "SELECT date_from, date_to, artist, streams FROM top10 ORDER BY streams DESC, artist"
        )
        return [tuple(record.values()) for record in records]
    finally:
        await connection.close()


async def test_the_month_loads_once_and_matches_an_independent_computation(
    charon: Cli, postgres_dsn: str,
) -> None:
    made = await charon_with(charon, postgres_dsn, "sample-data", "--streams",
                             "--date-interval", "2012-07", "--events", "1500")
    assert made.returncode == 0, made.stderr
    assert made.stdout.count("wrote ") == 31

    loaded = await charon_with(charon, postgres_dsn, *LOAD)
    assert loaded.returncode == 0, loaded.stderr
    assert "ArtistToplistToDatabase(date_interval=2012-07): ran" in loaded.stdout
    counts = artist_counts_in(charon.home / "storage" / "data", *JULY)
    assert await table_rows(postgres_dsn) == top10_rows(counts, *JULY)

    again = await charon_with(charon, postgres_dsn, *LOAD)
    assert again.returncode == 0, again.stderr
    assert ("ArtistToplistToDatabase(date_interval=2012-07): already complete"
            " for the current inputs, nothing to do") in again.stdout
    assert len(await table_rows(postgres_dsn)) == 10

    rewritten = await charon_with(charon, postgres_dsn, "sample-data", "--streams",
                                  "--date-interval", "2012-07-01-2012-07-03")
    assert rewritten.stdout.count("exists ") == 2


async def test_a_missing_day_exits_20_naming_it(charon: Cli, postgres_dsn: str) -> None:
    await charon_with(charon, postgres_dsn, "sample-data", "--streams",
                      "--date-interval", "2012-06-01-2012-06-30", "--events", "10")
    ran = await charon_with(charon, postgres_dsn, "run", *MODULE, "Top10Artists",
                            "--date-interval", "2012-06")
    assert ran.returncode == 20, ran.stderr
    assert "Streams(date=2012-06-30): storage data/streams_2012_06_30_faked.tsv" in ran.stdout
    bad = await charon_with(charon, postgres_dsn, "run", *MODULE, "Top10Artists",
                            "--date-interval", "2012-13")
    assert bad.returncode == 2
    assert "invalid date interval" in bad.stderr


async def test_the_spark_variant_loads_the_same_rows(charon: Cli, postgres_dsn: str) -> None:
    await charon_with(charon, postgres_dsn, "sample-data", "--streams",
                      "--date-interval", "2012-07", "--events", "800")
    loaded = await charon_with(charon, postgres_dsn, *LOAD, "--use-spark")
    assert loaded.returncode == 0, loaded.stderr + loaded.stdout
    assert "AggregateArtists(date_interval=2012-07): ran" in loaded.stdout
    counts = artist_counts_in(charon.home / "storage" / "data", *JULY)
    assert await table_rows(postgres_dsn) == top10_rows(counts, *JULY)


def delete_output(charon: Cli, endpoint: str) -> None:
    """The latest output's part file deleted, as a user would, its revision left alone
    (revision folders begin with their time stamp)."""
    parts = sorted((charon.home / "storage" / "outputs" / endpoint).glob("*/*/part-00000"))
    parts[-1].unlink()


async def test_deleted_outputs_are_rebuilt_and_the_summary_says_exactly_what_ran(
    charon: Cli, postgres_dsn: str,
) -> None:
    await charon_with(charon, postgres_dsn, "sample-data", "--streams",
                      "--date-interval", "2012-07", "--events", "300")
    first = await charon_with(charon, postgres_dsn, *LOAD)
    assert first.returncode == 0, first.stderr
    expected = await table_rows(postgres_dsn)

    delete_output(charon, "charon.examples.artist_streams")
    again = await charon_with(charon, postgres_dsn, *LOAD)
    assert again.returncode == 0, again.stderr
    # Nothing that reads the aggregate has to run (the top 10 is there for its
    # revision, the marker says loaded): left as it is, as Luigi would.
    assert ("AggregateArtists(date_interval=2012-07): already complete (its outputs are"
            " gone") in again.stdout
    assert "ran successfully" not in again.stdout
    assert await table_rows(postgres_dsn) == expected

    delete_output(charon, "charon.examples.top_artists")
    third = await charon_with(charon, postgres_dsn, "run", *MODULE, "Top10Artists",
                              "--date-interval", "2012-07", "--local-scheduler")
    assert third.returncode == 0, third.stderr
    # The top 10 must run and reads the aggregate: the aggregate is built first.
    assert ("* 31 complete ones were encountered:\n"
            "    - 31 Streams(date=2012-07-01...2012-07-31)\n"
            "* 2 ran successfully:\n"
            "    - 1 AggregateArtists(date_interval=2012-07)\n"
            "    - 1 Top10Artists(date_interval=2012-07)\n") in third.stdout
    # The marker says the rows were loaded: not loaded twice.
    loaded = await charon_with(charon, postgres_dsn, *LOAD)
    assert "ArtistToplistToDatabase(date_interval=2012-07): already complete" in loaded.stdout
    assert "ran successfully" not in loaded.stdout
    assert await table_rows(postgres_dsn) == expected
    shown = await charon_with(charon, postgres_dsn, "show", *MODULE, "Top10Artists",
                              "--date-interval", "2012-07")
    assert [line.split("\t")[2:] for line in shown.stdout.splitlines() if "\t" in line] == [
        [artist, str(streams)] for _, _, artist, streams in expected]
