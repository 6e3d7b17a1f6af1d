"""A spec's dependency trees (what it needs, what needs it) and their text and mermaid renderings.

Trees are built from the SpecGraph: each node is expanded once. A spec met again on the same path
is a cycle and a spec met again elsewhere is a repeat; neither is expanded twice, so the output
stays linear in the size of the graph even with the corpus's 184 <-> 185/186/187 cycles. Links that
resolve to no spec (dangling) appear as leaves with the reason, because a missing dependency is
exactly what someone reading a tree needs to see.

Every walk and rendering here is iterative, and a tree is bounded (spec 074): MAX_TREE_DEPTH levels
and MAX_TREE_NODES entries per direction, whatever depth was asked for. Past 50 levels a tree is no
longer read as a tree, and its JSON would pass the ~250 levels of nesting that pydantic (the MCP
result) serializes. What is cut is marked, and `reachable` counts what is there.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from ingest.errors import AmbiguousSpecRef, InvalidInput, SpecNotFound, UnsafeReference
from ingest.specs.graph import Link, SpecGraph
from ingest.specs.store import Catalog

__all__ = [
    "DIRECTIONS",
    "MAX_TREE_DEPTH",
    "MAX_TREE_NODES",
    "dependency_map",
    "dependency_report",
    "render_mermaid",
    "render_tree",
]

DIRECTIONS = ("both", "upstream", "downstream")
MAX_TREE_DEPTH = 50  # levels below the spec, in each direction
MAX_TREE_NODES = 1000  # entries (specs and dangling links) in each direction's tree


def _dangling_reason(catalog: Catalog, link: Link) -> str:
    try:
        target = catalog.resolve_name(link.raw)
    except AmbiguousSpecRef as err:
        return f"ambiguous: matches {', '.join(err.candidates)}"
    except (SpecNotFound, UnsafeReference):
        return "no such spec"
    return "names itself" if target == link.source else "not loaded"


def dependency_map(catalog: Catalog, graph: SpecGraph) -> dict[str, Any]:
    """The whole picture, for drawing it: every spec as a node, every resolved `depends_on` and
    `parent` link as an edge (`in_cycle` when a depends_on cycle runs along it), each dangling
    link with its reason, and the cycles themselves (at most MAX_CYCLES)."""
    drawn = ("depends_on", "parent")
    cycles = graph.cycles()
    on_cycle = {(c[i], c[(i + 1) % len(c)]) for c in cycles for i in range(len(c))}
    nodes = [
        {
            "spec": spec.dir_name,
            "number": spec.number,
            "title": spec.title,
            "status": spec.meta.status,
            "priority": spec.meta.priority,
            "archived": spec.is_archived,
        }
        for spec in catalog
    ]
    edges = [
        {
            "from": link.source,
            "to": link.target,
            "kind": link.kind,
            "in_cycle": link.kind == "depends_on" and (link.source, link.target) in on_cycle,
        }
        for link in graph.links
        if link.kind in drawn and link.target is not None
    ]
    dangling = [
        {
            "from": link.source,
            "kind": link.kind,
            "ref": link.raw,
            "reason": _dangling_reason(catalog, link),
        }
        for link in graph.dangling()
        if link.kind in drawn
    ]
    return {"nodes": nodes, "edges": edges, "dangling": dangling, "cycles": cycles}


def _node(catalog: Catalog, name: str) -> dict[str, Any]:
    spec = catalog.by_name.get(name)
    if spec is None:  # a broken spec: it resolves, but could not be loaded
        return {"spec": name, "title": None, "status": None, "broken": True}
    return {"spec": name, "title": spec.title, "status": spec.meta.status}


class _TreeBuilder:
    """One direction's tree, built depth first with an explicit stack (spec 074): a chain
    thousands deep costs no recursion, and the tree stops at MAX_TREE_DEPTH levels and
    MAX_TREE_NODES entries however large the graph behind it is."""

    def __init__(self, catalog: Catalog, graph: SpecGraph, upstream: bool, depth: int | None):
        self.catalog = catalog
        self.edges_of = graph.depends if upstream else graph.dependents
        self.upstream = upstream
        self.depth = min(depth, MAX_TREE_DEPTH) if depth is not None else MAX_TREE_DEPTH
        self.room = MAX_TREE_NODES
        self.dangling_of: dict[str, list[Link]] = {}
        for link in graph.dangling():
            if link.kind == "depends_on":
                self.dangling_of.setdefault(link.source, []).append(link)

    def build(self, root: str) -> tuple[list[dict[str, Any]], int]:
        """The entries under `root`, and how many of its own entries were left out for room."""
        expanded = {root}
        on_path = {root}
        top: list[dict[str, Any]] = []
        # (spec, its level, its entries still to visit, the list they go to, its node)
        frames: list[tuple[str, int, Iterator[str | Link], list[dict[str, Any]], dict]]
        frames = [(root, 1, self._links(root), top, {})]
        while frames:
            name, level, pending, entries, _ = frames[-1]
            for nxt in pending:
                if self.room == 0:
                    return top, self._leave_out(frames)
                self.room -= 1
                if isinstance(nxt, Link):
                    reason = _dangling_reason(self.catalog, nxt)
                    entries.append(
                        {"spec": None, "ref": nxt.raw, "dangling": True, "reason": reason}
                    )
                    continue
                node = _node(self.catalog, nxt)
                entries.append(node)
                if nxt in on_path:
                    node["cycle"] = True
                elif nxt in expanded:
                    node["repeated"] = True
                elif level >= self.depth:
                    node["truncated"] = bool(self.edges_of.get(nxt))
                else:
                    expanded.add(nxt)
                    on_path.add(nxt)
                    node["children"] = []
                    frames.append((nxt, level + 1, self._links(nxt), node["children"], node))
                    break
            else:
                frames.pop()
                on_path.discard(name)
        return top, 0

    def _links(self, name: str) -> Iterator[str | Link]:
        """What an entry for `name` lists: the specs it links to, then (upstream) its dangling
        links, which name no spec but are exactly what a reader of the tree needs to see."""
        yield from self.edges_of.get(name, [])
        if self.upstream:
            yield from self.dangling_of.get(name, [])

    def _leave_out(self, frames: list) -> int:
        """Out of room: what each open entry still had to list becomes `children_omitted` on
        its node (the one just refused included); the root's own count is returned."""
        counts = [sum(1 for _ in pending) for _, _, pending, _, _ in frames]
        counts[-1] += 1
        for (_, _, _, _, owner), left in zip(frames[1:], counts[1:], strict=True):
            if left:
                owner["children_omitted"] = left
        return counts[0]


def _edges(name: str, tree: list[dict[str, Any]], upstream: bool, out: list) -> None:
    """Append the tree's edges to `out`, depth first in the tree's order, each edge once."""
    seen = {(edge["from"], edge["to"], bool(edge.get("dangling"))) for edge in out}
    stack = [(name, iter(tree))]
    while stack:
        source, children = stack[-1]
        for child in children:
            target = child["spec"] or child["ref"]
            ends = (source, target) if upstream else (target, source)
            key = (*ends, bool(child.get("dangling")))
            if key not in seen:
                seen.add(key)
                edge: dict[str, Any] = {"from": ends[0], "to": ends[1]}
                if child.get("dangling"):
                    edge["dangling"] = True
                out.append(edge)
            if child.get("children"):
                stack.append((child["spec"], iter(child["children"])))
                break
        else:
            stack.pop()


def dependency_report(
    catalog: Catalog,
    graph: SpecGraph,
    name: str,
    *,
    direction: str = "both",
    depth: int | None = None,
) -> dict[str, Any]:
    """The dependency trees of spec `name` (a resolved dir name), as JSON-ready data.

    `edges` are `{"from", "to"}` pairs meaning "from depends on to", covering both trees as
    shown. Each tree is cut at MAX_TREE_DEPTH levels and MAX_TREE_NODES entries: a cut node is
    `truncated`, a node whose children were left out for room says how many in
    `children_omitted` (the tree's top level in `upstream_omitted`/`downstream_omitted`), and
    `reachable` counts every spec each way, shown or not.
    """
    if direction not in DIRECTIONS:
        raise InvalidInput(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if depth is not None and depth < 1:
        raise InvalidInput(f"depth must be at least 1, not {depth}")
    report: dict[str, Any] = {**_node(catalog, name), "direction": direction, "depth": depth}
    report["max_depth"], report["max_nodes"] = MAX_TREE_DEPTH, MAX_TREE_NODES
    edges: list[dict[str, Any]] = []
    reachable: dict[str, int] = {}
    for side, upstream in (("upstream", True), ("downstream", False)):
        if direction in (side, "both"):
            tree, omitted = _TreeBuilder(catalog, graph, upstream, depth).build(name)
            report[side] = tree
            if omitted:
                report[f"{side}_omitted"] = omitted
            _edges(name, tree, upstream, edges)
            reachable[side] = len(graph.reach(name, side, depth))
    report["reachable"] = reachable
    report["edges"] = edges
    report["parent"] = graph.parent.get(name)
    report["children"] = list(graph.children.get(name, []))
    report["related"] = list(graph.related.get(name, []))
    report["supersedes"] = list(graph.supersedes.get(name, []))
    report["superseded_by"] = list(graph.superseded_by.get(name, []))
    report["dangling"] = [
        {"kind": link.kind, "ref": link.raw, "reason": _dangling_reason(catalog, link)}
        for link in graph.links
        if link.source == name and link.target is None
    ]
    report["cycles"] = graph.cycles_through(name)
    return report


def _label(node: dict[str, Any], cut_by_bound: bool) -> str:
    if node.get("dangling"):
        return f"{node['ref']}  (dangling: {node['reason']})"
    marks = [m for m in ("cycle", "repeated", "broken") if node.get(m)]
    if node.get("truncated"):
        marks.append(
            f"deeper: run deps on {node['spec']}" if cut_by_bound else "deeper: raise --depth"
        )
    if node.get("children_omitted"):
        marks.append(f"{node['children_omitted']} more not shown")
    status = f"  [{node['status']}]" if node.get("status") else ""
    note = f"  ({', '.join(marks)})" if marks else ""
    return f"{node['spec']}{status}{note}"


def _tree_lines(tree: list[dict[str, Any]], cut_by_bound: bool, out: list[str]) -> None:
    stack = [(tree, 0, "  ")]
    while stack:
        children, index, prefix = stack.pop()
        if index >= len(children):
            continue
        child = children[index]
        last = index == len(children) - 1
        out.append(f"{prefix}{'└── ' if last else '├── '}{_label(child, cut_by_bound)}")
        stack.append((children, index + 1, prefix))
        if child.get("children"):
            stack.append((child["children"], 0, prefix + ("    " if last else "│   ")))


def render_tree(report: dict[str, Any]) -> str:
    """The report as indented trees, one per direction."""
    title = f"  {report['title']}" if report.get("title") else ""
    lines = [f"{report['spec']}{title}"]
    headings = {"upstream": "depends on", "downstream": "needed by"}
    cut_by_bound = _cut_by_bound(report)
    for side, heading in headings.items():
        if side not in report:
            continue
        tree = report[side]
        lines.append(f"{heading}:" if tree else f"{heading}: (nothing)")
        _tree_lines(tree, cut_by_bound, lines)
        if report.get(f"{side}_omitted"):
            lines.append(f"  ... {report[f'{side}_omitted']} more not shown")
        if report.get(f"{side}_omitted") or _is_cut(tree, cut_by_bound):
            total = report.get("reachable", {}).get(side)
            lines.append(
                f"  (cut at {report.get('max_depth')} levels or {report.get('max_nodes')} "
                f"entries, of {total} specs in all: run deps on a cut spec to see past it)"
            )
    if report.get("parent"):
        lines.append(f"parent: {report['parent']}")
    for key, label in (("supersedes", "supersedes"), ("superseded_by", "superseded by")):
        if report.get(key):
            lines.append(f"{label}: {', '.join(report[key])}")
    for link in report.get("dangling", []):
        if link["kind"] != "depends_on":
            lines.append(f"dangling {link['kind']}: {link['ref']} ({link['reason']})")
    for cycle in report.get("cycles", []):
        lines.append("cycle: " + " -> ".join([*cycle, cycle[0]]))
    return "\n".join(lines)


def _cut_by_bound(report: dict[str, Any]) -> bool:
    """Whether a `truncated` node was cut by MAX_TREE_DEPTH rather than by the depth asked for."""
    asked = report.get("depth")
    return asked is None or asked > report.get("max_depth", MAX_TREE_DEPTH)


def _is_cut(tree: list[dict[str, Any]], cut_by_bound: bool) -> bool:
    """Whether a tree lost anything to its bounds (rather than to the depth asked for)."""
    stack = [tree]
    while stack:
        for node in stack.pop():
            if node.get("children_omitted") or (cut_by_bound and node.get("truncated")):
                return True
            if node.get("children"):
                stack.append(node["children"])
    return False


_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")


class _MermaidIds:
    """Node ids mermaid accepts (letters, digits, underscore), unique even if names collide."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.taken: set[str] = set()

    def __call__(self, name: str) -> str:
        if name not in self.ids:
            base = "s_" + _UNSAFE_ID.sub("_", name)
            candidate, suffix = base, 2
            while candidate in self.taken:
                candidate, suffix = f"{base}_{suffix}", suffix + 1
            self.ids[name] = candidate
            self.taken.add(candidate)
        return self.ids[name]


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", " ") + '"'


def render_mermaid(report: dict[str, Any]) -> str:
    """A mermaid `graph TD`: an arrow A --> B means A depends on B; dangling targets are dashed."""
    ident = _MermaidIds()
    lines = ["graph TD"]
    dangling = {edge["to"] for edge in report["edges"] if edge.get("dangling")}
    names = list(
        dict.fromkeys([report["spec"], *(n for e in report["edges"] for n in (e["from"], e["to"]))])
    )
    for name in names:
        label = f"{name} (missing)" if name in dangling else name
        lines.append(f"    {ident(name)}[{_mermaid_label(label)}]")
    for edge in report["edges"]:
        arrow = "-.->" if edge.get("dangling") else "-->"
        lines.append(f"    {ident(edge['from'])} {arrow} {ident(edge['to'])}")
    lines.append(f"    classDef focus stroke-width:3px;\n    class {ident(report['spec'])} focus;")
    if dangling:
        missing = ",".join(ident(name) for name in names if name in dangling)
        lines.append(f"    classDef missing stroke-dasharray: 4 4;\n    class {missing} missing;")
    for side in ("upstream", "downstream"):
        if report.get(f"{side}_omitted") or _is_cut(report.get(side, []), _cut_by_bound(report)):
            total = report.get("reachable", {}).get(side)
            lines.append(f"    %% {side}: cut at the tree bounds, {total} specs in all")
    return "\n".join(lines)
