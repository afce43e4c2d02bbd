"""The run page's parts beyond its fields: the state timeline, the Dataflow console
link, the link to its partition's "why not running", and the live log.

The timeline is read off the run record: the state store keeps when the run was
created, its last change, when it ended and how many attempts it took, not each
transition's time; the job's start and end are time-stamped lines of the run's log.
"""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from jobs.runners.base import job_page
from orchestrator.model import Run

LOG_SCRIPT = "/ui/runlog.js"


def job_field(run: Run) -> str:
    if not run.job_id:
        return "none yet"
    url = job_page(run.job_id)
    link = (f' · <a href="{escape(url)}" rel="noopener" target="_blank">Dataflow console</a>'
            if url else "")
    return f'<span class="mono">{escape(run.job_id)}</span>{link}'


def timeline(run: Run, readable: dict[str, str]) -> str:
    """``readable``: the run's moments as the page writes them, by field name."""
    steps = [("created", readable["created"], "claimed by a worker: attempt 1 began")]
    if run.attempt > 1:
        steps.append(("attempts", "", f"{run.attempt} attempts: taken over after a lost lease"
                      f" or tried again after a failure ({run.failures} failed)"))
    if run.state.active:
        held = f"held by {run.lease_owner}" if run.lease_owner else "released, to be resumed"
        steps.append((run.state.value, readable["updated"], f"now (last written then); {held}"))
    else:
        steps.append((run.state.value, readable["finished"], run.error or "ended"))
    items = "".join(
        f'<li><span class="state s-{escape(state)}">{escape(state)}</span>'
        f' <time>{escape(when)}</time> {escape(what)}</li>'
        for state, when, what in steps
    )
    return f'<h2>Timeline</h2><ol class="timeline" id="timeline">{items}</ol>'


def partition_link(url: str | None) -> str:
    """``url``: the page of the run's partition, when a watched one."""
    if url is None:
        return ""
    return f' · <a href="{escape(url)}">its partition: why it runs or not</a>'


def log_panel(run: Run) -> str:
    url = f"/runs/{quote(run.id, safe='')}/log"
    return (f'<h2>Log</h2><section class="run-log" id="run-log" data-log="{escape(url)}">'
            '<p class="empty" id="log-note">connecting…</p>'
            '<pre class="log" id="log-lines"></pre></section>')
