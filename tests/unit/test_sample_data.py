from __future__ import annotations

import io
import re
from collections import Counter
from datetime import UTC, date, datetime

import fastavro
import pytest

from jobs.checkpoints import CHECKPOINT_EVERY
from jobs.top_artists.sample_data import (
    AVRO_SCHEMA,
    ENDPOINT,
    TRACK_ENTITY_COLUMNS,
    SampleDay,
    avro_bytes,
    generate_day,
    part_name,
    publish_sample_day,
    revision_folder,
    split,
)
from orchestrator.tablespec import TableSpec
from orchestrator.testing import InMemoryRegistry, InMemoryStorage, InMemoryWarehouse

DAY = date(2018, 10, 31)
HEX32 = re.compile(r"^[0-9a-f]{32}$")


@pytest.fixture(scope="module")
def sample() -> SampleDay:
    return generate_day(DAY, 20_000, seed=7)


def test_a_seed_gives_the_same_day(sample: SampleDay) -> None:
    assert generate_day(DAY, 20_000, seed=7) == sample
    assert generate_day(DAY, 20_000, seed=8).streams != sample.streams


def test_making_and_encoding_a_day_stop_at_checkpoints_and_say_how_far_they_got() -> None:
    """Where a Ctrl-C stops a big day (tests/acceptance/test_interrupt_cli.py); the day
    made is the same with them."""
    events = 2 * CHECKPOINT_EVERY + 1
    made: list[int] = []
    day = generate_day(DAY, events, seed=7, checkpoint=made.append)
    assert day == generate_day(DAY, events, seed=7)
    assert made == [CHECKPOINT_EVERY, 2 * CHECKPOINT_EVERY]

    class Stop(Exception):
        pass

    def stop(count: int) -> None:
        raise Stop(count)

    with pytest.raises(Stop, match=f"^{CHECKPOINT_EVERY}$"):
        avro_bytes(day.streams, stop)
    encoded: list[int] = []
    reader = fastavro.reader(io.BytesIO(avro_bytes(day.streams, encoded.append)))
    assert list(reader) == day.streams
    assert encoded == made


def test_names_and_ids(sample: SampleDay) -> None:
    assert sample.track_entity_spec == "scio-playground:di_golden_path.track_entity_20181031"
    assert sample.endpoint == "di.golden.path.EndContentFactXT2"
    assert len(sample.streams) == 20_000
    for track, artist, name in sample.track_entities:
        assert HEX32.match(track)
        assert HEX32.match(artist)
        assert name.strip() == name
        assert name
    assert {"user_id", "track_gid", "ms_played", "timestamp"} == set(sample.streams[0])


def test_proportions(sample: SampleDay) -> None:
    known = {track for track, _, _ in sample.track_entities}
    short = sum(record["ms_played"] < 30_000 for record in sample.streams) / len(sample.streams)
    unknown = sum(r["track_gid"] not in known for r in sample.streams) / len(sample.streams)
    assert 0.08 < short < 0.12
    assert 0.02 < unknown < 0.04
    artists_per_track = Counter(track for track, _, _ in sample.track_entities)
    assert set(artists_per_track.values()) == {1, 2, 3}


def test_popularity_is_skewed(sample: SampleDay) -> None:
    plays = Counter(record["track_gid"] for record in sample.streams).most_common()
    top_tenth = sum(count for _, count in plays[: len(plays) // 10])
    assert top_tenth > len(sample.streams) / 2


def test_timestamps_fall_within_the_day(sample: SampleDay) -> None:
    start = datetime(2018, 10, 31, tzinfo=UTC)
    end = datetime(2018, 11, 1, tzinfo=UTC)
    assert all(start <= record["timestamp"] < end for record in sample.streams)


def test_artist_names_are_distinct(sample: SampleDay) -> None:
    names = {artist: name for _, artist, name in sample.track_entities}
    assert len(set(names.values())) == len(names)


def test_avro_round_trip(sample: SampleDay) -> None:
    records = sample.streams[:500]
    reader = fastavro.reader(io.BytesIO(avro_bytes(records)))
    assert reader.codec == "deflate"
    schema = reader.writer_schema
    assert isinstance(schema, dict)
    assert schema["name"] == "di.golden.path.EndContentFact"
    assert list(reader) == records


def test_schema_marks_timestamp_millis() -> None:
    fields = {field["name"]: field["type"] for field in AVRO_SCHEMA["fields"]}
    assert fields["timestamp"] == {"type": "long", "logicalType": "timestamp-millis"}


def test_split_covers_every_record_once() -> None:
    records = [{"n": n} for n in range(10)]
    parts = split(records, 4)
    assert [len(part) for part in parts] == [3, 3, 2, 2]
    assert [r for part in parts for r in part] == records
    assert [len(part) for part in split(records[:2], 4)] == [1, 1, 0, 0]
    with pytest.raises(ValueError, match="at least 1"):
        split(records, 0)


def test_folder_and_part_names() -> None:
    created = datetime(2018, 10, 31, 7, 54, 6, 854146, tzinfo=UTC)
    assert revision_folder("gs://b/", DAY, created, "12dc225803c3") == (
        "gs://b/golden-path-sample-data/di.golden.path.EndContentFactXT2/2018-10-31/"
        "20181031T075406.854146-12dc225803c3"
    )
    assert part_name(1, 4) == "part-00001-of-00004.avro"


async def test_publish_sample_day() -> None:
    sample = generate_day(DAY, 1_000, seed=3)
    registry, warehouse, storage = InMemoryRegistry(), InMemoryWarehouse(), InMemoryStorage()
    revision = await publish_sample_day(
        sample, registry=registry, warehouse=warehouse, storage=storage,
        storage_prefix="/data/", files=3,
    )
    folder = revision.uri
    assert re.fullmatch(
        rf"/data/golden-path-sample-data/{re.escape(ENDPOINT)}/2018-10-31/\d{{8}}T\d{{6}}\.\d{{6}}-[0-9a-f]{{12}}",
        folder,
    )
    assert await registry.latest(ENDPOINT, "2018-10-31") == revision
    objects = [info.uri for info in await storage.list(folder)]
    assert objects == [f"{folder}/part-0000{k}-of-00003.avro" for k in range(3)]
    records = [
        r for uri in objects for r in fastavro.reader(io.BytesIO(await storage.read(uri)))
    ]
    assert records == sample.streams
    rows = await warehouse.read_rows(TableSpec.parse(sample.track_entity_spec))
    assert [tuple(row.values()) for row in rows] == sample.track_entities
    assert list(rows[0]) == [column.name for column in TRACK_ENTITY_COLUMNS]
