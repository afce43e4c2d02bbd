"""`charon dev` from a fresh home: the stack comes up, the sample day runs, the page
answers, and Ctrl-C leaves no process behind. Also: `registry serve` sharing the
clients' config (`registry.kind = "http"`) through `registry_service.backend`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.acceptance.conftest import CHARON, Cli, first_line, start, wait_until

pytestmark = pytest.mark.slow

DAY = "2018-10-31"


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, process group) of a live process; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name, in parentheses, may hold spaces: the fields follow its end.
    fields = text[text.rindex(")") + 2:].split()
    return None if fields[0] == "Z" else (int(fields[1]), int(fields[2]))


def _pids() -> Iterator[int]:
    return (int(name) for name in os.listdir("/proc") if name.isdigit())


def descendants(root: int) -> set[int]:
    """Every live process below ``root``, wherever its group or session."""
    parents = {pid: stat[0] for pid in _pids() if (stat := _stat(pid)) is not None}
    found: set[int] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def in_group(group: int) -> set[int]:
    return {pid for pid in _pids() if (stat := _stat(pid)) is not None and stat[1] == group}


def get(url: str) -> tuple[int, str, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  # loopback
        return response.status, response.headers.get("Content-Type", ""), response.read().decode()


def read_lines(process: subprocess.Popen[str], until: str, log: Path) -> list[str]:
    lines: list[str] = []
    while not (lines and lines[-1].startswith(until)):
        line = first_line(process, timeout=120)
        assert line, f"no line {until!r} after {lines}\n{log.read_text()[-4000:]}"
        lines.append(line.rstrip("\n"))
    return lines


def test_charon_dev_runs_the_sample_day_serves_the_page_and_stops_clean(
    charon: Cli, tmp_path: Path
) -> None:
    log = tmp_path / "dev.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [CHARON, "dev", "--date", DAY, "--events", "3000",
             "--port-registry", "0", "--port-daemon", "0"],
            env=charon.env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=stderr, text=True,
            start_new_session=True,  # its own group, to find whatever it leaves behind
        )
    seen: set[int] = set()
    try:
        lines = read_lines(process, "watching every day with inputs", log)
        by_start = {line.split(" on ")[0]: line.split(" on ")[-1] for line in lines
                    if " on http://" in line}
        registry, daemon, page = (by_start[k] for k in ("registry serving", "daemon listening",
                                                        "UI"))
        assert page == f"{daemon}/"
        assert get(f"{registry}/healthz")[0] == 200

        def succeeded() -> bool:
            seen.update(descendants(process.pid))
            status = json.loads(get(f"{daemon}/status")[2])
            return [(p["partition"], p.get("state")) for p in status["partitions"]] == [
                (DAY, "complete")] and [r["state"] for r in status["runs"]] == ["succeeded"]

        wait_until(succeeded, 180, "the sample day's run", log)
        code, content_type, body = get(page)
        assert (code, content_type.split(";")[0]) == (200, "text/html")
        assert DAY in body
        published = json.loads(get(
            f"{registry}/v1/endpoints/di.golden.path.charon.top_artists/partitions/{DAY}/latest"
        )[2])
        assert Path(published["uri"], "part").read_text().count("\n") == 10  # top_n = 10
    finally:
        process.send_signal(signal.SIGINT)
        try:
            assert process.wait(timeout=60) == 0, log.read_text()[-4000:]
        finally:
            if process.poll() is None:
                process.kill()
            assert process.stdout is not None
            process.stdout.close()
    assert seen, "the run's job was never seen as a child process"
    left = {pid for pid in seen | in_group(process.pid) if _stat(pid) is not None}
    assert not left, f"processes left behind: {left}"


def test_registry_serve_and_its_clients_share_one_config(charon: Cli, tmp_path: Path) -> None:
    config = tmp_path / "shared.toml"
    config.write_text('[registry]\nkind = "http"\nurl = "http://127.0.0.1:1"\n'
                      '[registry_service]\nbackend = "sqlite"\nport = 0\n')
    shared = {**charon.env, "CHARON_CONFIG": str(config)}
    server, url = start([CHARON, "registry", "serve"], shared, tmp_path / "serve.log",
                        "registry serving on ")
    try:
        client = Cli(charon.home, {"CHARON_CONFIG": str(config), "CHARON_REGISTRY__URL": url})
        published = client("registry", "publish", "plays", DAY, "/data/plays/1")
        assert published.returncode == 0, published.stderr
        assert "/data/plays/1" in client("registry", "ls", "plays", DAY).stdout
        assert (charon.home / "registry.sqlite").exists()  # the service's own file
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert server.stdout is not None
        server.stdout.close()


def test_registry_serve_refuses_a_registry_over_http_and_says_what_to_set(
    charon: Cli
) -> None:
    result = Cli(charon.home, {"CHARON_REGISTRY__KIND": "http",
                               "CHARON_REGISTRY__URL": "http://127.0.0.1:1"})(
        "registry", "serve", "--port", "0", timeout=60)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the registry service serves a SQLite or PostgreSQL")
    assert "registry_service.backend" in line
    assert not charon.home.exists()


def test_registry_serve_backend_flag_serves_the_embedded_registry(
    charon: Cli, tmp_path: Path
) -> None:
    client = {"CHARON_REGISTRY__KIND": "http", "CHARON_REGISTRY__URL": "http://127.0.0.1:1"}
    server, url = start([CHARON, "registry", "serve", "--port", "0", "--backend", "sqlite"],
                        Cli(charon.home, client).env, tmp_path / "serve.log",
                        "registry serving on ")
    try:
        assert get(f"{url}/healthz")[0] == 200
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
        assert server.stdout is not None
        server.stdout.close()
