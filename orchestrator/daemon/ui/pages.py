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

from orchestrator.daemon.ui import runview
from orchestrator.daemon.ui.states import STATES, Cell
from orchestrator.model import Run

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
    head = "".join(f"<th scope=\"col\">{escape(w)}</th>" for w in page.workflows)
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
    return _document("charon: partitions", f"/events?page={page.page}", "\n".join([
        "<h1>Partitions</h1>",
        f"<ul class=\"legend\">{legend}</ul>",
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
        f"<tr><td>{escape(i.key)}</td><td class=\"mono\">{escape(i.revision_id)}</td>"
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
    return _document(f"charon: run {run.id}", f"/events?run={quote(run.id, safe='')}", "\n".join([
        f"<h1>Run {escape(run.id)}</h1>",
        f'<p><a href="/">all partitions</a>{runview.partition_link(partition_url)}</p>',
        f"<table class=\"fields\">{rows}</table>",
        runview.timeline(run, {n: readable(getattr(run, n)) for n in ("created", "updated",
                                                                      "finished")}),
        "<h2>Input revisions</h2>",
        "<table><thead><tr><th>input</th><th>revision</th><th>URI</th></tr></thead>"
        f"<tbody>{inputs}</tbody></table>",
        runview.log_panel(run),
    ]), scripts=(runview.LOG_SCRIPT,))


def _document(title: str, events: str, body: str, scripts: Sequence[str] = ()) -> str:
    """``events``: where the page's script listens for the changes it shows."""
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title>"
        # No icon to fetch: a browser asking for /favicon.ico would log a 404.
        '<link rel="icon" href="data:,"><link rel="stylesheet" href="/ui/app.css">'
        '<script src="/ui/app.js" defer></script>'
        + "".join(f'<script src="{escape(src)}" defer></script>' for src in scripts)
        + "</head>\n"
        f'<body data-events="{escape(events)}">\n<nav><a href="/">charon</a> · '
        '<a href="/status">status</a> · <a href="/metrics">metrics</a>'
        ' · <span id="live" class="live">connecting…</span></nav>\n'
        f"{body}\n</body></html>\n"
    )
