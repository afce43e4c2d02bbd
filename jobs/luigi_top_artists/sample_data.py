"""Sample stream logs for the Luigi example: one TSV file per day, where ``Streams`` looks.

Each line is ``timestamp artist track``, tab-separated, in time order. Artist
popularity is Zipf-skewed and the same every day (so an interval has a clear top 10
with the odd close race); each day's file depends only on the seed and the day, so
writing 2012-07 or 2012-07-01-2012-08-01 (Luigi's custom interval, its end date
excluded) gives the same files.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import anyio.to_thread

from jobs.checkpoints import Checkpoint, cancellable, checked
from jobs.luigi_top_artists import Streams
from orchestrator.errors import ObjectExists
from orchestrator.intervals import DateInterval
from orchestrator.log import get_logger
from orchestrator.stores.storage.base import Storage

ARTISTS = 300
TRACKS_PER_ARTIST = 12
ZIPF_EXPONENT = 1.1
DEFAULT_SEED = 0


@dataclass(frozen=True)
class Written:
    day: date
    uri: str
    created: bool
    """False: the day's file was already there and was left alone."""


def artist_pool(seed: int) -> tuple[list[str], list[float]]:
    """The artists and their cumulative popularity weights, fixed per seed."""
    rng = random.Random(f"{seed}:artists")  # synthetic data, not crypto
    numbers = rng.sample(range(10_000), ARTISTS)
    artists = [f"artist{number:04d}" for number in numbers]
    weights: list[float] = []
    total = 0.0
    for rank in range(1, ARTISTS + 1):
        total += 1 / rank**ZIPF_EXPONENT
        weights.append(total)
    return artists, weights


def streams_day(day: date, events: int, seed: int = DEFAULT_SEED,
                checkpoint: Checkpoint | None = None) -> str:
    """A day of streams as TSV text."""
    artists, weights = artist_pool(seed)
    rng = random.Random(f"{seed}:{day.isoformat()}")  # synthetic data
    start = datetime.combine(day, datetime.min.time(), tzinfo=UTC)
    offsets = sorted(checked((rng.randrange(86_400) for _ in range(events)), checkpoint))
    chosen = rng.choices(artists, cum_weights=weights, k=events)
    lines = [
        f"{start + timedelta(seconds=offset):%Y-%m-%dT%H:%M:%S}\t{artist}\t"
        f"{artist}-track{rng.randrange(TRACKS_PER_ARTIST):02d}\n"
        for offset, artist in checked(zip(offsets, chosen, strict=True), checkpoint)
    ]
    return "".join(lines)


async def write_streams(
    interval: DateInterval, *, events: int, seed: int = DEFAULT_SEED,
    storage: Storage, data_prefix: str,
) -> Sequence[Written]:
    """Write every day of ``interval`` that has no file yet (files are create-only)."""
    log = get_logger("charon.sample_data")
    written = []
    for day in interval:
        uri = Streams(date=day).output().resolve(data_prefix)
        try:
            # Generating is CPU-bound: keep it off the event loop.
            text = await anyio.to_thread.run_sync(streams_day, day, events, seed, cancellable)
            await storage.write(uri, text.encode())
        except ObjectExists:
            written.append(Written(day, uri, created=False))
            continue
        log.info("wrote sample streams", date=day.isoformat(), events=events, uri=uri)
        written.append(Written(day, uri, created=True))
    return written
