"""A spec's dependency trees (what it needs, what needs it) and their text and mermaid renderings.

Trees are built from the SpecGraph: each node is expanded once. A spec met again on the same path
is a cycle and a spec met again elsewhere is a repeat; neither is expanded twice, so the output
stays linear in the size of the graph even with the corpus's 184 <-> 185/186/187 cycles. Links that
resolve to no spec (dangling) appear as leaves with the reason, because a missing dependency is
exactly what someone reading a tree needs to see.
"""

from __future__ import annotations

import re
from typing import Any

from ingest.errors import AmbiguousSpecRef, InvalidInput, SpecNotFound, UnsafeReference
from ingest.graph import Link, SpecGraph
from ingest.store import Catalog

__all__ = ["DIRECTIONS", "dependency_report", "render_mermaid", "render_tree"]

DIRECTIONS = ("both", "upstream", "downstream")


def _dangling_reason(catalog: Catalog, link: Link) -> str:
    try:
        target = catalog.resolve_name(link.raw)
    except AmbiguousSpecRef as err:
        return f"ambiguous: matches {', '.join(err.candidates)}"
    except (SpecNotFound, UnsafeReference):
        return "no such spec"
    return "names itself" if target == link.source else "not loaded"


def _node(catalog: Catalog, name: str) -> dict[str, Any]:
    spec = catalog.by_name.get(name)
    if spec is None:  # a broken spec: it resolves, but could not be loaded
        return {"spec": name, "title": None, "status": None, "broken": True}
    return {"spec": name, "title": spec.title, "status": spec.meta.status}


class _TreeBuilder:
    def __init__(self, catalog: Catalog, graph: SpecGraph, upstream: bool, depth: int | None):
        self.catalog = catalog
        self.edges_of = graph.depends if upstream else graph.dependents
        self.upstream = upstream
        self.depth = depth
        self.expanded: set[str] = set()
        self.dangling_of: dict[str, list[Link]] = {}
        for link in graph.dangling():
            if link.kind == "depends_on":
                self.dangling_of.setdefault(link.source, []).append(link)

    def children(self, name: str, path: tuple[str, ...]) -> list[dict[str, Any]]:
        self.expanded.add(name)
        result = []
        for nxt in self.edges_of.get(name, []):
            node = _node(self.catalog, nxt)
            if nxt in path:
                node["cycle"] = True
            elif nxt in self.expanded:
                node["repeated"] = True
            elif self.depth is not None and len(path) >= self.depth:
                node["truncated"] = bool(self.edges_of.get(nxt))
            else:
                node["children"] = self.children(nxt, (*path, nxt))
            result.append(node)
        if self.upstream:
            for link in self.dangling_of.get(name, []):
                result.append(
                    {
                        "spec": None,
                        "ref": link.raw,
                        "dangling": True,
                        "reason": _dangling_reason(self.catalog, link),
                    }
                )
        return result


def _edges(name: str, children: list[dict[str, Any]], upstream: bool, out: list) -> None:
    for child in children:
        target = child["spec"] or child["ref"]
        edge = {"from": name, "to": target} if upstream else {"from": target, "to": name}
        if child.get("dangling"):
            edge["dangling"] = True
        if edge not in out:
            out.append(edge)
        if child.get("children"):
            _edges(child["spec"], child["children"], upstream, out)


def dependency_report(
    catalog: Catalog,
    graph: SpecGraph,
    name: str,
    *,
    direction: str = "both",
    depth: int | None = None,
) -> dict[str, Any]:
    """The dependency trees of spec `name` (a resolved dir name), as JSON-ready data.

    `edges` are `{"from", "to"}` pairs meaning "from depends on to", covering both trees.
    """
    if direction not in DIRECTIONS:
        raise InvalidInput(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    if depth is not None and depth < 1:
        raise InvalidInput(f"depth must be at least 1, not {depth}")
    report: dict[str, Any] = {**_node(catalog, name), "direction": direction, "depth": depth}
    edges: list[dict[str, Any]] = []
    for side, upstream in (("upstream", True), ("downstream", False)):
        if direction in (side, "both"):
            tree = _TreeBuilder(catalog, graph, upstream, depth).children(name, (name,))
            report[side] = tree
            _edges(name, tree, upstream, edges)
    report["edges"] = edges
    report["parent"] = graph.parent.get(name)
    report["children"] = list(graph.children.get(name, []))
    report["related"] = list(graph.related.get(name, []))
    report["dangling"] = [
        {"kind": link.kind, "ref": link.raw, "reason": _dangling_reason(catalog, link)}
        for link in graph.links
        if link.source == name and link.target is None
    ]
    report["cycles"] = [cycle for cycle in graph.cycles() if name in cycle]
    return report


def _label(node: dict[str, Any]) -> str:
    if node.get("dangling"):
        return f"{node['ref']}  (dangling: {node['reason']})"
    marks = [m for m in ("cycle", "repeated", "broken") if node.get(m)]
    if node.get("truncated"):
        marks.append("deeper: raise --depth")
    status = f"  [{node['status']}]" if node.get("status") else ""
    note = f"  ({', '.join(marks)})" if marks else ""
    return f"{node['spec']}{status}{note}"


def _tree_lines(children: list[dict[str, Any]], prefix: str, out: list[str]) -> None:
    for index, child in enumerate(children):
        last = index == len(children) - 1
        out.append(f"{prefix}{'└── ' if last else '├── '}{_label(child)}")
        if child.get("children"):
            _tree_lines(child["children"], prefix + ("    " if last else "│   "), out)


def render_tree(report: dict[str, Any]) -> str:
    """The report as indented trees, one per direction."""
    title = f"  {report['title']}" if report.get("title") else ""
    lines = [f"{report['spec']}{title}"]
    headings = {"upstream": "depends on", "downstream": "needed by"}
    for side, heading in headings.items():
        if side not in report:
            continue
        tree = report[side]
        lines.append(f"{heading}:" if tree else f"{heading}: (nothing)")
        _tree_lines(tree, "  ", lines)
    if report.get("parent"):
        lines.append(f"parent: {report['parent']}")
    for link in report.get("dangling", []):
        if link["kind"] != "depends_on":
            lines.append(f"dangling {link['kind']}: {link['ref']} ({link['reason']})")
    for cycle in report.get("cycles", []):
        lines.append("cycle: " + " -> ".join([*cycle, cycle[0]]))
    return "\n".join(lines)


_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_]")


class _MermaidIds:
    """Node ids mermaid accepts (letters, digits, underscore), unique even if names collide."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def __call__(self, name: str) -> str:
        if name not in self.ids:
            base = "s_" + _UNSAFE_ID.sub("_", name)
            candidate, suffix = base, 2
            while candidate in self.ids.values():
                candidate, suffix = f"{base}_{suffix}", suffix + 1
            self.ids[name] = candidate
        return self.ids[name]


def _mermaid_label(text: str) -> str:
    return '"' + text.replace('"', "#quot;").replace("\n", " ") + '"'


def render_mermaid(report: dict[str, Any]) -> str:
    """A mermaid `graph TD`: an arrow A --> B means A depends on B; dangling targets are dashed."""
    ident = _MermaidIds()
    lines = ["graph TD"]
    dangling = {edge["to"] for edge in report["edges"] if edge.get("dangling")}
    names = [report["spec"]]
    for edge in report["edges"]:
        names.extend(n for n in (edge["from"], edge["to"]) if n not in names)
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
    return "\n".join(lines)
