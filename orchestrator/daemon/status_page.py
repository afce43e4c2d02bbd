"""The daemon's status page (``GET /``): what ``/status`` says, as a page a person reads.

Rendered on the server from the same dictionary as ``/status``, every value escaped;
no scripts, so it works wherever a browser does and cannot run anything it is sent.
The page reloads itself every few seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence, Set
from html import escape
from typing import Any

REFRESH_SECONDS = 5

STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #ddd;
         vertical-align: top; }
th { background: #f4f4f4; }
.detail { font-family: ui-monospace, monospace; font-size: 12px; }
.state { font-weight: 600; }
.succeeded, .done, .complete { color: #17803d; }
.failed { color: #b42318; }
.running, .publishing, .evaluating { color: #175cd3; }
.missing, .blocked, .waiting { color: #9a6700; }
.empty { color: #777; font-style: italic; }
"""


def render(status: Mapping[str, Any], *, refresh_seconds: int = REFRESH_SECONDS) -> str:
    """The whole page for one ``Daemon.status()`` answer."""
    workflows = status.get("workflows", [])
    partitions = status.get("partitions", [])
    runs = status.get("runs", [])
    body = "\n".join([
        "<h1>charon daemon</h1>",
        f"<p>{len(workflows)} workflows, {len(partitions)} partitions watched,"
        f" {sum(1 for p in partitions if p.get('evaluating'))} being evaluated."
        " Machine-readable: <a href=\"/status\">/status</a>,"
        " <a href=\"/metrics\">/metrics</a>.</p>",
        "<h2>Workflows</h2>",
        _table(["workflow", "task", "policy", "running"], [
            [w["name"], f"{w['module']}.{w['task']}", w["policy"],
             f"{w['running']} of {w['max_concurrent_runs']}"]
            for w in workflows
        ]),
        "<h2>Partitions</h2>",
        _table(["workflow", "partition", "state", "waiting for", "last evaluated"], [
            [p["workflow"], p["partition"], _state(_partition_state(p)),
             _detail("; ".join(p.get("waiting_for") or []) or (p.get("error") or "")),
             p.get("evaluated_at") or "not yet"]
            for p in partitions
        ], raw_columns={2, 3}),
        "<h2>Latest runs</h2>",
        _table(["task", "partition", "state", "attempt", "updated", "job", "error"], [
            [r["task"], r["partition"], _state(r["state"]), str(r["attempt"]), r["updated"],
             r.get("job_id") or "", _detail(r.get("error") or "")]
            for r in runs
        ], raw_columns={2, 6}),
    ])
    return (
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta http-equiv=\"refresh\" content=\"{int(refresh_seconds)}\">"
        "<title>charon daemon</title>"
        f"<style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n"
    )


def _partition_state(partition: Mapping[str, Any]) -> str:
    if partition.get("evaluating"):
        return "evaluating"
    if partition.get("error"):
        return "failed"
    return str(partition.get("state") or "waiting")


def _state(value: str) -> str:
    """A state word, coloured by its class; the class is the word itself, escaped."""
    word = escape(value)
    return f'<span class="state {word.replace(" ", "-")}">{word}</span>'


def _detail(text: str) -> str:
    return f'<span class="detail">{escape(text)}</span>' if text else ""


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw_columns: Set[int] = frozenset()
) -> str:
    """Cells are escaped, except the columns named in ``raw_columns``, which the
    helpers above built from escaped values."""
    lines = ["<table><tr>" + "".join(f"<th>{escape(h)}</th>" for h in headers) + "</tr>"]
    for row in rows:
        cells = (cell if index in raw_columns else escape(cell) for index, cell in enumerate(row))
        lines.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    if len(lines) == 1:
        lines.append(f'<tr><td class="empty" colspan="{len(headers)}">none</td></tr>')
    return "\n".join([*lines, "</table>"])
