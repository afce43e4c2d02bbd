"""The UI's HTML: the partition grid and the run page, every value escaped.

Styles and the script are files of their own (``/ui/app.css``, ``/ui/app.js``), so
the Content-Security-Policy can allow nothing inline.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from html import escape
from urllib.parse import quote

from orchestrator import validate
from orchestrator.daemon.ui import runview
from orchestrator.daemon.ui.states import STATES, Cell
from orchestrator.errors import InvalidIdentifier
from orchestrator.model import Run, RunState

DAYS_PER_PAGE = 60


@dataclass(frozen=True)
class GridPage:
    workflows: Sequence[str]
    days: Sequence[date]
    """This page's days, newest first."""
    cells: Iterable[Cell]
    page: int
    pages: int


def readable(moment: datetime | None) -> str:
    """To the second, in UTC, and saying so."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def grid(page: GridPage) -> str:
    by_key = {cell.key: cell for cell in page.cells}
    head = "".join(f'<th scope="col"><a href="/workflows/{quote(w, safe="")}/graph"'
                   f' title="task graph">{escape(w)}</a></th>' for w in page.workflows)
    rows = [
        f"<tr><th scope=\"row\" class=\"day\">{day.isoformat()}</th>"
        + "".join(_cell(by_key.get(f"{w}/{day.isoformat()}"), w, day) for w in page.workflows)
        + "</tr>"
        for day in page.days
    ]
    if not rows:
        rows = [f"<tr><td class=\"empty\" colspan=\"{len(page.workflows) + 1}\">"
                "no partitions watched</td></tr>"]
    legend = "".join(f'<li><span class="cell s-{s}"></span>{s}</li>' for s in STATES)
    return document("charon: partitions", f"/events?page={page.page}", "\n".join([
        "<h1>Partitions</h1>",
        f"<ul class=\"legend\">{legend}</ul>",
        _grid_actions(page),
        _pager(page.page, page.pages),
        f"<table class=\"grid\"><thead><tr><th>day</th>{head}</tr></thead>",
        "<tbody>", *rows, "</tbody></table>",
        _pager(page.page, page.pages),
    ]))


def _cell(cell: Cell | None, workflow: str, day: date) -> str:
    if cell is None:  # a workflow that does not watch this day
        return "<td></td>"
    label = escape(cell.state)
    title = escape(f"{workflow} {day.isoformat()}: {cell.state}"
                   + (f": {cell.why}" if cell.why else ""))
    # A cell without a run links to its partition's page: why it is not running.
    href = f"/runs/{quote(cell.run_id, safe='')}" if cell.run_id else partition_url(workflow, day)
    inner = f'<a href="{href}">{label}</a>'
    return (f'<td class="cell s-{label}" data-key="{escape(cell.key)}"'
            f' title="{title}">{inner}</td>')


def partition_url(workflow: str, day: date) -> str:
    return f"/partitions/{quote(workflow, safe='')}/{day.isoformat()}"


def _pager(page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    newer = f'<a href="/?page={page - 1}" rel="prev">newer</a>' if page > 1 else "newer"
    older = f'<a href="/?page={page + 1}" rel="next">older</a>' if page < pages else "older"
    return f'<p class="pager">{newer} · page {page} of {pages} · {older}</p>'


def run_page(run: Run, partition_url: str | None = None) -> str:
    """``partition_url``: the page of the watched partition the run is of."""
    inputs = "".join(
        f"<tr><td>{escape(i.key)}</td><td class=\"mono\">{revision_link(i.revision_id)}</td>"
        f"<td class=\"mono\">{escape(i.ref)}</td></tr>"
        for i in run.inputs
    ) or '<tr><td class="empty" colspan="3">none</td></tr>'
    fields = [
        ("state", f'<span class="state s-{escape(run.state.value)}" id="run-state"'
                  f' data-run="{escape(run.id)}">{escape(run.state.value)}</span>'),
        ("task", escape(run.task_id)), ("partition", escape(run.partition)),
        ("attempt", str(run.attempt)), ("failures", str(run.failures)),
        ("fingerprint", f'<span class="mono">{escape(run.fingerprint)}</span>'),
        ("job id", runview.job_field(run)),
        ("created", readable(run.created)), ("updated", readable(run.updated)),
        ("finished", readable(run.finished) or "not yet"),
        ("error", f'<pre class="error">{escape(run.error)}</pre>' if run.error else "none"),
    ]
    rows = "".join(f"<tr><th>{name}</th><td>{value}</td></tr>" for name, value in fields)
    return document(f"charon: run {run.id}", f"/events?run={quote(run.id, safe='')}", "\n".join([
        f"<h1>Run {escape(run.id)}</h1>",
        f'<p><a href="/">all partitions</a>{runview.partition_link(partition_url)}</p>',
        _run_actions(run),
        f"<table class=\"fields\">{rows}</table>",
        runview.timeline(run, {n: readable(getattr(run, n)) for n in ("created", "updated",
                                                                      "finished")}),
        "<h2>Input revisions</h2>",
        "<table><thead><tr><th>input</th><th>revision</th><th>URI</th></tr></thead>"
        f"<tbody>{inputs}</tbody></table>",
        "<h2>Output revisions</h2>",
        _outputs(run),
        runview.log_panel(run),
    ]), scripts=(runview.LOG_SCRIPT,))


def _outputs(run: Run) -> str:
    """What a succeeded run published, each linked to its lineage."""
    rows = "".join(f'<tr><td>{escape(key)}</td><td class="mono">{revision_link(published)}'
                   "</td></tr>" for key, published in run.outputs.items())
    rows = rows or '<tr><td class="empty" colspan="2">none yet</td></tr>'
    return f"<table><thead><tr><th>output</th><th>revision</th></tr></thead>{rows}</table>"


def lineage_href(revision_id: str) -> str:
    return f"/lineage/{quote(revision_id, safe='')}"


def revision_link(revision_id: str) -> str:
    """A registry revision's id links to its lineage; another input's version (a
    table's ``spec@modified``) names no revision, and is shown as it is."""
    try:
        validate.revision_id(revision_id)
    except InvalidIdentifier:
        return escape(revision_id)
    return f'<a href="{lineage_href(revision_id)}">{escape(revision_id)}</a>'


def _grid_actions(page: GridPage) -> str:
    """Trigger a day (a click on a cell picks its workflow and day), start a backfill;
    the backfills' progress, filled and kept current by the script."""
    options = "".join(f"<option>{escape(w)}</option>" for w in page.workflows)
    newest = page.days[0].isoformat() if page.days else ""
    return (
        '<section class="actions"><h2>Actions</h2>'
        f'<p><label>workflow <select id="act-workflow">{options}</select></label> '
        f'<label>day <input id="act-day" type="date" value="{newest}"></label> '
        '<button type="button" class="act" data-act="trigger">trigger the day</button> · '
        '<label>backfill <input id="act-interval" placeholder="2018-10 or'
        ' 2018-10-01-2018-10-08" size="24"></label> <label>order <select id="act-order">'
        '<option>oldest</option><option>newest</option></select></label> '
        '<button type="button" class="act" data-act="backfill">start the backfill</button></p>'
        '<p class="act-result" role="status"></p></section>'
        '<section id="backfills" hidden><h2>Backfills</h2><table><thead><tr><th>backfill</th>'
        "<th>task</th><th>interval</th><th>state</th><th>progress</th><th></th></tr></thead>"
        "<tbody></tbody></table></section>"
    )


def _run_actions(run: Run) -> str:
    """Re-run and, while the run is running, cancel: the script sends them."""
    path = f"/api/runs/{quote(run.id, safe='')}"
    hidden = "" if run.state is RunState.RUNNING else " hidden"
    return (
        f'<p class="actions"><button type="button" class="act" data-act="{path}/rerun">'
        f're-run</button> <button type="button" class="act" id="act-cancel"'
        f' data-act="{path}/cancel"{hidden}>cancel</button>'
        ' <span class="act-result" role="status"></span></p>'
    )


def document(title: str, events: str, body: str, scripts: Sequence[str] = ()) -> str:
    """``events``: where the page's script listens for the changes it shows; a page
    without ("") does not change, and has no script of charon's but ``scripts``."""
    script = '<script src="/ui/app.js" defer></script>' if events else ""
    live = ' · <span id="live" class="live">connecting…</span>' if events else ""
    # The actions' bearer token, kept in this tab's sessionStorage by the script.
    token = (' · <span class="token"><input id="api-token" type="password" autocomplete="off"'
             ' placeholder="API token" aria-label="API token"> <button type="button"'
             ' id="token-use">use</button></span>') if events else ""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        # No icon to fetch: a browser asking for /favicon.ico would log a 404.
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/app.css">'
        + script
        + "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
        + f'</head>\n<body data-events="{escape(events)}">\n<nav><a href="/">charon</a>'
        ' · <a href="/charts">charts</a> · <a href="/status">status</a>'
        f' · <a href="/metrics">metrics</a>{live}{token}</nav>\n'
        f"{body}\n</body></html>\n"
    )
