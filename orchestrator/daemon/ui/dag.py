"""``GET /workflows/{name}/graph``: a workflow's tasks for one day and their requires()
edges, as a DAG coloured by where each task stands, from a dry evaluation of that day."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from html import escape
from urllib.parse import quote

from orchestrator.core.graph import Graph
from orchestrator.core.report import Outcome
from orchestrator.daemon.ui import svg
from orchestrator.daemon.ui.pages import document
from orchestrator.daemon.ui.states import STATES, outcome_state


def edges_of(graph: Graph) -> list[svg.Edge]:
    """Requirement → the task that requires it, each pair once."""
    return [svg.Edge(task_id, dependent)
            for task_id, dependents in graph.dependents.items() for dependent in dependents]


def nodes_of(graph: Graph, outcomes: Mapping[str, Outcome]) -> list[svg.Node]:
    nodes = []
    for task_id in graph.order:
        family, _, params = task_id.partition("(")
        outcome = outcomes.get(task_id)
        if outcome is None:
            state, why, href = "waiting", "not evaluated yet", None
        else:
            state, why = outcome_state(outcome), outcome.detail or outcome.status.value
            href = f"/runs/{quote(outcome.run.id, safe='')}" if outcome.run else None
        nodes.append(svg.Node(task_id, (family, params.removesuffix(")")),
                              f"{task_id}\n{state}: {why}", f"s-{state}", href))
    return nodes


def graph_page(workflow: str, day: date, graph: Graph, outcomes: Mapping[str, Outcome],
               around: tuple[date | None, date | None]) -> str:
    """``around``: the workflow's watched days just before and after ``day``, if any,
    to step to."""
    drawn = svg.graph(nodes_of(graph, outcomes), edges_of(graph),
                      label=f"task graph of {workflow} for {day.isoformat()}")
    legend = "".join(f'<li><span class="cell s-{s}"></span>{s}</li>' for s in STATES)
    return document(f"charon: {workflow} task graph", "", "\n".join([
        f"<h1>Task graph of {escape(workflow)} for {day.isoformat()}</h1>",
        _steps(workflow, *around),
        '<p class="note">Each task points at the tasks that require it; colours are where'
        " stands now (looked up as the page was asked). A task with a run links to it.</p>",
        f'<ul class="legend">{legend}</ul>',
        f'<div class="scroll">{drawn}</div>',
    ]))


def _steps(workflow: str, earlier: date | None, later: date | None) -> str:
    base = f"/workflows/{quote(workflow, safe='')}/graph?date="
    older = (f'<a href="{base}{earlier.isoformat()}" rel="prev">older day</a>'
             if earlier else "older day")
    newer = (f'<a href="{base}{later.isoformat()}" rel="next">newer day</a>'
             if later else "newer day")
    return f'<p class="pager"><a href="/">all partitions</a> · {older} · {newer}</p>'

