"""Local jobs as real processes: they die with the process that started them, stop as
a whole group, and are stopped by a process taking their run over.

The job is tests/support/job_child.py (a heartbeat every 50 ms, and a grandchild tied to
nothing); the charon process that starts it, when it must be another process, is
tests/support/job_parent.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import anyio
import anyio.abc
import pytest

from jobs.runners import processes
from jobs.runners.beam import LOG_DRAIN_SECONDS, MAX_JOB_LINE, SubprocessJobRunner
from jobs.runners.die_with_parent import PARENT_GONE
from jobs.runners.processes import LocalJob
from orchestrator.errors import JobFailed, JobLost
from orchestrator.log import job_output_to
from tests.contracts.job_runner import Fate, JobRunnerContract, Jobs

pytestmark = pytest.mark.timeout(30)

ROOT = Path(__file__).parents[2]
CHILD = ROOT / "tests" / "support" / "job_child.py"
WRAPPER = ROOT / "jobs" / "runners" / "die_with_parent.py"


SCRIPTS = {
    Fate.SUCCEEDS: "print('done')",
    Fate.FAILS: "raise SystemExit(3)",
    Fate.LASTS: "import time; time.sleep(60)",
}


class TestSubprocessJobRunner(JobRunnerContract):
    @pytest.fixture
    def jobs(self) -> Jobs:
        # A pid above Linux's largest: no process here has it.
        unknown = LocalJob(socket.gethostname(), 2**22 + 1, 1)
        return Jobs(SubprocessJobRunner(), lambda fate: [sys.executable, "-c", SCRIPTS[fate]],
                    unknown_id=str(unknown))


@dataclass(frozen=True)
class Job:
    """What tests/support/job_child.py wrote of itself."""

    pid: int
    group: int
    grandchild: int
    heartbeat: Path

    @property
    def processes(self) -> tuple[int, int]:
        return self.pid, self.grandchild


def running(pid: int) -> bool:
    """Whether the process is there and has not ended (a zombie has: only its exit
    status is left, for a parent that may be stopped or may never ask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return "\nState:\tZ" not in status and "\nState:\tX" not in status


async def until(check: Callable[[], bool], seconds: float) -> None:
    with anyio.fail_after(seconds):
        while not check():
            await anyio.sleep(0.01)


async def started_job(directory: Path) -> Job:
    pids = directory / "pids"
    await until(pids.exists, 5)
    pid, group, grandchild = (int(word) for word in pids.read_text().split())
    return Job(pid, group, grandchild, directory / "heartbeat")


async def assert_heartbeats_stopped(job: Job) -> None:
    """No heartbeat for five of its periods."""
    size = job.heartbeat.stat().st_size
    await anyio.sleep(0.25)
    assert job.heartbeat.stat().st_size == size


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Path]:
    """The job's directory; whatever of the job a failed test left running is killed."""
    yield tmp_path
    if (tmp_path / "pids").exists():
        pid, _, grandchild = (int(word) for word in (tmp_path / "pids").read_text().split())
        for left in (pid, grandchild):
            if running(left):
                os.kill(left, signal.SIGKILL)


@pytest.fixture
async def parent(directory: Path) -> AsyncIterator[anyio.abc.Process]:
    """tests/support/job_parent.py running the job in ``directory``; killed at the end."""
    async with await anyio.open_process(
        [sys.executable, "-m", "tests.support.job_parent", str(directory)], cwd=ROOT, stderr=None
    ) as process:
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGCONT)
                process.kill()


async def job_id_of(parent: anyio.abc.Process) -> str:
    """The first line the parent prints: the id it recorded."""
    assert parent.stdout is not None
    printed = b""
    with anyio.fail_after(10):
        while b"\n" not in printed:
            printed += await parent.stdout.receive()
    return printed.decode().splitlines()[0]


async def test_a_job_and_all_it_started_die_with_the_process_that_started_it(
    parent: anyio.abc.Process, directory: Path
) -> None:
    job_id = await job_id_of(parent)
    job = await started_job(directory)
    named = LocalJob.parse(job_id)
    assert named is not None
    assert named.pid == job.group  # the id names the job's group

    parent.kill()
    # The group leader as well: SIGKILLed with the rest, it may end a moment after them.
    await until(lambda: not any(map(running, (*job.processes, named.pid))), 1)
    await assert_heartbeats_stopped(job)


async def run_job(runner: SubprocessJobRunner, directory: Path, *args: str,
                  ids: list[str]) -> None:
    async def record(job_id: str) -> None:
        ids.append(job_id)

    await runner.run([sys.executable, str(CHILD), str(directory), *args], job_name="test-job",
                     on_started=record)


async def test_cancelling_a_run_stops_the_job_s_whole_group_promptly(directory: Path) -> None:
    ids: list[str] = []
    async with anyio.create_task_group() as group:
        group.start_soon(partial(run_job, SubprocessJobRunner(), directory, ids=ids))
        job = await started_job(directory)
        group.cancel_scope.cancel()
        cancelled_at = time.monotonic()
    assert time.monotonic() - cancelled_at < 2  # SIGTERM did it, well within the grace
    assert ids == [str(LocalJob.parse(ids[0]))]
    await until(lambda: not any(map(running, job.processes)), 1)
    await assert_heartbeats_stopped(job)


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_a_run_cancelled_as_its_job_starts_leaves_no_process(directory: Path) -> None:
    """Cancelled (a lease lost, a shutdown) while the job's process was being started:
    the process, running already, is the run's to stop, not left running untracked with
    its pipe open (a loaded machine's suite once met this: no job id, a pipe transport
    never closed)."""
    ids: list[str] = []
    with anyio.CancelScope() as scope:
        scope.cancel()  # delivered at the first wait: once the process was forked
        await run_job(SubprocessJobRunner(), directory, ids=ids)
    assert len(ids) == 1
    job = LocalJob.parse(ids[0])
    assert job is not None
    await until(lambda: _group_gone(job.pid), 5)


async def test_a_job_that_ignores_sigterm_is_killed_after_the_grace(
    directory: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(processes, "STOP_GRACE_SECONDS", 0.5)
    async with anyio.create_task_group() as group:
        group.start_soon(partial(run_job, SubprocessJobRunner(), directory, "--ignore-sigterm",
                                 ids=[]))
        job = await started_job(directory)
        group.cancel_scope.cancel()
        cancelled_at = time.monotonic()
    assert 0.5 <= time.monotonic() - cancelled_at < 2.5
    await until(lambda: not any(map(running, job.processes)), 1)


async def test_cancel_by_job_id_stops_the_group_from_this_or_another_process(
    directory: Path, parent: anyio.abc.Process
) -> None:
    # From this process: the run fails, its job killed by SIGTERM.
    runner = SubprocessJobRunner()
    ids: list[str] = []
    own = directory / "own"
    own.mkdir()
    with pytest.RaisesGroup(pytest.RaisesExc(JobFailed, match="code -15;")):
        async with anyio.create_task_group() as group:
            group.start_soon(partial(run_job, runner, own, ids=ids))
            job = await started_job(own)
            await until(lambda: bool(ids), 5)  # the job may write before run() records it
            await runner.cancel(ids[0])
    await until(lambda: not any(map(running, job.processes)), 1)

    # From another process on this machine: the parent's job.
    job_id = await job_id_of(parent)
    job = await started_job(directory)
    with anyio.fail_after(5):
        await SubprocessJobRunner().cancel(job_id)
    assert not any(map(running, job.processes))
    with anyio.fail_after(5):
        assert await parent.wait() != 0  # its run() raised JobFailed


async def test_reattaching_stops_the_job_of_a_paused_owner(
    parent: anyio.abc.Process, directory: Path
) -> None:
    job_id = await job_id_of(parent)
    job = await started_job(directory)
    parent.send_signal(signal.SIGSTOP)

    with anyio.fail_after(5), pytest.raises(JobLost, match="orphaned job was stopped"):
        await SubprocessJobRunner().reattach(job_id)
    named = LocalJob.parse(job_id)
    assert named is not None
    assert not any(map(running, (named.pid, *job.processes)))
    await assert_heartbeats_stopped(job)
    with pytest.raises(JobLost, match="not running"):
        await SubprocessJobRunner().reattach(job_id)


async def test_a_pid_reused_by_another_process_is_left_alone() -> None:
    # Its own group leader, as a job is: signalling the group would reach it.
    async with await anyio.open_process(
        [sys.executable, "-c", "import time; time.sleep(30)"], start_new_session=True
    ) as other:
        real = LocalJob.started(other)
        reused = LocalJob(real.host, real.pid, real.start_time + 1)
        runner = SubprocessJobRunner()
        with pytest.raises(JobLost, match="not running"):
            await runner.reattach(str(reused))
        await runner.cancel(str(reused))
        assert running(other.pid)

        # The same process under its own id is stopped: the check above was the one.
        with pytest.raises(JobLost, match="orphaned job was stopped"):
            await runner.reattach(str(real))
        with anyio.fail_after(5):  # gone already; asyncio reaps it in its own time
            assert await other.wait() == -signal.SIGKILL


@pytest.mark.parametrize(
    ("job_id", "why"),
    [
        ("local-4242", "ran as a child of a process that has gone"),  # as ids were
        ("local:4242:1", "ran as a child of a process that has gone"),
        ("local:elsewhere.example:4242:1", "its owner stops it when it wakes"),
    ],
)
async def test_jobs_that_cannot_be_stopped_from_here_are_lost(job_id: str, why: str) -> None:
    with pytest.raises(JobLost, match=why):
        await SubprocessJobRunner().reattach(job_id)


def test_the_wrapper_runs_nothing_once_its_parent_has_gone(tmp_path: Path) -> None:
    # To the wrapper a parent that died is one that is not its parent any more: its
    # orphans get another. So an ended process stands for the parent it expects.
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                           capture_output=True, text=True, check=True)
    marker = tmp_path / "ran"
    job = [sys.executable, "-c", f"open({str(marker)!r}, 'w')"]

    def wrapped(parent: int) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run([sys.executable, "-I", "-S", str(WRAPPER), str(parent), "--", *job],
                              timeout=5, check=False)

    started = time.monotonic()
    assert wrapped(int(ended.stdout)).returncode == PARENT_GONE
    assert time.monotonic() - started < 2  # a Python start-up, not a job run
    assert not marker.exists()

    assert wrapped(os.getpid()).returncode == 0
    assert marker.exists()


@pytest.mark.parametrize(
    ("code", "exit_code"),
    [("raise SystemExit(3)", 3), ("import os; os.kill(os.getpid(), 9)", -9)],
)
async def test_the_job_s_exit_code_comes_through_the_wrapper(code: str, exit_code: int) -> None:
    with pytest.raises(JobFailed, match=f"code {exit_code};"):
        await SubprocessJobRunner().run([sys.executable, "-c", code], job_name="test-job",
                                        on_started=_ignore)


async def _ignore(job_id: str) -> None:
    pass


async def test_the_job_s_output_goes_to_its_run_s_log_line_by_line() -> None:
    seen: list[str] = []

    async def sink(line: str) -> None:
        seen.append(line)

    script = "import sys; print('one'); print('<two>', file=sys.stderr, flush=True); print('3')"
    with job_output_to(sink):
        await SubprocessJobRunner().run([sys.executable, "-c", script], job_name="j",
                                        on_started=_ignore)
    assert sorted(seen) == ["3", "<two>", "one"]  # stdout and stderr, each line once



async def test_a_progress_bar_s_updates_are_lines_and_a_line_too_long_is_cut() -> None:
    """A job writing 8 MB without a line break was held whole, and split again at each
    chunk (its time the square of its length, on the event loop): it reaches the log
    cut. A carriage return, as a progress bar writes, ends a line as a terminal shows."""
    seen: list[str] = []

    async def sink(line: str) -> None:
        seen.append(line)

    script = ("import sys; w = sys.stdout.write; w('step 1%\\rstep 2%\\r');"
              " w('x' * 8_000_000); w('\\r\\ndone\\n')")
    with job_output_to(sink):
        await SubprocessJobRunner().run([sys.executable, "-c", script], job_name="j",
                                        on_started=_ignore)
    cut = "x" * MAX_JOB_LINE + f" [cut at {MAX_JOB_LINE} characters]"
    assert seen == ["step 1%", "step 2%", cut, "done"]


@pytest.mark.parametrize("ignoring_sigterm", [False, True], ids=["ending", "ignoring SIGTERM"])
async def test_a_job_is_done_when_it_exits_and_what_it_left_running_is_stopped(
    ignoring_sigterm: bool, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process the job started and left running, its output pipe still open: the run
    waited on it, however long it lived (the job long done), with its lease kept; then
    it was left running, free to write where the job wrote after the output was
    published. Now it gets SIGTERM, and SIGKILL after the grace."""
    monkeypatch.setattr(processes, "STOP_GRACE_SECONDS", 0.5)
    seen: list[str] = []

    async def sink(line: str) -> None:
        seen.append(line)

    ignore = "import signal; signal.signal(signal.SIGTERM, signal.SIG_IGN); " * ignoring_sigterm
    script = ("import subprocess, sys; child = subprocess.Popen([sys.executable, '-c',"
              f" {ignore + 'import time; time.sleep(60)'!r}]); print(child.pid, flush=True)")
    with job_output_to(sink), anyio.fail_after(LOG_DRAIN_SECONDS + 10):
        await SubprocessJobRunner().run([sys.executable, "-c", script], job_name="j",
                                        on_started=_ignore)
    [child] = seen
    try:
        assert not running(int(child))
    finally:
        if running(int(child)):
            os.kill(int(child), signal.SIGKILL)
