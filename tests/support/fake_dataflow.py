"""FakeDataflowServer: a fake of the Dataflow REST API (v1b3), for tests only.

No Dataflow emulator exists, so the tests run charon's Dataflow job tracking against
this small aiohttp app on 127.0.0.1. It implements the few calls a submitter and
charon make, in the real API's shapes:

* ``POST   /v1b3/projects/{p}/locations/{r}/jobs`` (jobs.create): a job named in the
  body; as Dataflow does, an active job of the same name is returned instead of a new one
* ``GET    /v1b3/projects/{p}/locations/{r}/jobs?name=&filter=&pageToken=`` (jobs.list)
* ``GET    /v1b3/projects/{p}/locations/{r}/jobs/{id}`` (jobs.get; 404 when unknown)
* ``PUT    /v1b3/projects/{p}/locations/{r}/jobs/{id}`` with ``{"requestedState":
  "JOB_STATE_CANCELLED"}`` (jobs.update): CANCELLING, then CANCELLED on the next read;
  a job already over gets 400 FAILED_PRECONDITION

Tests steer it directly (thread-safe, so a test thread can while the server runs in
another): :meth:`set_state`, :meth:`create`, :attr:`created`, :meth:`fail_next`,
:meth:`garble_next`.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

TERMINAL = frozenset({"JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED",
                      "JOB_STATE_DRAINED", "JOB_STATE_UPDATED"})
PAGE_SIZE = 2  # small, so that clients must follow nextPageToken


@dataclass
class FakeJob:
    id: str
    project: str
    region: str
    name: str
    state: str = "JOB_STATE_RUNNING"
    requested: str = ""
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "projectId": self.project, "location": self.region,
                "name": self.name, "type": "JOB_TYPE_BATCH", "currentState": self.state,
                "requestedState": self.requested, "createTime": self.created,
                "currentStateTime": self.created}


class FakeDataflowServer:
    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self.created = 0
        self.requests: list[str] = []
        self._ids = itertools.count(1)
        self._failures: list[int] = []
        self._garbage: list[bytes] = []
        self._lock = threading.Lock()
        self.root = ""

    # -- test controls -------------------------------------------------------------

    def create(self, name: str, *, project: str = "p", region: str = "r",
               state: str = "JOB_STATE_RUNNING") -> str:
        """Create a job as a submitter would; return its id."""
        with self._lock:
            return self._create(project, region, name, state).id

    def set_state(self, job_id: str, state: str) -> None:
        with self._lock:
            self.jobs[job_id].state = state

    def state(self, job_id: str) -> str:
        with self._lock:
            return self.jobs[job_id].state

    def fail_next(self, *statuses: int) -> None:
        """Answer the next requests with these statuses (e.g. 503, 429) first."""
        with self._lock:
            self._failures.extend(statuses)

    def garble_next(self, *bodies: bytes) -> None:
        """Answer the next requests 200 with these bodies, as a broken proxy would."""
        with self._lock:
            self._garbage.extend(bodies)

    # -- serving ---------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application()
        jobs = "/v1b3/projects/{project}/locations/{region}/jobs"
        app.router.add_post(jobs, self._post)
        app.router.add_get(jobs, self._list)
        app.router.add_get(jobs + "/{job_id}", self._get)
        app.router.add_put(jobs + "/{job_id}", self._put)
        app.middlewares.append(self._inject_failures)
        return app

    @asynccontextmanager
    async def serve(self) -> AsyncIterator[str]:
        """Serve on a free loopback port in the running loop; yield the API root."""
        runner = web.AppRunner(self.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        self.root = f"http://127.0.0.1:{port}"
        try:
            yield self.root
        finally:
            await runner.cleanup()

    @contextmanager
    def serve_in_thread(self) -> Iterator[str]:
        """Serve from a thread of its own, for tests that run charon as a subprocess."""
        loop = asyncio.new_event_loop()
        ready = threading.Event()
        stop = asyncio.Event()

        async def main() -> None:
            async with self.serve():
                ready.set()
                await stop.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
        thread.start()
        assert ready.wait(10), "the fake Dataflow server did not start"
        try:
            yield self.root
        finally:
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            loop.close()

    # -- handlers --------------------------------------------------------------------

    @web.middleware
    async def _inject_failures(self, request: web.Request, handler: Any) -> web.StreamResponse:
        with self._lock:
            self.requests.append(f"{request.method} {request.path_qs}")
            status = self._failures.pop(0) if self._failures else None
            garbage = self._garbage.pop(0) if self._garbage and status is None else None
        if garbage is not None:
            return web.Response(body=garbage, content_type="application/json")
        if status is not None:
            return _error(status, "UNAVAILABLE", "injected by the test")
        response: web.StreamResponse = await handler(request)
        return response

    def _create(self, project: str, region: str, name: str, state: str) -> FakeJob:
        for job in self.jobs.values():
            if job.name == name and job.state not in TERMINAL:
                return job  # Dataflow's answer to a second active job of one name
        stamp = datetime.now(UTC).strftime("%Y-%m-%d_%H_%M_%S")
        job = FakeJob(f"{stamp}-{next(self._ids)}", project, region, name, state)
        self.jobs[job.id] = job
        self.created += 1
        return job

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not body.get("name"):
            return _error(400, "INVALID_ARGUMENT", "the job needs a name")
        with self._lock:
            job = self._create(request.match_info["project"], request.match_info["region"],
                               str(body["name"]), "JOB_STATE_PENDING")
            return web.json_response(job.summary())

    async def _list(self, request: web.Request) -> web.Response:
        name = request.query.get("name")
        kind = request.query.get("filter", "ALL")
        offset = int(request.query.get("pageToken") or 0)
        with self._lock:
            found = [
                job.summary() for job in self.jobs.values()
                if job.project == request.match_info["project"]
                and job.region == request.match_info["region"]
                and (name is None or job.name == name)
                and (kind != "ACTIVE" or job.state not in TERMINAL)
                and (kind != "TERMINATED" or job.state in TERMINAL)
            ]
        # Dataflow lists newest first.
        page = list(reversed(found))[offset:offset + PAGE_SIZE]
        body: dict[str, Any] = {"jobs": page}
        if offset + PAGE_SIZE < len(found):
            body["nextPageToken"] = str(offset + PAGE_SIZE)
        return web.json_response(body)

    def _job(self, request: web.Request) -> FakeJob | None:
        job = self.jobs.get(request.match_info["job_id"])
        if job is None or (job.project, job.region) != (request.match_info["project"],
                                                       request.match_info["region"]):
            return None
        return job

    async def _get(self, request: web.Request) -> web.Response:
        with self._lock:
            job = self._job(request)
            if job is None:
                return _error(404, "NOT_FOUND", f"no job {request.match_info['job_id']}")
            summary = job.summary()
            if job.state == "JOB_STATE_CANCELLING":
                job.state = "JOB_STATE_CANCELLED"  # the service finishes the cancel
            return web.json_response(summary)

    async def _put(self, request: web.Request) -> web.Response:
        requested = (await request.json()).get("requestedState")
        with self._lock:
            job = self._job(request)
            if job is None:
                return _error(404, "NOT_FOUND", f"no job {request.match_info['job_id']}")
            if requested != "JOB_STATE_CANCELLED":
                return _error(400, "INVALID_ARGUMENT", f"unsupported state {requested}")
            if job.state in TERMINAL:
                return _error(400, "FAILED_PRECONDITION", f"job is {job.state}")
            job.requested, job.state = requested, "JOB_STATE_CANCELLING"
            return web.json_response(job.summary())


def _error(status: int, code: str, message: str) -> web.Response:
    # Google's error shape, which orchestrator.stores.drivers.gcp reads.
    return web.json_response(
        {"error": {"code": status, "message": message, "status": code}}, status=status
    )
