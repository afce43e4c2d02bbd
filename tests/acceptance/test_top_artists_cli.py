"""The golden-path day through the CLI: sample data, run, re-run, missing inputs, failures."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.acceptance.conftest import Cli
from tests.support.reference import top_artists

pytestmark = pytest.mark.slow

DAY = "2018-10-31"
ECF = "di.golden.path.EndContentFactXT2"
OUTPUT = "di.golden.path.charon.top_artists"
TRACK_ENTITY = "scio-playground:di_golden_path.track_entity_20181031"
RUN = ("run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY,
       "--top-n", "25", "--local-scheduler")


def revisions(charon: Cli, endpoint: str) -> list[list[str]]:
    listed = charon("registry", "ls", endpoint, DAY)
    return [line.split() for line in listed.stdout.splitlines()[1:]]


def tables(charon: Cli) -> list[tuple[str, str]]:
    path = charon.home / "warehouse" / "scio-playground.duckdb"
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables"
            " WHERE table_schema NOT IN ('_charon', 'information_schema')"
            " ORDER BY 1, 2"
        ).fetchall()
    return [(schema, name) for schema, name in rows]


def test_a_day_runs_end_to_end_and_matches_an_independent_computation(charon: Cli) -> None:
    made = charon("sample-data", "--date", DAY, "--events", "20000")
    assert made.returncode == 0, made.stderr
    [[_, _, input_uri]] = revisions(charon, ECF)

    ran = charon(*RUN)
    assert ran.returncode == 0, ran.stderr
    assert "TopArtistsJob(date=2018-10-31, top_n=25" in ran.stdout
    assert "published textOutput" in ran.stdout
    # The job's output is also in its run's log, for the daemon's run page.
    [log] = (charon.home / "logs").iterdir()
    kept = log.read_text()
    assert "attempt 1: starting the job" in kept
    assert "the job finished" in kept
    output = [json.loads(line)["line"] for line in ran.stderr.splitlines() if '"job log"' in line]
    assert output
    assert all(line in kept for line in output)

    expected = top_artists(f"{input_uri}/*.avro", charon.home / "warehouse", TRACK_ENTITY, 25)
    [[revision_id, _, output_uri]] = revisions(charon, OUTPUT)
    part = Path(output_uri, "part").read_text().splitlines()
    assert [tuple(line.split("\t")) for line in part] == [
        (gid, name, str(streams)) for gid, name, streams in expected
    ]
    path = charon.home / "warehouse" / "scio-playground.duckdb"
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT date::VARCHAR, rank, artist_gid, artist_name, streams"
            " FROM charon.top_artists_daily20181031 ORDER BY rank"
        ).fetchall()
    assert rows == [
        (DAY, rank, gid, name, streams)
        for rank, (gid, name, streams) in enumerate(expected, start=1)
    ]
    assert not [t for t in tables(charon) if t[0].startswith("_incoming_")]

    shown = charon("show", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY,
                   "--top-n", "25")
    assert shown.returncode == 0, shown.stderr
    assert revision_id in shown.stdout
    assert expected[0][1] in shown.stdout

    again = charon(*RUN)
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert len(revisions(charon, OUTPUT)) == 1
    assert not any('"job starting"' in line for line in again.stderr.splitlines())


def test_missing_inputs_exit_20_and_list_them(charon: Cli) -> None:
    ran = charon(*RUN)
    assert ran.returncode == 20, ran.stderr
    assert ECF in ran.stdout
    assert TRACK_ENTITY in ran.stdout
    assert revisions(charon, OUTPUT) == []


def test_a_failing_job_leaves_nothing_visible(charon: Cli) -> None:
    assert charon("sample-data", "--date", DAY, "--events", "2000").returncode == 0
    corrupt = charon.home / "storage" / "corrupt"
    corrupt.mkdir(parents=True)
    (corrupt / "part-00000-of-00001.avro").write_bytes(b"Obj\x01 this is not avro")
    published = charon("registry", "publish", ECF, DAY, str(corrupt))
    assert published.returncode == 0, published.stderr

    ran = charon(*RUN)
    assert ran.returncode == 1
    assert "failed" in ran.stdout
    assert revisions(charon, OUTPUT) == []
    assert tables(charon) == [("di_golden_path", "track_entity_20181031")]
    outputs = charon.home / "storage" / "outputs"
    assert not outputs.exists() or not [p for p in outputs.rglob("*") if p.is_file()]
    events = [json.loads(line) for line in ran.stderr.splitlines() if line.startswith("{")]
    assert any(e.get("event") == "run failed" for e in events)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("run", "--module", "jobs.top_artists", "NoSuchTask", "--date", DAY), "no task"),
        (("run", "--module", "no.such.module", "TopArtistsJob"), "cannot import"),
        (("run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", "2018-02-30",
          "--top-n", "5"), "invalid date"),
        (("run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY), "top-n"),
        (("run", "--module", "jobs.top_artists", "TopArtistsJob", "--date", DAY, "--top-n",
          "5", "--colour", "red"), "--colour"),
        (("registry", "publish", "bad endpoint!", DAY, "/x"), "invalid endpoint"),
        (("registry", "publish", ECF, "31/10/2018", "/x"), "invalid partition"),
        (("sample-data", "--date", "yesterday"), "invalid date"),
        (("sample-data", "--date", DAY, "--events", "-5"), "a whole number from 1"),
    ],
)
def test_bad_input_exits_2_with_a_clear_error_and_changes_nothing(
    charon: Cli, args: tuple[str, ...], message: str
) -> None:
    result = charon(*args)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert revisions(charon, ECF) == []
