"""``GET /lineage/{revision_id}``: what a revision was built from and what was built from
it, as a graph.

Upstream comes from the registry: each revision carries the ids of the inputs it was
built from. Downstream comes from the state store: a succeeded run records the input
revisions it consumed and the revisions it published, so the runs that consumed a
revision name what was built from it, in whichever workflow. The revision this one
replaced (the partition's one before it) is drawn too, with its inputs: a re-run shows
the input revisions of both builds. Bounded: :data:`MAX_DEPTH` steps each way, at most
:data:`MAX_NODES` revisions.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from html import escape

from orchestrator import validate
from orchestrator.daemon.ui import svg
from orchestrator.daemon.ui.pages import document, lineage_href, readable
from orchestrator.errors import InvalidIdentifier, UnknownRevision
from orchestrator.model import Revision, Run, RunState
from orchestrator.stores.registry.base import Registry
from orchestrator.stores.state.base import StateStore
from orchestrator.stores.state.claims import MAX_LIST

MAX_DEPTH = 3
MAX_NODES = 60


@dataclass
class Lineage:
    """The graph around ``focus``: each id met, the registry's revision or None (another
    input's version, such as a table's ``spec@modified``), and the edges between them."""

    focus: Revision
    revisions: dict[str, Revision | None] = field(default_factory=dict)
    edges: dict[tuple[str, str], str] = field(default_factory=dict)
    """(input, built from it) → the edge's class: "" or ``replaced`` (older → newer)."""
    clipped: bool = False

    def room(self, revision_id: str) -> bool:
        """Whether ``revision_id`` is drawn: known already, or there is room for it."""
        if revision_id in self.revisions:
            return True
        self.clipped |= len(self.revisions) >= MAX_NODES
        return not self.clipped


async def lineage(registry: Registry, state: StateStore, revision_id: str) -> Lineage:
    """InvalidIdentifier for an id no revision could have, UnknownRevision for an
    unknown one; the stores' errors as they come."""
    validate.revision_id(revision_id)
    focus = await registry.get(revision_id)
    found = Lineage(focus, {focus.id: focus})
    await _upstream(registry, found, [focus])
    await _replaced(registry, found)
    runs = await state.list_runs(state=RunState.SUCCEEDED, limit=MAX_LIST)
    await _downstream(registry, found, runs)
    return found


async def _upstream(registry: Registry, found: Lineage, frontier: list[Revision],
                    depth: int = MAX_DEPTH) -> None:
    for _ in range(depth):
        frontier = [parent for revision in frontier
                    for parent in await _link(registry, found, revision.lineage, revision.id)]


async def _link(registry: Registry, found: Lineage, inputs: Iterable[str],
                built: str, *, upstream: bool = True) -> list[Revision]:
    """Draw an edge between ``built`` and each of ``inputs`` (upstream) or each of what
    was built from it (not ``upstream``); the registry revisions met for the first time."""
    new: list[Revision] = []
    for other in inputs:
        if not found.room(other):
            break
        found.edges[(other, built) if upstream else (built, other)] = ""
        if other not in found.revisions:
            found.revisions[other] = revision = await _look_up(registry, other)
            if revision is not None:
                new.append(revision)
    return new


async def _replaced(registry: Registry, found: Lineage) -> None:
    """The partition's revision before the focus, and what it was built from."""
    focus = found.focus
    older = [r for r in await registry.list(focus.endpoint, focus.partition) if r.seq < focus.seq]
    if older and found.room(older[0].id):
        found.revisions[older[0].id] = older[0]
        found.edges[(older[0].id, focus.id)] = "replaced"
        await _upstream(registry, found, [older[0]], depth=1)


async def _downstream(registry: Registry, found: Lineage, runs: list[Run]) -> None:
    consumers: dict[str, list[Run]] = defaultdict(list)
    for run in runs:
        for consumed in run.inputs:
            consumers[consumed.revision_id].append(run)
    frontier = [found.focus.id]
    for _ in range(MAX_DEPTH):
        frontier = [built.id for revision_id in frontier for run in consumers[revision_id]
                    for built in await _link(registry, found, run.outputs.values(),
                                             revision_id, upstream=False)]


async def _look_up(registry: Registry, revision_id: str) -> Revision | None:
    try:
        validate.revision_id(revision_id)
        return await registry.get(revision_id)
    except (InvalidIdentifier, UnknownRevision):
        return None


def lineage_page(found: Lineage) -> str:
    focus = found.focus
    nodes = [_node(revision_id, revision, focus.id)
             for revision_id, revision in found.revisions.items()]
    edges = [svg.Edge(source, target, css) for (source, target), css in found.edges.items()]
    drawn = svg.graph(nodes, edges, label=f"lineage of revision {focus.id}")
    clipped = (f" The graph stopped at {MAX_NODES} revisions; open one at its edge to"
               " follow it further." if found.clipped else "")
    return document(f"charon: lineage of {focus.id}", "", "\n".join([
        f"<h1>Lineage of {escape(focus.endpoint)} {escape(focus.partition)}</h1>",
        f'<p>Revision <span class="mono">{escape(focus.id)}</span>, published'
        f' {readable(focus.created)}, at <span class="mono">{escape(focus.uri)}</span>.</p>',
        '<p class="note">Left to right: what each revision was built from, then what was'
        ' built from it (from the succeeded runs the state store lists, in every'
        ' workflow). A dashed arrow joins the revision this one replaced. Up to'
        f" {MAX_DEPTH} steps each way, at most {MAX_NODES} revisions.{clipped}"
        " Grey boxes are inputs outside the registry, such as tables.</p>",
        f'<div class="scroll">{drawn}</div>',
    ]))


def _node(revision_id: str, revision: Revision | None, focus: str) -> svg.Node:
    if revision is None:
        name, _, version = revision_id.rpartition("@")
        lines = (name, version) if name else (revision_id,)
        return svg.Node(revision_id, lines, f"input version {revision_id}", "outside")
    return svg.Node(
        revision_id, (revision.endpoint, f"{revision.partition} · {revision_id[:8]}"),
        f"{revision.endpoint} {revision.partition}\nrevision {revision_id}\n{revision.uri}"
        f"\npublished {readable(revision.created)}",
        "focus" if revision_id == focus else "revision", lineage_href(revision_id),
    )
