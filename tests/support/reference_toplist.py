"""The Luigi example's answers computed the plain way, to check the workflow against.

Deliberately shares no code with ``jobs.luigi_top_artists``: it finds the day files
by name, reads them with ``open()``, counts with a dict and ranks with ``sorted()``.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path


def days(first: date, last: date) -> list[date]:
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def day_file(folder: Path, day: date) -> Path:
    return folder / f"streams_{day.year:04d}_{day.month:02d}_{day.day:02d}_faked.tsv"


def artist_counts(texts: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in texts:
        for line in text.splitlines():
            if line:
                artist = line.split("\t")[1]
                counts[artist] = counts.get(artist, 0) + 1
    return counts


def artist_counts_in(folder: Path, first: date, last: date) -> dict[str, int]:
    return artist_counts([day_file(folder, day).read_text() for day in days(first, last)])


Row = tuple[date, date, str, int]


def top10_rows(counts: dict[str, int], first: date, last: date) -> list[Row]:
    """What the top10 table holds: Luigi's date_b (the day after the last) as date_to."""
    # Best first; a tie goes to the artist that sorts last, as in the Luigi example.
    ranked = sorted(counts.items(), key=lambda item: (item[1], item[0]), reverse=True)[:10]
    return [(first, last + timedelta(days=1), artist, streams) for artist, streams in ranked]
