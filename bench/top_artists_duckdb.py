"""The top-artists day in DuckDB alone: the floor the Beam job is measured against.

The same inputs (the day's Avro files, read by DuckDB's avro extension; the TrackEntity
table in the embedded warehouse) and the same answer, written as the job's text output
is, so the benchmark can check the two agree byte for byte. Run as a subprocess, so
that its interpreter's start-up counts as the job's does:

    python -m bench.top_artists_duckdb AVRO_GLOB WAREHOUSE_DIR TRACK_ENTITY TOP_N OUT_FILE
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb

from orchestrator.stores.warehouse import duckdb_files
from orchestrator.tablespec import TableSpec

MIN_STREAM_MS = 30_000
# Ties go to the smaller artist gid, as in the job; DISTINCT: a repeated catalogue row
# credits an artist once.
QUERY = """
WITH streams AS (
    SELECT track_gid, count(*) AS streams FROM read_avro($avro)
    WHERE ms_played >= $min_ms GROUP BY track_gid),
artists AS (
    SELECT DISTINCT track_gid, artist_gid, artist_name FROM {table}
    WHERE track_gid IS NOT NULL AND artist_gid IS NOT NULL AND artist_name IS NOT NULL)
SELECT artist_gid, artist_name, sum(streams)::BIGINT AS streams
FROM streams JOIN artists USING (track_gid)
GROUP BY artist_gid, artist_name
ORDER BY streams DESC, artist_gid
LIMIT $top_n
"""


def avro_extension() -> Path | None:
    """DuckDB's avro extension from its wheel (duckdb-extension-avro), if installed."""
    try:
        import duckdb_extension_avro  # noqa: PLC0415  (optional: the peer is skipped without)
    except ImportError:
        return None
    folder = Path(duckdb_extension_avro.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    found = folder / "avro.duckdb_extension"
    return found if found.is_file() else None


def main(avro_glob: str, warehouse: str, track_entity: str, top_n: str, out: str) -> None:
    extension = avro_extension()
    if extension is None:
        sys.exit("error: pip install duckdb-extension-avro (the test extra has it)")
    spec = TableSpec.parse(track_entity)
    path = duckdb_files.database_path(Path(warehouse), spec.project)
    connection = duckdb.connect(str(path), read_only=True)
    try:
        connection.execute(f"LOAD '{extension}'")
        rows = connection.execute(
            QUERY.format(table=duckdb_files.quoted(spec)),
            {"avro": avro_glob, "min_ms": MIN_STREAM_MS, "top_n": int(top_n)},
        ).fetchall()
    finally:
        connection.close()
    Path(out).write_text("\n".join(f"{gid}\t{name}\t{streams}" for gid, name, streams in rows)
                         + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:])
