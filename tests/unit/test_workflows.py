from datetime import date

import pytest

from orchestrator.errors import ConfigError
from orchestrator.tasks.roots import check_loadable, root_task
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
        ({**BASE, "lookback_days": 10**9},
         r"^workflows\[0\]\.lookback_days = 1000000000: must be at most 36500$"),
        ({**BASE, "lookback_days": -1}, r"lookback_days = -1: must be at least 0"),
        ({**BASE, "max_attempts": 0}, r"max_attempts = 0: must be at least 1"),
        ({**BASE, "retry_delay_seconds": 10**6}, r"retry_delay_seconds = 1000000: must be at most"),
        ({**BASE, "period": "fortnight"}, r"period = 'fortnight': expected one of day, week"),
        ({**BASE, "module": "../etc"}, r"module = '\.\./etc': expected a dotted Python module"),
        ({**BASE, "module": ""}, r"module = '': expected a dotted Python module"),
        ({**BASE, "task": "Top Artists"}, r"task = 'Top Artists': expected a task class name"),
        ({**BASE, "name": "top\x00artists"}, r"name = .*control characters"),
        ({**BASE, "partition_param": "top_n"}, r"params\.top_n: the partition_param takes"),
    ],
)
def test_bad_workflows_are_refused(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_workflows([entry])


def test_names_must_be_unique() -> None:
    with pytest.raises(ConfigError, match="unique"):
        parse_workflows([BASE, BASE])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"module": "jobs.top_artists", "task": "TopArtistsJob", "partition_param": "top_n"},
         r"partition_param = 'top_n': not a date parameter of TopArtistsJob \(it has: date\)"),
        ({**BASE, "partition_param": "day"}, r"partition_param = 'day': not a date parameter"),
        ({**BASE, "task": "TopArtistJob"}, r"no task .*; did you mean TopArtistsJob\?"),
    ],
)
def test_workflows_whose_task_cannot_be_built_are_refused_at_start(
    entry: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=r"^workflows\[0\] \(.*\): " + message):
        check_loadable(parse_workflows([entry]), TODAY)


def test_errors_name_the_file_the_workflows_came_from() -> None:
    with pytest.raises(ConfigError, match=r"max_attempts = 0: must be at least 1 \(in x\.toml\)$"):
        parse_workflows([{**BASE, "max_attempts": 0}], "in x.toml")
