from datetime import date

import pytest

from orchestrator.errors import ConfigError
from orchestrator.tasks.roots import root_task
from orchestrator.workflows import parse_workflows

TODAY = date(2018, 10, 31)
BASE = {"module": "jobs.top_artists", "task": "TopArtistsJob", "params": {"top_n": 10}}


def test_the_window_is_the_lookback_up_to_today_by_default() -> None:
    [workflow] = parse_workflows([{**BASE, "lookback_days": 2}])
    assert workflow.name == "TopArtistsJob"
    assert workflow.days(TODAY) == [date(2018, 10, 29), date(2018, 10, 30), TODAY]
    assert root_task(workflow, TODAY).task_id.startswith("TopArtistsJob(date=2018-10-31, top_n=10")


def test_start_and_end_give_a_closed_range() -> None:
    [workflow] = parse_workflows([{**BASE, "start": "2018-01-30", "end": "2018-02-01"}])
    assert workflow.days(TODAY) == [date(2018, 1, 30), date(2018, 1, 31), date(2018, 2, 1)]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"task": "T"}, "module required"),
        ({**BASE, "colour": "red"}, "unknown key 'colour'"),
        ({**BASE, "lookback_days": "7"}, "expected int"),
        ({**BASE, "lookback_days": True}, "expected int"),
        ({**BASE, "policy": "sometimes"}, "policy"),
        ({**BASE, "start": "2018-13-01"}, "start"),
        ({**BASE, "start": "2018-02-01", "end": "2018-01-01"}, "before start"),
        ({**BASE, "max_concurrent_runs": 0}, "max_concurrent_runs"),
        ({**BASE, "params": {"top_n": [1]}}, "params.top_n"),
    ],
)
def test_bad_workflows_are_refused(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_workflows([entry])


def test_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="unique"):
        parse_workflows([BASE, BASE])
