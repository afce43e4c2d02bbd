"""Help as plain text, and Luigi's --<Family>-<param> flags parsed before anything runs."""

from __future__ import annotations

import pytest

from jobs.luigi_top_artists import Top10Artists
from orchestrator.cli.task_options import family_flag, parse_overrides, plain_text
from orchestrator.errors import UsageError
from orchestrator.intervals import parse_interval


@pytest.mark.parametrize(
    ("markup", "plain"),
    [
        ("``date_from date_to``", "date_from date_to"),
        ("see :class:`~luigi.date_interval.Custom`", "see Custom"),
        ("see :py:meth:`Task.run`", "see Task.run"),
        (":ref:`the guide <guide-anchor>`", "the guide"),
        ("`Luigi <https://luigi.readthedocs.io>`_ docs", "Luigi docs"),
        ("**strong** and *emphasis*", "strong and emphasis"),
        ("Example::", "Example:"),
        ("files part-* and 2*3", "files part-* and 2*3"),
    ],
)
def test_restructured_text_markup_is_stripped(markup: str, plain: str) -> None:
    assert plain_text(markup) == plain


def test_family_flags_are_parsed_and_the_rest_left() -> None:
    overrides, rest = parse_overrides(
        ["--Top10Artists-use-spark", "--date-interval", "2012-06",
         "--AggregateArtists-date-interval=2012-W05", "--Streams-date", "2012-6-5"]
    )
    assert rest == ["--date-interval", "2012-06"]
    assert overrides["Top10Artists"] == {"use_spark": True}
    assert overrides["AggregateArtists"] == {"date_interval": parse_interval("2012-W05")}
    assert str(overrides["Streams"]["date"]) == "2012-06-05"
    assert family_flag(Top10Artists.task_family, "use_spark") == "--Top10Artists-use-spark"


def test_a_bad_family_value_names_its_flag() -> None:
    with pytest.raises(UsageError, match=r"^--Top10Artists-date-interval: invalid date interval"):
        parse_overrides(["--Top10Artists-date-interval", "2012-06-05-2012-06-05"])
