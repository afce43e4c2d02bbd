"""Dataflow job tracking: launch under a deterministic name, follow the job by its id.

Beam's DataflowRunner submits a job and, with ``--blocking``, waits for it; but the job
runs in Google Cloud and outlives the process that submitted it. So charon names each
job after its run (one name per task, partition and fingerprint), records the job's id
before waiting, and follows the job through the Dataflow REST API (v1b3), not through
the submitter: a restarted process reattaches by the stored id, and a launch that finds
a live job of its name attaches to it instead of submitting a second one.
"""

from __future__ import annotations

import collections
import functools
import re
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import anyio
import anyio.abc

from jobs.runners.base import DATAFLOW_JOB, dataflow_console_url
from jobs.runners.beam import LOG_TAIL, exit_code, log_tail
from jobs.runners.processes import close_process, start_process, stop_process
from orchestrator.config import Settings
from orchestrator.errors import AdapterError, JobFailed, JobLost, UsageError
from orchestrator.log import get_logger
from orchestrator.stores.drivers.gcp import (
    RETRY_STATUSES,
    GoogleApi,
    HttpStatusError,
    HttpUnavailable,
)
from orchestrator.tasks.commands import JOB_NAME_FLAG

DEFAULT_ROOT = "https://dataflow.googleapis.com"
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
DONE = "JOB_STATE_DONE"
CANCELLED = "JOB_STATE_CANCELLED"
# Terminal states short of success: the job will write nothing more. DRAINED stopped
# reading input early; UPDATED was replaced by another job.
FAILED_STATES = frozenset({"JOB_STATE_FAILED", CANCELLED, "JOB_STATE_DRAINED",
                           "JOB_STATE_UPDATED"})
TERMINAL_STATES = FAILED_STATES | {DONE}
# What Beam's apiclient logs once the service accepted the job
# (apache_beam/runners/dataflow/internal/apiclient.py, submit_job_description).
CREATED_LINE = re.compile(r"Created job with id: \[([^\]\s]+)\]")
# A blocking submitter notices the end of its job on its own next poll.
_SUBMITTER_GRACE_SECONDS = 30.0

Job = dict[str, Any]


class DataflowError(AdapterError):
    """The Dataflow API refused a request, or could not be reached after retries."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class JobRef:
    """A job's full name: what is recorded as the run's job id, enough to find it again."""

    project: str
    region: str
    id: str

    def __str__(self) -> str:
        return f"projects/{self.project}/locations/{self.region}/jobs/{self.id}"

    @property
    def console_url(self) -> str:
        return dataflow_console_url(self.project, self.region, self.id)

    @classmethod
    def parse(cls, text: str, *, project: str, region: str) -> JobRef:
        """A full name, or a bare id in the configured project and region."""
        if match := DATAFLOW_JOB.fullmatch(text):
            return cls(match[1], match[2], match[3])
        return cls(project, region, text)


class DataflowApi:
    """The few v1b3 calls charon makes: jobs.list by name, jobs.get, jobs.update."""

    def __init__(self, google: GoogleApi, root: str) -> None:
        self._google = google
        self._root = root.rstrip("/")

    def _jobs_url(self, project: str, region: str) -> str:
        return (f"{self._root}/v1b3/projects/{quote(project, safe='')}"
                f"/locations/{quote(region, safe='')}/jobs")

    def _job_url(self, ref: JobRef) -> str:
        return f"{self._jobs_url(ref.project, ref.region)}/{quote(ref.id, safe='')}"

    async def jobs_named(self, project: str, region: str, name: str) -> list[Job]:
        """Every job of that name in the region, any state, following the pages."""
        found: list[Job] = []
        token = ""
        while True:
            params: dict[str, str | int] = {"name": name, "filter": "ALL"}
            if token:
                params["pageToken"] = token
            body = await self._call("GET", self._jobs_url(project, region), params=params)
            # The name filter is the service's; checking again costs nothing.
            found.extend(job for job in body.get("jobs", []) if job.get("name") == name)
            token = str(body.get("nextPageToken", ""))
            if not token:
                return found

    async def get(self, ref: JobRef) -> Job | None:
        """The job, or None when the service does not know it."""
        job: Job | None = await self._call("GET", self._job_url(ref), missing_ok=True)
        return job

    async def request_state(self, ref: JobRef, state: str) -> None:
        await self._call("PUT", self._job_url(ref), json_body={"requestedState": state})

    async def _call(self, method: str, url: str, *, params: dict[str, str | int] | None = None,
                    json_body: object | None = None, missing_ok: bool = False) -> Any:
        try:
            response = await self._google.call(
                method, url, params=params, json_body=json_body,
                ok=frozenset({404}) if missing_ok else frozenset(),
            )
        except HttpStatusError as exc:
            raise DataflowError(f"Dataflow API: {exc}",
                                transient=exc.status in RETRY_STATUSES) from exc
        except HttpUnavailable as exc:
            raise DataflowError(f"Dataflow API unreachable: {exc}", transient=True) from exc
        # An unreadable answer is a proxy's or a glitch's: the next poll may read one.
        return None if response.status == 404 else response.json(
            functools.partial(DataflowError, transient=True))


@dataclass
class _Submission:
    """What the submitting process has told so far: the job's id, its exit code."""

    job_id: str | None = None
    returncode: int | None = None
    settled: anyio.Event = field(default_factory=anyio.Event)
    """Set once either is known."""

    def found(self, job_id: str) -> None:
        if self.job_id is None:
            self.job_id = job_id
            self.settled.set()


class DataflowJobRunner:
    """A JobRunner for ``beam.runner = "DataflowRunner"``, following jobs by the REST API."""

    finds_jobs_by_name = True

    def __init__(self, api: DataflowApi, *, poll_seconds: float, project: str = "",
                 region: str = "") -> None:
        self._api = api
        self._poll = poll_seconds
        self._project = project
        self._region = region
        self._log = get_logger("charon.job")

    @classmethod
    def from_settings(cls, settings: Settings, session: aiohttp.ClientSession) -> DataflowJobRunner:
        root = settings.dataflow.api_root.rstrip("/") or DEFAULT_ROOT
        # A plain-http root is a local stand-in: no OAuth token goes out in clear text.
        google = GoogleApi(session, emulated=root.startswith("http://"), scopes=SCOPES)
        return cls(DataflowApi(google, root),
                   poll_seconds=settings.dataflow.poll_interval_ms / 1000,
                   project=settings.beam.project, region=settings.beam.region)

    async def run(
        self, argv: Sequence[str], *, job_name: str,
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        project, region = self._location(argv)
        existing = await self._api.jobs_named(project, region, job_name)
        live = [job for job in existing if job.get("currentState") not in TERMINAL_STATES]
        # Stopped while it waits (its lease lost, or a shutdown handing the run over), it
        # leaves the job running in the cloud: the run's next owner reattaches to it by
        # its recorded id. A run that ended (superseded, cancelled) has its job cancelled
        # by the engine, through cancel().
        if live:
            # Its submitter died before the id was recorded: Dataflow runs one active
            # job per name, and this one is the run's.
            ref = JobRef(project, region, str(live[0]["id"]))
            self._log.warning("attaching to a live job of the same name",
                              job_name=job_name, job_id=str(ref))
            await on_started(str(ref))
            await self._follow(ref)
            return
        await self._submit(with_job_name(argv, job_name), JobRef(project, region, ""),
                           job_name, [str(job.get("id")) for job in existing], on_started)

    async def _submit(
        self, command: list[str], where: JobRef, name: str, known: Iterable[str],
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        self._log.info("job starting", job_name=name, command=" ".join(command))
        process = await start_process(command)
        try:
            await self._launch(process, where, name, known, on_started)
        finally:
            # The submitter only; the job runs on in the cloud.
            await close_process(process)

    async def _launch(
        self, process: anyio.abc.Process, where: JobRef, name: str, known: Iterable[str],
        on_started: Callable[[str], Awaitable[None]],
    ) -> None:
        tail: collections.deque[str] = collections.deque(maxlen=LOG_TAIL)
        submission = _Submission()
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._watch_submitter, process, tail, submission)
                group.start_soon(self._look_up_new_job, where, name, set(known), submission)
                await submission.settled.wait()
                if submission.job_id is None:
                    submission.found(await self._after_early_exit(where, name, set(known),
                                                                  submission, tail))
                assert submission.job_id is not None  # found() or raised just above
                ref = JobRef(where.project, where.region, submission.job_id)
                self._log.info("job submitted", job_id=str(ref), console=ref.console_url)
                await on_started(str(ref))
                await self._follow(ref)
                await self._let_submitter_exit(process)
        except BaseExceptionGroup as errors:
            # The helpers end quietly, so the one error is the job's own: raise it as
            # itself, for the engine to record its message.
            if len(errors.exceptions) == 1:
                raise errors.exceptions[0] from None
            raise

    async def _watch_submitter(self, process: anyio.abc.Process,
                               tail: collections.deque[str], submission: _Submission) -> None:
        def scan(line: str) -> None:
            if match := CREATED_LINE.search(line):
                submission.found(match[1])

        submission.returncode = await exit_code(process, tail, scan)
        submission.settled.set()
        if submission.returncode != 0 and submission.job_id is not None:
            # The job runs on without its submitter; the API says how it ends.
            self._log.warning("submitter exited early", returncode=submission.returncode)

    async def _look_up_new_job(self, where: JobRef, name: str, known: set[str],
                               submission: _Submission) -> None:
        """Find the job by name too, for submitters that do not log its id."""
        while not submission.settled.is_set():
            with anyio.move_on_after(self._poll):
                await submission.settled.wait()
            if submission.settled.is_set():
                return
            try:
                new = await self._new_job(where, name, known)
            except DataflowError as exc:
                self._log.warning("cannot look the job up yet", error=str(exc))
                continue
            if new is not None:
                submission.found(new)

    async def _new_job(self, where: JobRef, name: str, known: set[str]) -> str | None:
        """The newest job of that name that was not there before the launch."""
        jobs = await self._api.jobs_named(where.project, where.region, name)
        new = [job for job in jobs if str(job.get("id")) not in known]
        new.sort(key=lambda job: str(job.get("createTime", "")))
        return str(new[-1]["id"]) if new else None

    async def _after_early_exit(self, where: JobRef, name: str, known: set[str],
                                submission: _Submission, tail: collections.deque[str]) -> str:
        if submission.returncode != 0:
            raise JobFailed(
                f"job submission exited with code {submission.returncode}; {log_tail(tail)}"
            )
        job_id = await self._new_job(where, name, known)
        if job_id is None:
            raise JobFailed(f"job submission exited but Dataflow has no job {name!r}; "
                            f"{log_tail(tail)}")
        return job_id

    async def _let_submitter_exit(self, process: anyio.abc.Process) -> None:
        with anyio.move_on_after(max(_SUBMITTER_GRACE_SECONDS, 3 * self._poll)):
            await process.wait()
            return
        self._log.warning("submitter still running after its job ended; stopping it")
        await stop_process(process)

    async def reattach(self, job_id: str) -> None:
        ref = JobRef.parse(job_id, project=self._project, region=self._region)
        job = await self._api.get(ref)
        if job is None:
            raise JobLost(f"Dataflow has no job {ref}")
        await self._follow(ref, job)

    async def cancel(self, job_id: str) -> None:
        ref = JobRef.parse(job_id, project=self._project, region=self._region)
        job = await self._api.get(ref)
        if job is None or job.get("currentState") in TERMINAL_STATES:
            self._log.info("job already over; nothing to cancel", job_id=str(ref),
                           state=job and job.get("currentState"))
            return
        try:
            await self._api.request_state(ref, CANCELLED)
        except DataflowError:
            # It may have ended between the read and the request: then there is nothing to do.
            job = await self._api.get(ref)
            if job is None or job.get("currentState") in TERMINAL_STATES:
                return
            raise
        self._log.info("job cancellation requested", job_id=str(ref))

    async def _follow(self, ref: JobRef, job: Job | None = None) -> None:
        """Poll the job until it ends: return when done, JobFailed otherwise."""
        last = ""
        while True:
            state = str((job or await self._read(ref)).get("currentState", ""))
            if state and state != last:
                self._log.info("job state", job_id=str(ref), state=state)
                last = state
            if state == DONE:
                return
            if state in FAILED_STATES:
                raise JobFailed(f"Dataflow job {ref.id} ended in {state}: {ref.console_url}")
            job = None
            await anyio.sleep(self._poll)

    async def _read(self, ref: JobRef) -> Job:
        """The job's latest state; an unreachable API is waited out, the job runs on."""
        try:
            job = await self._api.get(ref)
        except DataflowError as exc:
            if not exc.transient:
                raise
            self._log.warning("cannot read the job's state; trying again", error=str(exc))
            return {}
        if job is None:
            raise JobLost(f"Dataflow has no job {ref} any more")
        return job


    def _location(self, argv: Sequence[str]) -> tuple[str, str]:
        project = flag_value(argv, "--project=") or self._project
        region = flag_value(argv, "--region=") or self._region
        if not (project and region):
            raise UsageError("a Dataflow job needs a project and a region: set them on the "
                             "task or in [beam] (CHARON_BEAM__PROJECT, CHARON_BEAM__REGION)")
        return project, region


def flag_value(argv: Sequence[str], prefix: str) -> str:
    return next((arg[len(prefix):] for arg in argv if arg.startswith(prefix)), "")


def with_job_name(argv: Sequence[str], job_name: str) -> list[str]:
    """The command with ``--jobName=<job_name>``, where beam_command would put it."""
    given = flag_value(argv, JOB_NAME_FLAG)
    if given:
        if given != job_name:
            raise UsageError(f"the job's command line names it {given!r}, not {job_name!r}")
        return list(argv)
    command = list(argv)
    at = command.index("--blocking") if "--blocking" in command else len(command)
    command.insert(at, f"{JOB_NAME_FLAG}{job_name}")
    return command
