"""The UI's drawn pages: ``/lineage/{revision_id}``, ``/workflows/{name}/graph`` and
``/charts``. A bad id or date is a 400, an unknown one a 404, a store that cannot
answer a 503, each in the JSON error shape."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from aiohttp import web

from orchestrator.core.graph import resolve
from orchestrator.core.report import Outcome, Status
from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.ui.charts import DAYS_SHOWN, charts_page, duration_bars, latency_bars
from orchestrator.daemon.ui.dag import graph_page
from orchestrator.daemon.ui.lineage import lineage, lineage_page
from orchestrator.daemon.ui.routes import _html
from orchestrator.daemon.ui.why import dry_run
from orchestrator.errors import CharonError, InvalidIdentifier, UnknownRevision, UsageError
from orchestrator.intervals import parse_day
from orchestrator.stores.state.claims import MAX_LIST
from sensors.facts import Root

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RETRY_AFTER_SECONDS = "5"


def add_graphs(app: web.Application, daemon: Daemon) -> None:
    async def lineage_view(request: web.Request) -> web.StreamResponse:
        revision_id = request.match_info["revision_id"]
        try:
            found = await lineage(daemon.adapters.registry, daemon.adapters.state, revision_id)
        except InvalidIdentifier as exc:
            raise web.HTTPBadRequest(text=str(exc)) from None
        except UnknownRevision:
            raise web.HTTPNotFound(text=f"no revision {revision_id!r}") from None
        return _html(lineage_page(found))

    async def task_graph(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        workflow = daemon.watch.workflows.get(name)
        if workflow is None:
            raise web.HTTPNotFound(text=f"no workflow {name!r} is watched")
        watched = daemon.watch.of_workflow(name)
        day = _day(request.query.get("date"), watched)
        root = daemon.watch.canonical(Root(name, day))
        state = daemon.roots.get(root)
        graph = resolve(daemon.watch.task(root))
        evaluated = state is not None and state.verdict is not None
        outcomes = await _with_runs(
            daemon, (await dry_run(daemon, root)).outcomes if evaluated else {})
        return _html(graph_page(name, root.day, graph, outcomes, _around(watched, root)))

    async def charts(request: web.Request) -> web.StreamResponse:
        runs = await daemon.adapters.state.list_runs(limit=MAX_LIST)
        durations = {
            name: duration_bars([(root.day, daemon.watch.task_id(root))
                                 for root in daemon.watch.of_workflow(name)[-DAYS_SHOWN:]],
                                runs)
            for name in daemon.watch.workflows
        }
        return _html(charts_page(durations, latency_bars(daemon.metrics.trigger_latency)))

    app.router.add_get("/lineage/{revision_id}", _unavailable_as_503(lineage_view))
    app.router.add_get("/workflows/{name}/graph", _unavailable_as_503(task_graph))
    app.router.add_get("/charts", _unavailable_as_503(charts))


async def _with_runs(daemon: Daemon, outcomes: Mapping[str, Outcome]) -> dict[str, Outcome]:
    """A task waiting on a run its outcome does not carry (a failed run's retry) with
    the task's latest run, which says where it stands, as the grid does."""
    found = dict(outcomes)
    for task_id, outcome in outcomes.items():
        if outcome.status is Status.WAITING and outcome.run is None:
            found[task_id] = replace(outcome, run=await daemon.adapters.state.latest(task_id))
    return found


def _day(text: str | None, watched: Sequence[Root]) -> date:
    """The asked day, or the newest watched one."""
    if text is None:
        if not watched:
            raise web.HTTPBadRequest(text="no day of this workflow is watched: give ?date=")
        return watched[-1].day
    try:
        return parse_day(text)
    except UsageError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


def _around(watched: Sequence[Root], root: Root) -> tuple[date | None, date | None]:
    """The watched days just before and after ``root``'s, if any (``watched``: its
    workflow's roots, oldest first)."""
    before, after = bisect_left(watched, root), bisect_right(watched, root)
    return (watched[before - 1].day if before else None,
            watched[after].day if after < len(watched) else None)


def _unavailable_as_503(handler: Handler) -> Handler:
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except CharonError as exc:
            return web.json_response({"error": str(exc), "code": "unavailable"}, status=503,
                                     headers={"Retry-After": RETRY_AFTER_SECONDS})

    return answer
