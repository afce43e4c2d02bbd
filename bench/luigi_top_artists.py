"""Luigi's top-artists example (``examples/top_artists.py`` in Luigi) as Luigi runs it, for
the side-by-side marker tests and bench/luigi_year.py; imported by Luigi's venv only
(bench/luigi_venv.py).

The tasks, parameters and marker are the example's; the streams are the files charon's
``sample-data --streams`` writes (so Streams is external here, not faked), and the
connection comes from ``TOPLISTS_*`` variables instead of the example's literals.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterator
from heapq import nlargest
from typing import Any

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only
import luigi.contrib.postgres  # type: ignore[import-not-found]


class Streams(luigi.ExternalTask):  # type: ignore[misc]
    date = luigi.DateParameter()

    def output(self) -> Any:
        return luigi.LocalTarget(self.date.strftime("data/streams_%Y_%m_%d_faked.tsv"))


class AggregateArtists(luigi.Task):  # type: ignore[misc]
    date_interval = luigi.DateIntervalParameter()

    def output(self) -> Any:
        return luigi.LocalTarget(f"data/artist_streams_{self.date_interval}.tsv")

    def requires(self) -> list[Streams]:
        return [Streams(date) for date in self.date_interval]

    def run(self) -> None:
        artist_count: dict[str, int] = defaultdict(int)
        for target in self.input():
            with target.open("r") as in_file:
                for line in in_file:
                    _, artist, _ = line.strip().split()
                    artist_count[artist] += 1
        with self.output().open("w") as out_file:
            for artist, count in artist_count.items():
                out_file.write(f"{artist}\t{count}\n")


class Top10Artists(luigi.Task):  # type: ignore[misc]
    date_interval = luigi.DateIntervalParameter()
    use_spark = luigi.BoolParameter()

    def requires(self) -> AggregateArtists:
        if self.use_spark:
            raise NotImplementedError("the Spark variant is not part of these tests")
        return AggregateArtists(self.date_interval)

    def output(self) -> Any:
        return luigi.LocalTarget(f"data/top_artists_{self.date_interval}.tsv")

    def run(self) -> None:
        with self.output().open("w") as out_file:
            for streams, artist in nlargest(10, self._input_iterator()):
                interval = self.date_interval
                out_file.write(f"{interval.date_a}\t{interval.date_b}\t{artist}\t{streams}\n")

    def _input_iterator(self) -> Iterator[tuple[int, str]]:
        with self.input().open("r") as in_file:
            for line in in_file:
                artist, streams = line.strip().split()
                yield int(streams), artist


class ArtistToplistToDatabase(luigi.contrib.postgres.CopyToTable):  # type: ignore[misc]
    date_interval = luigi.DateIntervalParameter()
    use_spark = luigi.BoolParameter()

    host = os.environ.get("TOPLISTS_HOST", "localhost")
    port = os.environ.get("TOPLISTS_PORT", "5432")
    database = os.environ.get("TOPLISTS_DATABASE", "toplists")
    user = os.environ.get("TOPLISTS_USER", "luigi")
    password = os.environ.get("TOPLISTS_PASSWORD", "")
    table = "top10"

    columns = (("date_from", "DATE"),
               ("date_to", "DATE"),
               ("artist", "TEXT"),
               ("streams", "INT"))

    def requires(self) -> Top10Artists:
        return Top10Artists(self.date_interval, self.use_spark)
