"""The daemon's status page: what /status says, every value escaped."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from orchestrator.daemon.status_page import render

STATUS: dict[str, Any] = {
    "workflows": [{"name": "top_artists", "module": "jobs.top_artists", "task": "TopArtistsJob",
                   "policy": "rerun", "max_concurrent_runs": 2, "running": 1}],
    "partitions": [
        {"workflow": "top_artists", "partition": "2018-10-30", "evaluating": False,
         "evaluated_at": "2018-10-31T06:00:00+00:00", "error": None, "state": "missing",
         "waiting_for": ["LookupDaily(endpoint=plays, partition=2018-10-30): plays"]},
        {"workflow": "top_artists", "partition": "2018-10-31", "evaluating": True,
         "evaluated_at": None, "error": None},
    ],
    "runs": [{"id": "r1", "task": "TopArtistsJob(date=2018-10-29)", "partition": "2018-10-29",
              "state": "failed", "attempt": 2, "fingerprint": "fp", "job_id": None,
              "updated": "2018-10-31T06:00:00+00:00",
              "error": "<script>alert('job said so')</script>"}],
}


class Cells(HTMLParser):
    """The text of each table row, and every tag met."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self.tags: list[str] = []
        self.in_cell = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")
            self.in_cell = True

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th"):
            self.in_cell = False

    def handle_data(self, data: str) -> None:
        if self.in_cell:
            self.rows[-1][-1] += data


def parse(page: str) -> Cells:
    cells = Cells()
    cells.feed(page)
    return cells


def test_the_page_shows_workflows_partitions_and_runs() -> None:
    rows = parse(render(STATUS)).rows
    assert ["top_artists", "jobs.top_artists.TopArtistsJob", "rerun", "1 of 2"] in rows
    assert ["top_artists", "2018-10-30", "missing",
            "LookupDaily(endpoint=plays, partition=2018-10-30): plays",
            "2018-10-31T06:00:00+00:00"] in rows
    assert ["top_artists", "2018-10-31", "evaluating", "", "not yet"] in rows
    assert ["TopArtistsJob(date=2018-10-29)", "2018-10-29", "failed", "2",
            "2018-10-31T06:00:00+00:00", "", "<script>alert('job said so')</script>"] in rows


def test_what_it_shows_is_text_never_markup() -> None:
    page = render(STATUS)
    assert "<script>" not in page
    assert "script" not in parse(page).tags


def test_empty_sections_say_so_and_the_page_refreshes() -> None:
    page = render({"workflows": [], "partitions": [], "runs": []}, refresh_seconds=7)
    assert parse(page).rows.count(["none"]) == 3
    assert '<meta http-equiv="refresh" content="7">' in page
