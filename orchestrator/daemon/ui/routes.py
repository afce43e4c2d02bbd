"""The UI's routes on the daemon's application: ``/``, ``/runs/{run_id}``, ``/events``
and the two static files, every answer under a policy that runs only our own script."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from importlib import resources
from math import ceil

from aiohttp import web

from orchestrator.daemon.daemon import Daemon
from orchestrator.daemon.ui import pages, why
from orchestrator.daemon.ui.events import Changes, Interest
from orchestrator.daemon.ui.runlog import RunLogStreams
from orchestrator.daemon.ui.states import find_run, partition_cells
from orchestrator.model import Run
from orchestrator.validate import whole_number

CONTENT_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; "
                  "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
                  "frame-ancestors 'none'")
_STATIC = {"app.js": "text/javascript", "app.css": "text/css", "runlog.js": "text/javascript"}


def add_ui(app: web.Application, daemon: Daemon) -> None:
    changes = Changes(daemon)
    app.cleanup_ctx.append(changes.polling)
    app.on_shutdown.append(changes.closing)
    logs = RunLogStreams(daemon)
    app.on_shutdown.append(logs.closing)
    app.on_response_prepare.append(_content_policy)

    async def grid(request: web.Request) -> web.StreamResponse:
        page = _page_number(request.query.get("page", "1"))
        shown, pages_count = _page_days(daemon, page)
        roots = [root for day in shown for root in daemon.watch.roots_on(day)]
        cells = await partition_cells(daemon, roots)
        return _html(pages.grid(pages.GridPage(list(daemon.watch.workflows), shown, cells,
                                               page, pages_count)))

    async def events(request: web.Request) -> web.StreamResponse:
        page, run_id = request.query.get("page"), request.query.get("run")
        days = (frozenset(_page_days(daemon, _page_number(page))[0]) if page is not None
                else None if run_id is None else frozenset())
        run = None if run_id is None else await find_run(daemon, run_id)
        looks = frozenset() if run is None else frozenset(
            root.day for root in daemon.watch.roots_of_task(run.task_id)
            if daemon.watch.task_id(root) == run.task_id)
        return await changes.stream(request, Interest(days, run_id, looks))

    async def watched_run(request: web.Request) -> Run:
        run_id = request.match_info["run_id"]
        found = await find_run(daemon, run_id)
        if found is None:
            raise _not_found(f"no run {run_id!r} among the watched partitions")
        return found

    async def run(request: web.Request) -> web.StreamResponse:
        found = await watched_run(request)
        return _html(pages.run_page(found, why.page_of(daemon, found.task_id)))

    async def run_log(request: web.Request) -> web.StreamResponse:
        return await logs.stream(request, await watched_run(request))

    async def partition(request: web.Request) -> web.StreamResponse:
        return await why.partition_page(request, daemon)

    app.router.add_get("/", grid)
    app.router.add_get("/runs/{run_id}", run)
    app.router.add_get("/runs/{run_id}/log", run_log)
    app.router.add_get("/partitions/{workflow}/{day}", partition)
    app.router.add_get("/events", events)
    for name, content_type in _STATIC.items():
        app.router.add_get(f"/ui/{name}", _static(name, content_type))


def _static(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    body = resources.files("orchestrator.daemon.ui").joinpath("static", name).read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=content_type, charset="utf-8",
                            headers={"Cache-Control": "no-cache"})

    return serve


def _page_days(daemon: Daemon, page: int) -> tuple[list[date], int]:
    """The days of grid page ``page``, newest first, and how many pages there are."""
    days = daemon.watch.days_newest_first()
    pages_count = max(1, ceil(len(days) / pages.DAYS_PER_PAGE))
    if page > pages_count:
        raise _not_found(f"no page {page}: there are {pages_count}")
    return days[(page - 1) * pages.DAYS_PER_PAGE:page * pages.DAYS_PER_PAGE], pages_count


def _page_number(text: str) -> int:
    page = whole_number(text)
    if not page:
        raise web.HTTPBadRequest(text=f"page must be a whole number from 1, got {text!r}")
    return page


def _not_found(message: str) -> web.HTTPNotFound:
    return web.HTTPNotFound(text=message)


def _html(text: str) -> web.Response:
    return web.Response(text=text, content_type="text/html", charset="utf-8")


async def _content_policy(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", CONTENT_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
