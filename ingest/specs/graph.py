"""The spec graph: depends_on, related and parent links, resolved strictly against a Catalog.

Used by validation (dangling links, cycles), by updates (a new dependency must not close a cycle)
and by the read path (context bundles expand along it). A link that does not resolve to exactly one
spec is kept as dangling rather than guessed.

Every walk here is iterative, with its own stack or queue: a chain thousands of specs deep is as
cheap as a short one and never meets Python's recursion limit (spec 074).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from .store import Catalog

__all__ = ["MAX_CYCLES", "Link", "SpecGraph", "graph_of"]

# Elementary cycles can be exponentially many (a dense cluster of mutual dependencies); what a
# reader needs is that there are cycles and a few of them to break. Past this many, stop.
MAX_CYCLES = 100


@dataclass(frozen=True)
class Link:
    source: str
    kind: str  # "depends_on", "related", "parent" or "supersedes"
    raw: str  # the reference as written in the frontmatter
    target: str | None  # the resolved dir name, None when dangling or ambiguous


@dataclass
class SpecGraph:
    links: list[Link] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.depends: dict[str, list[str]] = {}
        self.dependents: dict[str, list[str]] = {}
        self.related: dict[str, list[str]] = {}
        self.children: dict[str, list[str]] = {}
        self.parent: dict[str, str] = {}
        self.supersedes: dict[str, list[str]] = {}
        self.superseded_by: dict[str, list[str]] = {}
        for link in self.links:
            if link.target is None:
                continue
            if link.kind == "depends_on":
                _add(self.depends, link.source, link.target)
                _add(self.dependents, link.target, link.source)
            elif link.kind == "related":
                # related is symmetric: either side naming the other is enough.
                _add(self.related, link.source, link.target)
                _add(self.related, link.target, link.source)
            elif link.kind == "parent":
                self.parent[link.source] = link.target
                _add(self.children, link.target, link.source)
            elif link.kind == "supersedes":
                # Either side may say it: the new spec `supersedes`, the old `superseded_by`.
                _add(self.supersedes, link.source, link.target)
                _add(self.superseded_by, link.target, link.source)

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> SpecGraph:
        links = []
        for spec in catalog:
            refs = [("depends_on", r) for r in spec.meta.depends_on]
            refs += [("related", r) for r in spec.meta.related]
            refs += [("supersedes", r) for r in spec.meta.supersedes]
            if spec.meta.parent:
                refs.append(("parent", spec.meta.parent))
            for kind, raw in refs:
                target = catalog.try_resolve(raw)
                if target == spec.dir_name:
                    target = None  # a self-link is treated as dangling, never as a loop to follow
                links.append(Link(spec.dir_name, kind, raw, target))
            for raw in spec.meta.superseded_by:
                # Stored as the newer spec's `supersedes` link, so one kind means one direction.
                newer = catalog.try_resolve(raw)
                if newer == spec.dir_name:
                    newer = None
                if newer is None:
                    links.append(Link(spec.dir_name, "superseded_by", raw, None))
                else:
                    links.append(Link(newer, "supersedes", spec.dir_name, spec.dir_name))
        return cls(links)

    def dangling(self) -> list[Link]:
        return [link for link in self.links if link.target is None]

    def walk(
        self, start: str, direction: str = "upstream", depth: int | None = None
    ) -> list[tuple[str, int]]:
        """(spec, distance) reachable from `start` along depends_on ("upstream") or its reverse
        ("downstream"), breadth first, each spec once, `start` excluded."""
        return [(name, distance) for name, distance, _ in self.reach(start, direction, depth)]

    def reach(
        self, start: str, direction: str = "upstream", depth: int | None = None
    ) -> list[tuple[str, int, str]]:
        """As `walk`, with the spec each one was first reached from: the hop before it on a
        shortest path from `start`."""
        edges = self.depends if direction == "upstream" else self.dependents
        seen = {start}
        order: list[tuple[str, int, str]] = []
        queue = deque([(start, 0)])
        while queue:
            node, distance = queue.popleft()
            if depth is not None and distance >= depth:
                continue
            for nxt in edges.get(node, []):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append((nxt, distance + 1, node))
                    queue.append((nxt, distance + 1))
        return order

    def ancestors(self, start: str) -> list[str]:
        """The parent chain above `start`, nearest first; it stops where the chain loops back."""
        chain: list[str] = []
        seen = {start}
        node = self.parent.get(start)
        while node is not None and node not in seen:
            chain.append(node)
            seen.add(node)
            node = self.parent.get(node)
        return chain

    def cycles(self, limit: int = MAX_CYCLES) -> list[list[str]]:
        """Elementary depends_on cycles, each rotated to start at its smallest name, sorted; at
        most `limit` of them. Cycles of any length are found, in time linear in the graph per
        cycle (Johnson's algorithm), however the links are arranged."""
        found: list[list[str]] = []
        pending = [c for c in _strong_components(self.depends, self.depends) if len(c) > 1]
        while pending and len(found) < limit:
            component = pending.pop()
            start = min(component)
            inside = set(component)
            adjacency = {n: [m for m in self.depends.get(n, []) if m in inside] for n in component}
            for cycle in _circuits(start, adjacency):
                found.append(cycle)
                if len(found) >= limit:
                    break
            # Every cycle through `start` is found; the rest of the component may hold others.
            rest = {n: [m for m in adjacency[n] if m != start] for n in component if n != start}
            pending.extend(c for c in _strong_components(rest, rest) if len(c) > 1)
        return sorted(found)

    def cycles_through(self, name: str, limit: int = MAX_CYCLES) -> list[list[str]]:
        """The elementary depends_on cycles `name` is on, as `cycles` shows them, at most `limit`."""
        component = self._component_of(name)
        if len(component) < 2:
            return []
        adjacency = {n: [m for m in self.depends.get(n, []) if m in component] for n in component}
        found = []
        for cycle in _circuits(name, adjacency):
            pivot = cycle.index(min(cycle))
            found.append(cycle[pivot:] + cycle[:pivot])
            if len(found) >= limit:
                break
        return sorted(found)

    def _component_of(self, name: str) -> set[str]:
        """The specs on some depends_on cycle with `name`: reachable from it and reaching it."""
        down = {name, *(n for n, _, _ in self.reach(name, "upstream"))}
        up = {name, *(n for n, _, _ in self.reach(name, "downstream"))}
        return down & up

    def path_between(self, source: str, target: str) -> list[str] | None:
        """A depends_on path from source to target, if one exists."""
        previous: dict[str, str | None] = {source: None}
        queue = deque([source])
        while queue:
            node = queue.popleft()
            if node == target:
                path = [node]
                while previous[path[-1]] is not None:
                    path.append(previous[path[-1]])  # type: ignore[arg-type]
                return path[::-1]
            for nxt in self.depends.get(node, []):
                if nxt not in previous:
                    previous[nxt] = node
                    queue.append(nxt)
        return None

    def would_cycle(self, source: str, new_dependency: str) -> list[str] | None:
        """The cycle that `source depends_on new_dependency` would close, or None."""
        if source == new_dependency:
            return [source, source]
        back = self.path_between(new_dependency, source)
        return [source, *back] if back else None


def _add(mapping: dict[str, list[str]], key: str, value: str) -> None:
    values = mapping.setdefault(key, [])
    if value not in values:
        values.append(value)


def _strong_components(
    nodes: Mapping[str, Sequence[str]], edges: Mapping[str, Sequence[str]]
) -> list[list[str]]:
    """Tarjan's strongly connected components of the graph over `nodes` (and what their edges
    reach), iteratively; each component's names sorted, components by their smallest name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in sorted(nodes):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work: list[tuple[str, Iterator[str]]] = [(root, iter(edges.get(root, ())))]
        while work:
            node, pending = work[-1]
            for nxt in pending:
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(edges.get(nxt, ()))))
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            else:
                work.pop()
                if work:
                    caller = work[-1][0]
                    low[caller] = min(low[caller], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(sorted(component))
    return sorted(components)


def _circuits(start: str, adjacency: Mapping[str, Sequence[str]]) -> Iterator[list[str]]:
    """Every elementary cycle through `start` inside one strongly connected component, each
    beginning at `start`: Johnson's circuit search, with explicit stacks instead of recursion."""
    path = [start]
    blocked = {start}
    blocked_by: dict[str, set[str]] = {}
    closed = [False]
    stack = [iter(adjacency[start])]
    while stack:
        for nxt in stack[-1]:
            if nxt == start:
                yield path[:]
                closed[-1] = True
            elif nxt not in blocked:
                path.append(nxt)
                closed.append(False)
                stack.append(iter(adjacency[nxt]))
                blocked.add(nxt)
                break
        else:
            stack.pop()
            node = path.pop()
            if closed.pop():
                if closed:
                    closed[-1] = True
                unblock = [node]
                while unblock:
                    free = unblock.pop()
                    if free in blocked:
                        blocked.discard(free)
                        unblock.extend(blocked_by.pop(free, ()))
            else:
                for nxt in adjacency[node]:
                    blocked_by.setdefault(nxt, set()).add(node)


def graph_of(catalog: Catalog) -> SpecGraph:
    """The graph of one catalog version, built once and kept on that version (spec 077): the
    validator, dependency reports, search marks and bundles all read the same one."""
    return catalog.derive("graph", lambda: SpecGraph.from_catalog(catalog))
