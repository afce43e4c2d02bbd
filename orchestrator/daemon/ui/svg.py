"""Graphs and bar charts drawn as SVG on the server: a layered layout computed here, so
no script draws anything and the Content-Security-Policy stays strict.

The look comes from classes styled in ``static/app.css`` (``.graph``, ``.chart``, the
state classes ``s-…``); every text is escaped and every label clipped to fit its box.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from itertools import pairwise

NODE_W, NODE_H, GAP_X, GAP_Y, PAD = 240, 42, 60, 14, 12
LABEL_CHARS = 34
SWEEPS = 4
"""Barycentre sweeps (down, then up) that order each layer to uncross edges."""


@dataclass(frozen=True)
class Node:
    id: str
    lines: tuple[str, ...]
    """At most two, clipped to fit the box: the first keeps its end (a long name's last
    part tells most), the second its start; ``title`` has the whole story."""
    title: str
    css: str = ""
    href: str | None = None


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    css: str = ""


def layers(ids: Sequence[str], edges: Sequence[Edge]) -> dict[str, int]:
    """Longest-path layering: a node sits one layer right of its furthest predecessor;
    then a node without one moves right up to the layer before its nearest successor,
    so an input sits next to what was built from it. Nodes on a cycle (none should be)
    are laid out as if the edge closing it were not there."""
    preds: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        preds[edge.target].append(edge.source)
    layer: dict[str, int] = {}
    visiting: set[str] = set()

    def depth(node: str) -> int:
        if node in layer:
            return layer[node]
        if node in visiting:
            return -1
        visiting.add(node)
        found = max((depth(p) for p in preds[node] if p in known), default=-1) + 1
        visiting.discard(node)
        layer[node] = found
        return found

    known = set(ids)
    for node in ids:
        depth(node)
    succs: dict[str, list[int]] = defaultdict(list)
    for edge in edges:
        if edge.source in known and edge.target in known:
            succs[edge.source].append(layer[edge.target])
    for node in ids:
        if not any(p in known for p in preds[node]) and succs[node]:
            layer[node] = max(min(succs[node]) - 1, 0)
    return layer


def ordered(layer: dict[str, int], edges: Sequence[Edge]) -> list[list[str]]:
    """Each layer's nodes top to bottom: first as given, then moved to the mean position
    of their neighbours in the layer before (or, sweeping up, after) them."""
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=-1) + 1)]
    for node, index in layer.items():
        columns[index].append(node)
    preds: dict[str, list[str]] = defaultdict(list)
    succs: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        if edge.source in layer and edge.target in layer:
            preds[edge.target].append(edge.source)
            succs[edge.source].append(edge.target)
    for sweep in range(SWEEPS):
        down = sweep % 2 == 0
        indices = range(1, len(columns)) if down else range(len(columns) - 2, -1, -1)
        for index in indices:
            beside = columns[index - 1] if down else columns[index + 1]
            position = {node: at for at, node in enumerate(beside)}
            neighbours = preds if down else succs
            columns[index] = _by_barycentre(columns[index], neighbours, position)
    return columns


def _by_barycentre(column: list[str], neighbours: dict[str, list[str]],
                   position: dict[str, int]) -> list[str]:
    def key(item: tuple[int, str]) -> float:
        at, node = item
        placed = [position[n] for n in neighbours[node] if n in position]
        return sum(placed) / len(placed) if placed else float(at)

    return [node for _, node in sorted(enumerate(column), key=key)]


def graph(nodes: Sequence[Node], edges: Sequence[Edge], *, label: str) -> str:
    """Columns left to right in dependency order, edges as arrows between boxes."""
    by_id = {node.id: node for node in nodes}
    edges = [e for e in edges if e.source in by_id and e.target in by_id]
    layer = layers(list(by_id), edges)
    hops = [_hops(edge, layer, index) for index, edge in enumerate(edges)]
    columns = ordered(layer, [Edge(a, b) for path in hops for a, b in pairwise(path)])
    tallest = max((len(column) for column in columns), default=0)
    where: dict[str, tuple[int, int]] = {}
    for index, column in enumerate(columns):
        top = PAD + (tallest - len(column)) * (NODE_H + GAP_Y) // 2
        for row, node in enumerate(column):
            where[node] = (PAD + index * (NODE_W + GAP_X), top + row * (NODE_H + GAP_Y))
    width = 2 * PAD + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    height = 2 * PAD + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    parts = [_svg_open(width, height, label, "graph"),
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5"'
             ' markerWidth="7" markerHeight="7" orient="auto-start-reverse">'
             '<path d="M0,0 L10,5 L0,10 z"/></marker></defs>']
    parts += [_edge(edge, [where[hop] for hop in path])
              for edge, path in zip(edges, hops, strict=True)]
    parts += [_node(by_id[node], *where[node]) for node in where if node in by_id]
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, label: str, css: str) -> str:
    return (f'<svg class="{css}" xmlns="http://www.w3.org/2000/svg" role="img"'
            f' width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
            f' aria-label="{escape(label)}">')


def _hops(edge: Edge, layer: dict[str, int], index: int) -> list[str]:
    """The edge's way through a slot of its own in each layer it crosses (added to
    ``layer``), so that it runs between boxes, never through one."""
    between = [f"\0{index}.{at}" for at in range(layer[edge.source] + 1, layer[edge.target])]
    for at, hop in enumerate(between, start=layer[edge.source] + 1):
        layer[hop] = at
    return [edge.source, *between, edge.target]


def _edge(edge: Edge, slots: list[tuple[int, int]]) -> str:
    """Curves from column to column, straight across the slots it passes."""
    x, y = slots[0][0] + NODE_W, slots[0][1] + NODE_H // 2
    way = [f"M{x},{y}"]
    for left, top in slots[1:]:
        middle, bend = top + NODE_H // 2, (left - x) // 2
        way.append(f"C{x + bend},{y} {left - bend},{middle} {left},{middle}")
        x, y = left + NODE_W, middle
        way.append(f"L{x},{y}")
    return (f'<path class="edge {escape(edge.css)}" data-from="{escape(edge.source)}"'
            f' data-to="{escape(edge.target)}" marker-end="url(#arrow)"'
            f' d="{" ".join(way[:-1])}"/>')


def _node(node: Node, x: int, y: int) -> str:
    texts = "".join(
        f'<text x="{x + 8}" y="{y + 17 + 16 * i}" class="{"sub" if i else "head"}">'
        f"{escape(clip(line) if i else clip_start(line))}</text>"
        for i, line in enumerate(node.lines[:2])
    )
    body = (f'<title>{escape(node.title)}</title><rect x="{x}" y="{y}" width="{NODE_W}"'
            f' height="{NODE_H}" rx="4"/>{texts}')
    if node.href is not None:
        body = f'<a href="{escape(node.href)}">{body}</a>'
    return f'<g class="node {escape(node.css)}" data-id="{escape(node.id)}">{body}</g>'


def clip(text: str, chars: int = LABEL_CHARS) -> str:
    return text if len(text) <= chars else text[:chars - 1] + "…"


def clip_start(text: str, chars: int = LABEL_CHARS) -> str:
    return text if len(text) <= chars else "…" + text[1 - chars:]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    title: str
    css: str = ""


BAR_W, BAR_GAP, CHART_H, AXIS_X, AXIS_Y, TOP = 22, 6, 180, 48, 70, 24


def bars(values: Sequence[Bar], *, label: str, unit: str) -> str:
    """A bar per value, left to right, on a y axis from 0 to the largest value (in
    ``unit``, written atop the axis), the bars' labels written slanting under them."""
    top = max((bar.value for bar in values), default=0.0) or 1.0
    width = AXIS_X + len(values) * (BAR_W + BAR_GAP) + PAD
    base = TOP + CHART_H
    parts = [_svg_open(width, base + AXIS_Y, label, "chart"),
             f'<text class="unit" x="{AXIS_X}" y="{TOP - 10}" text-anchor="middle">'
             f"{escape(unit)}</text>",
             f'<line class="axis" x1="{AXIS_X}" y1="{TOP}" x2="{AXIS_X}" y2="{base}"/>',
             f'<line class="axis" x1="{AXIS_X}" y1="{base}" x2="{width - PAD}" y2="{base}"/>']
    for tick in (0.0, top / 2, top):
        y = base - round(tick / top * CHART_H)
        parts.append(f'<text class="tick" x="{AXIS_X - 4}" y="{y + 4}" text-anchor="end">'
                     f"{_number(tick)}</text>")
    for index, bar in enumerate(values):
        x = AXIS_X + BAR_GAP + index * (BAR_W + BAR_GAP)
        h = round(bar.value / top * CHART_H)
        middle = x + BAR_W // 2
        parts.append(
            f'<g class="bar {escape(bar.css)}"><title>{escape(bar.title)}</title>'
            f'<rect x="{x}" y="{base - h}" width="{BAR_W}" height="{h}"/></g>'
            f'<text class="tick" x="{middle}" y="{base + 12}" text-anchor="end"'
            f' transform="rotate(-60 {middle} {base + 12})">{escape(clip(bar.label, 12))}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _number(value: float) -> str:
    return f"{value:.3g}"
