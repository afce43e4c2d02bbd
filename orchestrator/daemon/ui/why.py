"""``GET /partitions/{workflow}/{day}``: where one watched partition stands and why, in
the words of ``charon explain``, from a dry evaluation of it as the page is asked (the
daemon keeps no report of its own evaluations)."""

from __future__ import annotations

from datetime import date
from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from aiohttp import web

from orchestrator.core.explain import explanation
from orchestrator.core.policy import Policy
from orchestrator.core.report import Report
from orchestrator.daemon.ui.pages import document, partition_url, readable
from orchestrator.daemon.ui.states import Cell, partition_cells
from orchestrator.errors import CharonError
from orchestrator.model import Run, RunState
from orchestrator.stores.state.claims import MAX_LIST

if TYPE_CHECKING:
    from orchestrator.daemon.daemon import Daemon
    from sensors.facts import Root


async def dry_run(daemon: Daemon, root: Root) -> Report:
    """What an evaluation of ``root`` would find now, claiming and launching nothing
    (``charon explain``'s evaluation): the pages that explain a partition ask for it,
    rather than the daemon keeping every evaluation's report. A store or source that
    fails shows in the report's outcomes; a graph that cannot be built raises."""
    workflow = daemon.watch.workflows[root.workflow]
    policy = Policy(dry_run=True, rerun_late_inputs=workflow.rerun_late_inputs)
    return await daemon.engine.run(daemon.watch.task(root), policy)


def page_of(daemon: Daemon, task_id: str) -> str | None:
    """The page of the watched partition whose root task is ``task_id``."""
    return next((partition_url(root.workflow, root.day)
                 for root in daemon.watch.roots_of_task(task_id)
                 if daemon.watch.task_id(root) == task_id), None)


async def partition_page(request: web.Request, daemon: Daemon) -> web.Response:
    name, text = request.match_info["workflow"], request.match_info["day"]
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise web.HTTPBadRequest(
            text=f"day must be a date such as 2018-10-31, got {text!r}") from None
    root = next((r for r in daemon.watch.roots_on(day) if r.workflow == name), None)
    if root is None:
        raise web.HTTPNotFound(text=f"no watched partition {name!r} on {day.isoformat()}")
    [cell] = await partition_cells(daemon, [root])
    return web.Response(text=_page(cell, await _explained(daemon, root)),
                        content_type="text/html", charset="utf-8")


async def _explained(daemon: Daemon, root: Root) -> str:
    state = daemon.roots.get(root)
    if state is None or state.verdict is None:
        return "not evaluated yet: its first evaluation is under way or queued"
    running = await _running(daemon)
    workflow = daemon.watch.workflows[root.workflow]
    try:
        report = await dry_run(daemon, root)
    except CharonError as exc:
        return f"cannot be evaluated now: {exc}"
    return (f"{explanation(report, running, daemon.settings, workflow)}\n\n"
            f"(looked up now; the daemon last evaluated it {readable(state.evaluated_at)})")


async def _running(daemon: Daemon) -> list[Run]:
    try:
        return await daemon.adapters.state.list_runs(state=RunState.RUNNING, limit=MAX_LIST)
    except CharonError:
        return []


def _page(cell: Cell, explained: str) -> str:
    title = f"{cell.workflow} {cell.day.isoformat()}"
    run = (f'<p>Its run: <a href="/runs/{quote(cell.run_id, safe="")}">'
           f"{escape(cell.run_id)}</a></p>" if cell.run_id else "<p>No run of it.</p>")
    events = f"/events?run={quote(cell.run_id or '', safe='')}"
    return document(f"charon: {title}", events, "\n".join([
        f"<h1>{escape(title)}</h1>",
        '<p><a href="/">all partitions</a></p>',
        f'<p>State: <span class="state s-{escape(cell.state)}" data-key="{escape(cell.key)}"'
        f' id="partition-state">{escape(cell.state)}</span>'
        + (f" — {escape(cell.why)}" if cell.why else "") + "</p>",
        run,
        "<h2>Why not running</h2>",
        f'<pre class="explain" id="explain">{escape(explained)}</pre>',
    ]))
