"""The daemon's actions: trigger a day, re-run or cancel a run, start a backfill; and the
backfills' progress.

An action needs ``Authorization: Bearer <CHARON_API_TOKEN>``, which a browser never
attaches by itself, so no other site's page can act through a visitor's browser; a
request that says it comes from another origin, or whose body is not declared JSON, is
refused too. Without the token configured, actions are off. Every check comes before
anything changes, in this order: token configured, origin, token, media type, body.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from orchestrator.core.graph import resolve
from orchestrator.core.report import Status
from orchestrator.daemon import refusals
from orchestrator.daemon.backfilling import backfill_days
from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.refusals import body_of, field, json_object, queue_full
from orchestrator.daemon.ui.states import find_run
from orchestrator.errors import CharonError
from orchestrator.intervals import parse_interval
from orchestrator.log import get_logger
from orchestrator.model import Backfill, BackfillOrder, Rerun, Run, RunState
from orchestrator.stores.state.claims import MAX_LIST
from orchestrator.tasks.task import Task
from orchestrator.web.http import Rejected, bearer_matches
from sensors.facts import Root, Trigger

MAX_BACKFILL_DAYS = 3660
"""Ten years of days: more is a mistake, not a backfill."""


class Actions:
    def __init__(self, daemon: Daemon, *, token: str, max_body_bytes: int) -> None:
        self._daemon = daemon
        self._token = token
        self._max_body_bytes = max_body_bytes
        self._log = get_logger("charon.actions")

    async def _authorised(self, request: web.Request, fields: set[str]) -> dict[str, Any]:
        """The request's JSON object, once the request may act; only ``fields`` in it."""
        if not self._token:
            raise Rejected(503, "actions are off: set CHARON_API_TOKEN", "unavailable")
        origin = request.headers.get("Origin")
        if origin is not None and not _same_host(origin, request.host):
            raise Rejected(403, f"requests from {origin[:100]!r} may not act", "forbidden")
        if not bearer_matches(request, self._token):
            raise Rejected(401, "a valid bearer token is required", "unauthorized",
                           {"WWW-Authenticate": "Bearer"})
        if request.content_type != "application/json":
            raise Rejected(415, "send the body as application/json", "unsupported_media_type")
        payload = json_object(await body_of(request, self._max_body_bytes) or b"{}")
        if unknown := sorted(set(payload) - fields):
            raise Rejected(400, f"unknown fields: {', '.join(unknown)[:200]}", "malformed")
        return payload

    async def trigger(self, request: web.Request) -> web.StreamResponse:
        await self._authorised(request, set())
        name = self._workflow(request.match_info["workflow"])
        day = refusals.day(request.match_info["date"])
        root = self._daemon.watch.canonical(Root(name, day))
        if not self._daemon.can_accept():
            raise queue_full()
        # Kept until evaluated, so a 202 is kept even if this daemon dies first; a state
        # store that cannot keep it is a 503.
        asked = self._daemon.asking.new(root)
        await self._daemon.adapters.state.ask(asked)
        if not self._daemon.take(Trigger("api", roots=(root,), asked=(asked.id,))):
            raise Rejected(503, "the daemon is stopping", "unavailable")
        self._log.info("day triggered", workflow=name, day=day.isoformat())
        return web.json_response({"status": "accepted", "workflow": name,
                                  "date": root.day.isoformat()}, status=202)

    async def rerun(self, request: web.Request) -> web.StreamResponse:
        await self._authorised(request, set())
        run = await self._run(request)
        if run.state.active:
            raise Rejected(409, f"run {run.id} is {run.state}: cancel it first", "conflict")
        root = self._daemon.root_of_task(run.task_id)
        assert root is not None  # _run found the run among the watched partitions
        # Kept until evaluated, as a trigger is; a re-run asked once runs once.
        rerun = Rerun(run.task_id, run.fingerprint, run.generation)
        asked = self._daemon.asking.new(root, rerun)
        await self._daemon.adapters.state.ask(asked)
        if not self._daemon.rerun(rerun, asked.id):
            raise Rejected(503, "the daemon is stopping", "unavailable")
        self._log.info("re-run requested", run_id=run.id, task=run.task_id)
        return web.json_response({"status": "accepted", "run": run.id, "task": run.task_id},
                                 status=202)

    async def cancel(self, request: web.Request) -> web.StreamResponse:
        await self._authorised(request, set())
        run = await self._run(request)
        if run.state is not RunState.RUNNING:
            why = (": its job is over and its outputs are being published"
                   if run.state is RunState.PUBLISHING else "")
            raise Rejected(409, f"run {run.id} is {run.state}{why}", "conflict")
        try:
            await self._daemon.engine.cancel(self._task(run), run)
        except CharonError as exc:
            raise Rejected(409, f"run {run.id} not cancelled: {exc}", "conflict") from None
        self._log.info("run cancelled", run_id=run.id, attempt=run.attempt)
        return web.json_response({"status": "cancelled", "run": run.id,
                                  "attempt": run.attempt})

    async def start_backfill(self, request: web.Request) -> web.StreamResponse:
        payload = await self._authorised(request, {"workflow", "interval", "order",
                                                   "max_parallel"})
        workflow = self._daemon.watch.workflows[self._workflow(field(payload, "workflow"))]
        try:
            interval = parse_interval(field(payload, "interval"))
        except CharonError as exc:
            raise Rejected(400, str(exc), "malformed") from None
        order = _order(payload.get("order", BackfillOrder.OLDEST.value))
        max_parallel = _max_parallel(payload.get("max_parallel", workflow.max_concurrent_runs))
        days = len(backfill_days(workflow, interval, order))
        if days > MAX_BACKFILL_DAYS:
            raise Rejected(400, f"{days} days: at most {MAX_BACKFILL_DAYS}", "malformed")
        backfills = self._daemon.backfills
        if backfills.busy:
            running = backfills.running
            raise Rejected(409, f"backfill {running} is running" if running else
                           "a backfill is being started", "conflict")
        record = await backfills.start(workflow, interval, order, max_parallel)
        if record is None:
            raise Rejected(503, "the daemon is stopping", "unavailable")
        self._log.info("backfill started", backfill=record.id, workflow=workflow.name,
                       interval=str(interval))
        return web.json_response(progress(record), status=202)

    async def cancel_backfill(self, request: web.Request) -> web.StreamResponse:
        await self._authorised(request, set())
        backfill_id = request.match_info["backfill_id"]
        state = self._daemon.adapters.state
        if not await state.cancel_backfill(backfill_id):
            found = await state.get_backfill(backfill_id)
            if found is None:
                raise Rejected(404, f"no backfill {backfill_id[:100]!r}", "unknown")
            raise Rejected(409, f"backfill {found.id} is {found.state}: only a running one"
                           " is cancelled", "conflict")
        self._log.info("backfill cancelled", backfill=backfill_id)
        cancelled = await state.get_backfill(backfill_id)
        assert cancelled is not None  # cancelled just now; backfills are never deleted
        return web.json_response(progress(cancelled))

    async def backfills(self, request: web.Request) -> web.StreamResponse:
        listed = await self._daemon.adapters.state.list_backfills(limit=MAX_LIST)
        return web.json_response({"backfills": [progress(b) for b in listed]})

    async def backfill(self, request: web.Request) -> web.StreamResponse:
        backfill_id = request.match_info["backfill_id"]
        found = await self._daemon.adapters.state.get_backfill(backfill_id)
        if found is None:
            raise Rejected(404, f"no backfill {backfill_id[:100]!r}", "unknown")
        return web.json_response(progress(found))

    def _workflow(self, name: str) -> str:
        if name not in self._daemon.watch.workflows:
            raise Rejected(404, f"no workflow named {name[:100]!r}", "unknown")
        return name

    async def _run(self, request: web.Request) -> Run:
        run_id = request.match_info["run_id"]
        run = await find_run(self._daemon, run_id)
        # An active run another daemon's workflow owns is found too: not this one's to act on.
        if run is None or not self._daemon.watch.roots_of_task(run.task_id):
            raise Rejected(404, f"no run {run_id[:100]!r} among the watched partitions",
                           "unknown")
        return run

    def _task(self, run: Run) -> Task:
        """The run's task, from the graph of a watched root that holds it."""
        root = min(self._daemon.watch.roots_of_task(run.task_id))
        return resolve(self._daemon.watch.task(root)).tasks[run.task_id]


def progress(backfill: Backfill) -> dict[str, Any]:
    """A backfill as the API shows it: how many of its days are done, failed, left."""
    statuses = [Status(status) for status in backfill.days.values()]
    done = sum(status.ok for status in statuses)
    return {"id": backfill.id, "task": backfill.task, "interval": backfill.interval,
            "order": backfill.order.value, "state": backfill.state.value,
            "runner": backfill.owner,
            "total": backfill.total, "done": done, "failed": len(statuses) - done,
            "created": backfill.created.isoformat(), "updated": backfill.updated.isoformat()}


def _same_host(origin: str, host: str) -> bool:
    """Host and port only: a proxy terminating TLS in front keeps the Host, not the scheme."""
    try:
        return urlsplit(origin).netloc == host
    except ValueError:  # "http://[": no origin at all
        return False


def _order(value: object) -> BackfillOrder:
    if value not in {order.value for order in BackfillOrder}:
        raise Rejected(400, "order must be \"oldest\" or \"newest\"", "malformed")
    return BackfillOrder(str(value))


def _max_parallel(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 1000:
        raise Rejected(400, "max_parallel must be a whole number from 1 to 1000", "malformed")
    return value


def add_actions(app: web.Application, daemon: Daemon, *, token: str,
                max_body_bytes: int) -> None:
    actions = Actions(daemon, token=token, max_body_bytes=max_body_bytes)
    app.router.add_post("/api/partitions/{workflow}/{date}/trigger", actions.trigger)
    app.router.add_post("/api/runs/{run_id}/rerun", actions.rerun)
    app.router.add_post("/api/runs/{run_id}/cancel", actions.cancel)
    app.router.add_post("/api/backfills", actions.start_backfill)
    app.router.add_get("/api/backfills", actions.backfills)
    app.router.add_get("/api/backfills/{backfill_id}", actions.backfill)
    app.router.add_post("/api/backfills/{backfill_id}/cancel", actions.cancel_backfill)

