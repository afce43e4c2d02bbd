"""Luigi's side of bench/luigi_year.py: Luigi's top-artists example (``examples/top_artists.py``
in Luigi), its in-process chain, run by Luigi's local scheduler on the same stream files.

``Streams`` files are made beforehand (``charon sample-data --streams``), so Luigi finds
them complete, as charon senses them; paths are relative to the working directory.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterator

import luigi  # type: ignore[import-not-found]  # installed in bench/.venv-luigi only


class Streams(luigi.Task):  # type: ignore[misc]
    date = luigi.DateParameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(self.date.strftime("data/streams_%Y_%m_%d_faked.tsv"))


class AggregateArtists(luigi.Task):  # type: ignore[misc]
    date_interval = luigi.DateIntervalParameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"data/artist_streams_{self.date_interval}.tsv")

    def requires(self) -> list[Streams]:
        return [Streams(day) for day in self.date_interval]

    def run(self) -> None:
        counts: Counter[str] = Counter()
        for target in self.input():
            with target.open("r") as lines:
                for line in lines:
                    counts[line.split()[1]] += 1
        with self.output().open("w") as out:
            for artist, count in counts.items():
                out.write(f"{artist}\t{count}\n")


class Top10Artists(luigi.Task):  # type: ignore[misc]
    date_interval = luigi.DateIntervalParameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"data/top_artists_{self.date_interval}.tsv")

    def requires(self) -> AggregateArtists:
        return AggregateArtists(self.date_interval)

    def run(self) -> None:
        interval = self.date_interval
        with self.output().open("w") as out:
            for streams, artist in heapq.nlargest(10, self._counts()):
                out.write(f"{interval.date_a}\t{interval.date_b}\t{artist}\t{streams}\n")

    def _counts(self) -> Iterator[tuple[int, str]]:
        with self.input().open("r") as lines:
            for line in lines:
                artist, streams = line.split()
                yield int(streams), artist
