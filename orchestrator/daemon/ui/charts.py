"""``GET /charts``: how long each day's run took, per workflow, and how long triggers
waited for their launches (the histogram behind ``/metrics``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from html import escape

from orchestrator.daemon.metrics import Histogram
from orchestrator.daemon.ui import svg
from orchestrator.daemon.ui.pages import document
from orchestrator.model import Run

DAYS_SHOWN = 60


def duration_bars(days: Iterable[tuple[date, str]], runs: Iterable[Run]) -> list[svg.Bar]:
    """A bar per day with a finished run of its task (``days``: each day and the task id
    of its root), oldest first: from the run's creation to its end, retries included,
    for the latest such run."""
    finished: dict[str, Run] = {}
    for run in runs:
        if run.finished is not None and (
                run.task_id not in finished or run.updated > finished[run.task_id].updated):
            finished[run.task_id] = run
    found = []
    for day, task_id in sorted(days)[-DAYS_SHOWN:]:
        latest = finished.get(task_id)
        if latest is not None and latest.finished is not None:
            seconds = (latest.finished - latest.created).total_seconds()
            found.append(svg.Bar(day.isoformat(), seconds,
                                 f"{day.isoformat()}: {seconds:.3g} s, {latest.state.value}",
                                 f"s-{latest.state.value}"))
    return found


def latency_bars(histogram: Histogram) -> list[svg.Bar]:
    """A bar per bucket: how many launches came that long after their trigger."""
    labels = [f"≤ {bound:g} s" for bound in histogram.buckets]
    labels.append(f"> {histogram.buckets[-1]:g} s")
    return [svg.Bar(label, count, f"{label}: {count} launches")
            for label, count in zip(labels, histogram.counts, strict=True)]


def charts_page(durations: Mapping[str, Sequence[svg.Bar]], latency: Sequence[svg.Bar]) -> str:
    sections = []
    for workflow, bars in durations.items():
        sections.append(f"<h2>Run duration per day: {escape(workflow)}</h2>")
        drawn = svg.bars(bars, label=f"run duration per day of {workflow}", unit="seconds")
        sections.append(f'<div class="scroll">{drawn}</div>' if bars
                        else '<p class="empty">no finished run yet</p>')
    launches = sum(bar.value for bar in latency)
    return document("charon: charts", "", "\n".join([
        "<h1>Charts</h1>",
        '<p class="note">Durations run from a run\'s creation to its end, retries'
        f" included, for the latest finished run of each watched day (the newest"
        f" {DAYS_SHOWN} days). Hover a bar for its figure.</p>",
        *sections,
        f"<h2>Trigger to launch latency: {launches:g} since the daemon started</h2>",
        '<div class="scroll">'
        f'{svg.bars(latency, label="trigger to launch latency histogram", unit="launches")}</div>',
    ]))
