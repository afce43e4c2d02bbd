"""The drawn pages: the layered layout, the lineage graph around a revision (upstream,
the revision it replaced, downstream, bounded), a workflow's task graph, the charts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from orchestrator.core.graph import resolve
from orchestrator.core.report import Outcome, Status
from orchestrator.daemon.metrics import LATENCY_BUCKETS, Histogram
from orchestrator.daemon.ui import pages, svg
from orchestrator.daemon.ui.charts import duration_bars, latency_bars
from orchestrator.daemon.ui.dag import edges_of, graph_page, nodes_of
from orchestrator.daemon.ui.lineage import MAX_NODES, lineage, lineage_page
from orchestrator.errors import InvalidIdentifier, UnknownRevision
from orchestrator.model import InputRevision, Revision, Run, RunState
from orchestrator.tasks.roots import root_task
from orchestrator.testing.stores import InMemoryRegistry, InMemoryStateStore
from tests.support.worlds import make_world

HOSTILE = "<script>alert('x')</script>"
DAY = "2018-10-31"


def edges(*pairs: str) -> list[svg.Edge]:
    return [svg.Edge(*pair.split(">")) for pair in pairs]


def test_layers_are_longest_paths_with_inputs_next_to_their_first_use() -> None:
    layer = svg.layers(list("abcdx"), edges("a>b", "b>c", "a>c", "c>d", "x>d"))
    # x has no input: it sits just before d, not in the first column.
    assert layer == {"a": 0, "b": 1, "c": 2, "d": 3, "x": 2}


def test_a_cycle_does_not_loop() -> None:
    assert set(svg.layers(list("ab"), edges("a>b", "b>a"))) == {"a", "b"}


def test_ordering_uncrosses_edges() -> None:
    columns = svg.ordered({"a": 0, "b": 0, "c": 1, "d": 1}, edges("a>d", "b>c"))
    assert columns == [["a", "b"], ["d", "c"]]


def test_a_long_edge_runs_through_a_slot_of_its_own() -> None:
    nodes = [svg.Node(n, (n,), n) for n in "abc"]
    drawn = svg.graph(nodes, edges("a>b", "b>c", "a>c"), label="g")
    [long_edge] = [p for p in drawn.split("<path ") if 'data-from="a" data-to="c"' in p]
    # Curve to the slot in b's column, straight across it, curve on to c.
    assert long_edge.count(" C") == 2
    assert " L" in long_edge
    assert drawn.count('<g class="node') == 3


def test_labels_are_escaped_and_clipped() -> None:
    node = svg.Node(HOSTILE, ("x" * 50 + "END", HOSTILE * 3), HOSTILE, href="/a?b&c")
    drawn = svg.graph([node], [], label=HOSTILE)
    assert "<script>" not in drawn
    assert "…" + "x" * 30 + "END<" in drawn  # a long name keeps its end
    assert 'href="/a?b&amp;c"' in drawn


async def published_rerun(registry: InMemoryRegistry) -> tuple[Revision, ...]:
    """An output built from r1, then rebuilt from r2 (the same input re-published)."""
    r1 = await registry.publish("plays", DAY, "/plays/1")
    o1 = await registry.publish("top", DAY, "/top/1", [r1.id, "wh:ds.t@2018"])
    r2 = await registry.publish("plays", DAY, "/plays/2")
    o2 = await registry.publish("top", DAY, "/top/2", [r2.id, "wh:ds.t@2018"])
    return r1, o1, r2, o2


async def built_from(state: InMemoryStateStore, consumed: Revision, published: str) -> None:
    run = await state.claim(task_id=f"Next({consumed.id})", family="Next", partition=DAY,
                            fingerprint="fp", owner="w", lease=timedelta(minutes=1),
                            inputs=[InputRevision("top", consumed.uri, consumed.id)])
    await state.succeed(run.id, run.attempt, {"out": published})


async def test_a_rerun_revision_shows_both_builds_inputs_and_what_was_built_from_it() -> None:
    registry, state = InMemoryRegistry(), InMemoryStateStore()
    r1, o1, r2, o2 = await published_rerun(registry)
    downstream = await registry.publish("next", DAY, "/next/1", [o2.id])
    await built_from(state, o2, downstream.id)
    found = await lineage(registry, state, o2.id)
    assert set(found.revisions) == {r1.id, o1.id, r2.id, o2.id, downstream.id, "wh:ds.t@2018"}
    assert found.revisions["wh:ds.t@2018"] is None  # a table's version, not a revision
    assert found.edges == {(r2.id, o2.id): "", ("wh:ds.t@2018", o2.id): "",
                           (o1.id, o2.id): "replaced", (r1.id, o1.id): "",
                           ("wh:ds.t@2018", o1.id): "", (o2.id, downstream.id): ""}
    page = lineage_page(found)
    for shown in (r1.id, r2.id, f"/lineage/{downstream.id}", 'class="edge replaced"'):
        assert shown in page


async def test_the_graph_is_bounded() -> None:
    registry = InMemoryRegistry()
    wide = await registry.publish("top", DAY, "/top/1", [f"input-{n}" for n in range(200)])
    found = await lineage(registry, InMemoryStateStore(), wide.id)
    assert len(found.revisions) == MAX_NODES
    assert found.clipped
    assert f"stopped at {MAX_NODES} revisions" in lineage_page(found)


async def test_an_unknown_or_malformed_revision_is_refused() -> None:
    registry, state = InMemoryRegistry(), InMemoryStateStore()
    with pytest.raises(UnknownRevision):
        await lineage(registry, state, "no-such-revision")
    with pytest.raises(InvalidIdentifier):
        await lineage(registry, state, "<b>")


def test_the_task_graph_has_the_requires_edges_and_the_days_states() -> None:
    [workflow] = make_world().daemon.settings.workflows
    graph = resolve(root_task(workflow, date(2018, 10, 31)))
    job = graph.root.task_id
    assert {(e.source.partition("(")[0], e.target) for e in edges_of(graph)} == {
        ("LookupDaily", job), ("TrackEntity", job)}
    outcomes = {job: Outcome(job, Status.FAILED, HOSTILE)}
    states = {node.id: node.css for node in nodes_of(graph, outcomes)}
    assert states[job] == "s-failed"
    assert set(states.values()) == {"s-failed", "s-waiting"}  # the rest not evaluated yet
    page = graph_page("top_artists", date(2018, 10, 31), graph, outcomes,
                      (date(2018, 10, 30), None))
    assert "<script>" not in page
    assert 'href="/workflows/top_artists/graph?date=2018-10-30"' in page


def finished_run(task_id: str, minutes: int, state: RunState, updated: int) -> Run:
    start = datetime(2018, 11, 1, tzinfo=UTC)
    return Run(id=f"{task_id}{updated}", task_id=task_id, family="T", partition=DAY,
               fingerprint=str(updated), state=state, attempt=1, created=start,
               updated=start + timedelta(hours=updated),
               finished=start + timedelta(minutes=minutes))


def test_a_days_duration_is_its_latest_finished_run() -> None:
    runs = [finished_run("a", 2, RunState.FAILED, 1), finished_run("a", 5, RunState.SUCCEEDED, 2),
            finished_run("b", 1, RunState.SUCCEEDED, 1)]
    days = [(date(2018, 10, 2), "b"), (date(2018, 10, 1), "a"), (date(2018, 10, 3), "none")]
    bars = duration_bars(days, runs)
    assert [(bar.label, bar.value, bar.css) for bar in bars] == [
        ("2018-10-01", 300.0, "s-succeeded"), ("2018-10-02", 60.0, "s-succeeded")]


def test_the_latency_histogram_has_a_bar_per_bucket() -> None:
    histogram = Histogram("h", "help", LATENCY_BUCKETS)
    for seconds in (0.003, 0.004, 100):
        histogram.observe(seconds)
    bars = latency_bars(histogram)
    assert len(bars) == len(LATENCY_BUCKETS) + 1
    assert [(bar.label, bar.value) for bar in bars if bar.value] == [
        ("≤ 0.005 s", 2), ("> 30 s", 1)]
    assert "<svg" in svg.bars(bars, label="latency", unit="launches")


def test_the_run_page_links_registry_revisions_to_their_lineage_and_the_grid_its_graphs() -> None:
    run = Run(id="r", task_id="T()", family="T", partition=DAY, fingerprint="fp",
              state=RunState.SUCCEEDED, attempt=1, created=datetime(2018, 11, 1, tzinfo=UTC),
              updated=datetime(2018, 11, 1, tzinfo=UTC),
              inputs=(InputRevision("plays", "/p", "rev-1"),
                      InputRevision("table", "p:d.t", "p:d.t@2018-10-31T00:00:00+00:00")),
              outputs={"text": "rev-2"})
    page = pages.run_page(run)
    assert '<a href="/lineage/rev-1">rev-1</a>' in page
    assert '<a href="/lineage/rev-2">rev-2</a>' in page
    assert 'href="/lineage/p%3Ad.t' not in page  # a table's version names no revision
    grid = pages.grid(pages.GridPage(["a b"], [], [], 1, 1))
    assert 'href="/workflows/a%20b/graph"' in grid
