"""The top-artists answer computed the plain way, to check the Beam job against.

Deliberately shares no code with the job: it reads the Avro files with fastavro and
the TrackEntity table with DuckDB's own client, and counts with a dict.
"""

from __future__ import annotations

import glob
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import duckdb
import fastavro

MIN_STREAM_MS = 30_000


def top_artists(
    avro_glob: str, duckdb_dir: Path, track_entity: str, top_n: int
) -> list[tuple[str, str, int]]:
    """``(artist_gid, artist_name, streams)`` best first, ties by artist gid."""
    artists = track_artists(duckdb_dir, track_entity)
    streams: Counter[tuple[str, str]] = Counter()
    for path in sorted(glob.glob(avro_glob)):
        with open(path, "rb") as handle:
            records = cast(Iterator[dict[str, Any]], fastavro.reader(handle))
            for record in records:
                if record["ms_played"] >= MIN_STREAM_MS:
                    for artist in artists.get(record["track_gid"], ()):
                        streams[artist] += 1
    ranking = sorted(streams.items(), key=lambda item: (-item[1], item[0][0]))
    return [(gid, name, count) for (gid, name), count in ranking[:top_n]]


def track_artists(duckdb_dir: Path, track_entity: str) -> dict[str, set[tuple[str, str]]]:
    project, _, rest = track_entity.rpartition(":")
    dataset, _, table = rest.partition(".")
    connection = duckdb.connect(str(duckdb_dir / f"{project}.duckdb"), read_only=True)
    try:
        rows = connection.execute(
            f'SELECT track_gid, artist_gid, artist_name FROM "{dataset}"."{table}"'  # noqa: S608
            " WHERE track_gid IS NOT NULL AND artist_gid IS NOT NULL"
            " AND artist_name IS NOT NULL"
        ).fetchall()
    finally:
        connection.close()
    artists: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for track, gid, name in rows:
        artists[track].add((gid, name))
    return artists
