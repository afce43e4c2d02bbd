"""Hostile values on every command: exit 2, one ``error:`` line, no traceback, nothing done.

Every value is refused before a store is opened, so the home the command would have
written to is never even created.
"""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.conftest import Cli

pytestmark = pytest.mark.slow

TOP = ("--module", "jobs.top_artists", "TopArtistsJob")
DAY = ("--date", "2018-10-31")
TASK = (*TOP, *DAY, "--top-n", "5")
WORKFLOW = '[[workflows]]\nmodule = "jobs.top_artists"\ntask = "TopArtistsJob"\n'

# (arguments, extra environment, what the error line says)
CASES: list[tuple[tuple[str, ...], dict[str, str], str]] = [
    (("run", *TOP, *DAY, "--top-n", "-5"), {}, "--top-n = -5: must be at least 1"),
    (("run", *TOP, *DAY, "--top-n", "0"), {}, "--top-n = 0: must be at least 1"),
    (("run", *TOP, *DAY, "--top-n", "9" * 5000), {}, "is not an integer"),
    (("run", *TOP, *DAY, "--top-n", "99999999999"), {}, "must be at most"),
    (("run", *TASK, "--workers", "0"), {}, "argument --workers: expected a positive"),
    (("run", *TASK, "--workers", "-1"), {}, "argument --workers"),
    (("run", *TOP, "--date", "9999-12-31", "--top-n", "5"), {}, "invalid date"),
    (("run", "--module", "../etc", "TopArtistsJob"), {}, "invalid module '../etc'"),
    (("run", "--module", "os; rm", "TopArtistsJob"), {}, "invalid module 'os; rm'"),
    (("run", "--module", "a..b", "TopArtistsJob"), {}, "invalid module 'a..b'"),
    (("run", "--module", "/srv/x", "TopArtistsJob"), {}, "invalid module '/srv/x'"),
    (("run", "--module", "jobs.top_artist", "TopArtistsJob"), {},
     "no module 'jobs.top_artist'; did you mean jobs.top_artists"),
    (("run", "--module", "jobs.top_artists", "TopArtistJob", *DAY), {},
     "no task 'TopArtistJob' in jobs.top_artists; did you mean TopArtistsJob?"),
    (("run", *TASK, "--colour", "red"), {}, "TopArtistsJob does not take --colour red"),
    (("run", "TopArtistsJob"), {}, "the following arguments are required: --module"),
    (("show", *TASK, "--limit", "0"), {}, "argument --limit"),
    (("show", *TASK, "--limit", "-3"), {}, "argument --limit"),
    (("explain", *TOP, *DAY, "--top-n", "-1"), {}, "--top-n = -1"),
    (("cancel", *TOP, "--date", "2018-02-30", "--top-n", "5"), {}, "invalid date"),
    (("registry", "ls", "../etc", "2018-10-31"), {}, "invalid endpoint"),
    (("registry", "ls", "plays", "2018/10/31"), {}, "invalid partition"),
    (("registry", "publish", "bad endpoint", "2018-10-31", "/data/x"), {}, "invalid endpoint"),
    (("registry", "publish", "plays", "2018-10-31", "relative/x"), {}, "invalid URI"),
    (("registry", "publish", "plays", "2018-10-31", "/data/x", "--idempotency-key", "a b"), {},
     "invalid idempotency key"),
    (("registry", "serve", "--port", "-1"), {}, "argument --port: expected a port"),
    (("registry", "serve", "--port", "70000"), {}, "argument --port"),
    (("registry", "serve", "--host", "a host"), {}, "argument --host"),
    (("sample-data", "--date", "2018-10-31", "--events", "0"), {}, "argument --events"),
    (("sample-data", "--date", "2018-10-31", "--events", "100000000000"), {},
     "argument --events: expected a whole number from 1 to 10,000,000"),
    (("dev", "--events", "10000001"), {}, "argument --events: expected a whole number from 1"),
    (("sample-data", "--date", "2018-02-30"), {}, "argument --date"),
    (("sample-data", "--streams", "--date-interval", "9999-12-31"), {}, "--date-interval"),
    (("sample-data", "--streams"), {}, "--streams needs --date-interval"),
    (("sample-data",), {}, "sample-data needs --date"),
    (("sample-data", "--date", "2018-10-31", "--seed", "9" * 30), {}, "argument --seed"),
    (("daemon", "--port", "70000"), {}, "argument --port"),
    (("daemon", "--port", "http"), {}, "argument --port"),
    (("janitor", "--dry-run=yes"), {}, "--dry-run"),
    (("janitor", "now"), {}, "unrecognized arguments: now"),
    (("nonsense",), {}, "invalid choice: 'nonsense'"),
    (("daemon",), {"CHARON_DAEMON__POLL_INTERVAL_MS": "0"},
     "daemon.poll_interval_ms = 0: must be at least 1 (CHARON_DAEMON__POLL_INTERVAL_MS)"),
    (("daemon",), {"CHARON_DAEMON__PORT": "99999999999999999999"},
     "daemon.port = 99999999999999999999: must be at most 65535"),
    (("janitor",), {"CHARON_DAEMON__PORT": "9" * 5000}, "daemon.port = '999"),
    (("janitor",), {"CHARON_DAEMON__MAX_BODY_BYTES": "-1"}, "daemon.max_body_bytes = -1"),
    (("daemon",), {"CHARON_DAEMON__REPLICA_ID": "pod 1; DROP TABLE replicas"},
     "daemon.replica_id = 'pod 1; DROP TABLE replicas': expected a replica id"),
    (("daemon",), {"CHARON_DAEMON__REPLICA_TIMEOUT_SECONDS": "0"},
     "daemon.replica_timeout_seconds = 0: must be at least 1"),
    (("registry", "ls", "plays", "2018-10-31"), {"CHARON_REGISTRY__KIND": "http",
                                                 "CHARON_REGISTRY__URL": "ftp://x"},
     "registry.url = 'ftp://x': expected an http:// or https:// URL"),
    (("janitor",), {"CHARON_CONFIG": "config/huge-lookback.toml"},
     "workflows[0].lookback_days = 1000000000: must be at most 36500"),
    (("daemon",), {"CHARON_CONFIG": "config/date-less.toml"},
     "partition_param = 'top_n': not a date parameter of TopArtistsJob"),
    (("janitor",), {"CHARON_CONFIG": "config/deep.toml"}, "is not valid TOML: nested too deeply"),
    (("janitor",), {"CHARON_CONFIG": "/dev/urandom"},
     "CHARON_CONFIG='/dev/urandom' is over 1,048,576 bytes: not a configuration file"),
]
CONFIG_FILES = {
    "huge-lookback.toml": f"{WORKFLOW}params = {{ top_n = 5 }}\nlookback_days = 1000000000\n",
    "date-less.toml": f'{WORKFLOW}partition_param = "top_n"\n',
    "deep.toml": f"x = {'[' * 5000}{']' * 5000}\n",
}


def refused(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line of a refused command."""
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ")
    return line


@pytest.mark.parametrize(("argv", "environ", "message"), CASES,
                         ids=[" ".join(case[0])[:60] + str(list(case[1])) for case in CASES])
def test_hostile_values_are_refused_before_anything_runs(
    tmp_path: Path, argv: tuple[str, ...], environ: dict[str, str], message: str
) -> None:
    config = tmp_path / "config"
    config.mkdir()
    for name, text in CONFIG_FILES.items():
        (config / name).write_text(text)
    extra = {key: str(tmp_path / value) if key == "CHARON_CONFIG" else value
             for key, value in environ.items()}
    charon = Cli(tmp_path / "home", extra)
    assert message in refused(charon(*argv, timeout=60))
    assert not charon.home.exists()  # no store was opened, nothing was recorded


def test_a_port_in_use_is_one_line_and_exit_2(charon: Cli) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for argv in (("daemon", "--port", port), ("registry", "serve", "--port", port)):
            result = charon(*argv, timeout=60)
            assert result.returncode == 2, result.stderr
            assert "Traceback" not in result.stderr
            [error] = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert error.startswith(f"error: cannot listen on 127.0.0.1:{port}: "), error
            assert "address already in use" in error
    assert charon("registry", "ls", "plays", "2018-10-31").returncode == 1  # nothing published
