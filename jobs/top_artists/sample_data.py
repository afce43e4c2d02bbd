"""Synthetic inputs for the top-artists job: one day of EndContentFact and TrackEntity.

Everything but :func:`publish_sample_day` is I/O free and deterministic for a seed,
so tests can generate a day and compute what the job must answer.
"""

from __future__ import annotations

import io
import itertools
import random
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import anyio
import anyio.to_thread
import fastavro

from jobs.checkpoints import Checkpoint, cancellable, checked
from orchestrator.log import get_logger
from orchestrator.model import Revision
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.storage.base import Storage
from orchestrator.stores.warehouse.base import Column, Warehouse
from orchestrator.tablespec import TableSpec

ENDPOINT = "di.golden.path.EndContentFactXT2"
TRACK_ENTITY_TABLE = "scio-playground:di_golden_path.track_entity_{day:%Y%m%d}"
STORAGE_FOLDER = "golden-path-sample-data"
DEFAULT_SEED = 20181031

AVRO_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "EndContentFact",
    "namespace": "di.golden.path",
    "fields": [
        {"name": "user_id", "type": "string"},
        {"name": "track_gid", "type": "string"},
        {"name": "ms_played", "type": "long"},
        {"name": "timestamp", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}

TRACK_ENTITY_COLUMNS = (
    Column("track_gid", "STRING"),
    Column("artist_gid", "STRING"),
    Column("artist_name", "STRING"),
)

SHORT_PLAY_SHARE = 0.10
UNKNOWN_TRACK_SHARE = 0.03
MULTI_ARTIST_SHARE = 0.15
SHORT_PLAY_MS = 30_000
# Zipf exponent of track popularity: a few hits, a long tail.
ZIPF_EXPONENT = 1.1

# fmt: off
_FIRST = (
    "Ada", "Bruno", "Clara", "Dario", "Elin", "Felix", "Greta", "Hugo", "Ines", "Jonas",
    "Kaia", "Leon", "Maja", "Nils", "Olga", "Pablo", "Quinn", "Rosa", "Sven", "Tove",
)
_LAST = (
    "Andersson", "Berg", "Castro", "Dahl", "Eklund", "Fischer", "Garcia", "Holm", "Ivanova",
    "Jensen", "Keller", "Lind", "Moreau", "Nyberg", "Okafor", "Persson",
)
_ADJECTIVES = (
    "Velvet", "Electric", "Silent", "Golden", "Neon", "Broken", "Midnight", "Crimson", "Wild",
    "Hollow", "Paper", "Northern", "Lucky", "Cosmic", "Frozen", "Little",
)
_NOUNS = (
    "Wolves", "Harbour", "Echoes", "Lanterns", "Pilots", "Machines", "Rivers", "Ghosts",
    "Satellites", "Foxes", "Gardens", "Tigers", "Parade", "Signals", "Orchard", "Comets",
)
# fmt: on

TrackEntityRow = tuple[str, str, str]


@dataclass(frozen=True)
class SampleDay:
    """One day of sample input: stream records and TrackEntity rows."""

    day: date
    streams: list[dict[str, Any]]
    track_entities: list[TrackEntityRow]
    track_entity_spec: str
    endpoint: str = ENDPOINT


def generate_day(
    day: date, events: int, seed: int = DEFAULT_SEED, *, catalogue_seed: int | None = None,
    checkpoint: Checkpoint | None = None,
) -> SampleDay:
    """A deterministic day of ``events`` plays over a Zipf-skewed catalogue.

    The catalogue (TrackEntity) comes from ``catalogue_seed`` (``seed`` if None) and the
    plays from ``seed``: a late revision of a day's streams is new plays over the same
    catalogue, as in production, where the day's TrackEntity does not change with them.
    """
    rng = random.Random(seed if catalogue_seed is None else catalogue_seed)
    tracks = max(20, events // 20)
    artists = [(gid(rng), name) for name in artist_names(rng, max(10, tracks // 3))]
    track_entities = catalogue(rng, tracks, artists)
    known = list(dict.fromkeys(track for track, _, _ in track_entities))
    unknown = [gid(rng) for _ in range(max(5, tracks // 20))]
    if catalogue_seed is not None:
        rng = random.Random(seed)
    users = [gid(rng) for _ in range(max(10, events // 10))]
    popularity = list(
        itertools.accumulate(1 / rank**ZIPF_EXPONENT for rank in range(1, tracks + 1))
    )
    streams = list(checked(
        (play(rng, day, rng.choice(users), pick_track(rng, known, unknown, popularity))
         for _ in range(events)),
        checkpoint,
    ))
    return SampleDay(
        day=day,
        streams=streams,
        track_entities=track_entities,
        track_entity_spec=TRACK_ENTITY_TABLE.format(day=day),
    )


def gid(rng: random.Random) -> str:
    """A Spotify-style gid: 32 hex characters."""
    return f"{rng.getrandbits(128):032x}"


def artist_names(rng: random.Random, count: int) -> list[str]:
    """``count`` distinct names: a repeated one gets a number, so rankings read clearly."""
    seen: Counter[str] = Counter()
    names = []
    for _ in range(count):
        name = artist_name(rng)
        seen[name] += 1
        names.append(name if seen[name] == 1 else f"{name} {seen[name]}")
    return names


def artist_name(rng: random.Random) -> str:
    style = rng.randrange(3)
    if style == 0:
        return f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
    if style == 1:
        return f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}"
    return f"{rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)} & {rng.choice(_FIRST)}"


def catalogue(
    rng: random.Random, tracks: int, artists: Sequence[tuple[str, str]]
) -> list[TrackEntityRow]:
    """TrackEntity rows: one per (track, artist), some tracks with 2 or 3 artists."""
    rows: list[TrackEntityRow] = []
    for _ in range(tracks):
        track = gid(rng)
        credits = rng.choice((2, 3)) if rng.random() < MULTI_ARTIST_SHARE else 1
        rows.extend((track, artist, name) for artist, name in rng.sample(artists, credits))
    return rows


def pick_track(
    rng: random.Random, known: Sequence[str], unknown: Sequence[str], popularity: Sequence[float]
) -> str:
    if rng.random() < UNKNOWN_TRACK_SHARE:
        return rng.choice(unknown)
    return rng.choices(known, cum_weights=popularity)[0]


def play(rng: random.Random, day: date, user: str, track: str) -> dict[str, Any]:
    short = rng.random() < SHORT_PLAY_SHARE
    ms_played = (
        rng.randrange(500, SHORT_PLAY_MS) if short else rng.randrange(SHORT_PLAY_MS, 420_000)
    )
    start = datetime.combine(day, time(), tzinfo=UTC)
    return {
        "user_id": user,
        "track_gid": track,
        "ms_played": ms_played,
        # Whole milliseconds, so that records survive the Avro round trip unchanged.
        "timestamp": start + timedelta(milliseconds=rng.randrange(86_400_000)),
    }


def avro_bytes(records: Iterable[dict[str, Any]], checkpoint: Checkpoint | None = None,
               ) -> bytes:
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(AVRO_SCHEMA), checked(records, checkpoint),
                    codec="deflate")
    return buffer.getvalue()


def split(records: Sequence[dict[str, Any]], parts: int) -> list[Sequence[dict[str, Any]]]:
    """``parts`` contiguous slices differing in length by at most one."""
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")
    size, extra = divmod(len(records), parts)
    bounds = list(itertools.accumulate(size + (k < extra) for k in range(parts)))
    return [records[end - size - (k < extra) : end] for k, end in enumerate(bounds)]


def part_name(index: int, parts: int) -> str:
    return f"part-{index:05d}-of-{parts:05d}.avro"


def revision_folder(storage_prefix: str, day: date, created: datetime, token: str) -> str:
    """Where one revision's files go, named like the golden-path tutorial's Hades URIs."""
    return "/".join(
        (
            storage_prefix.rstrip("/"),
            STORAGE_FOLDER,
            ENDPOINT,
            day.isoformat(),
            f"{created:%Y%m%dT%H%M%S.%f}-{token}",
        )
    )


async def publish_sample_day(
    sample: SampleDay,
    *,
    registry: Registry,
    warehouse: Warehouse,
    storage: Storage,
    storage_prefix: str,
    files: int = 4,
    write_table: bool = True,
) -> Revision:
    """Write the Avro files and (unless ``write_table`` is False) the TrackEntity table,
    then publish the partition.

    Publishing comes last so that the revision only appears once its data is whole. A
    late revision leaves the table alone: changing it too would give a run triggered in
    between a mix of old and new inputs to read.
    """
    log = get_logger("charon.sample_data")
    folder = revision_folder(storage_prefix, sample.day, datetime.now(UTC), secrets.token_hex(6))
    for index, records in enumerate(split(sample.streams, files)):
        # Encoding is CPU-bound: keep it off the event loop.
        data = await anyio.to_thread.run_sync(avro_bytes, records, cancellable)
        uri = f"{folder}/{part_name(index, files)}"
        await storage.write(uri, data)
        log.info("wrote sample file", file=f"{index + 1}/{files}", records=len(records), uri=uri)
    if write_table:
        await warehouse.create_table(
            TableSpec.parse(sample.track_entity_spec), TRACK_ENTITY_COLUMNS,
            sample.track_entities,
        )
        log.info("created table", table=sample.track_entity_spec,
                 rows=len(sample.track_entities))
    return await registry.publish(sample.endpoint, sample.day.isoformat(), folder)
