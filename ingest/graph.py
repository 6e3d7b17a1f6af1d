"""The spec graph: depends_on, related and parent links, resolved strictly against a Catalog.

Used by validation (dangling links, cycles), by updates (a new dependency must not close a cycle)
and by the read path (context bundles expand along it). A link that does not resolve to exactly one
spec is kept as dangling rather than guessed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .store import Catalog

__all__ = ["Link", "SpecGraph"]


@dataclass(frozen=True)
class Link:
    source: str
    kind: str  # "depends_on", "related" or "parent"
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

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> SpecGraph:
        links = []
        for spec in catalog:
            refs = [("depends_on", r) for r in spec.meta.depends_on]
            refs += [("related", r) for r in spec.meta.related]
            if spec.meta.parent:
                refs.append(("parent", spec.meta.parent))
            for kind, raw in refs:
                target = catalog.try_resolve(raw)
                if target == spec.dir_name:
                    target = None  # a self-link is treated as dangling, never as a loop to follow
                links.append(Link(spec.dir_name, kind, raw, target))
        return cls(links)

    def dangling(self) -> list[Link]:
        return [link for link in self.links if link.target is None]

    def walk(
        self, start: str, direction: str = "upstream", depth: int | None = None
    ) -> list[tuple[str, int]]:
        """(spec, distance) reachable from `start` along depends_on ("upstream") or its reverse
        ("downstream"), breadth first, each spec once, `start` excluded."""
        edges = self.depends if direction == "upstream" else self.dependents
        seen = {start}
        order: list[tuple[str, int]] = []
        queue = deque([(start, 0)])
        while queue:
            node, distance = queue.popleft()
            if depth is not None and distance >= depth:
                continue
            for nxt in edges.get(node, []):
                if nxt not in seen:
                    seen.add(nxt)
                    order.append((nxt, distance + 1))
                    queue.append((nxt, distance + 1))
        return order

    def cycles(self) -> list[list[str]]:
        """Every elementary depends_on cycle, each rotated to start at its smallest name."""
        found: set[tuple[str, ...]] = set()
        for start in sorted(self.depends):
            stack = [(start, [start])]
            while stack:
                node, path = stack.pop()
                for nxt in self.depends.get(node, []):
                    if nxt == start:
                        cycle = path[:]
                        pivot = cycle.index(min(cycle))
                        found.add(tuple(cycle[pivot:] + cycle[:pivot]))
                    elif nxt not in path and nxt > start and len(path) < 64:
                        stack.append((nxt, [*path, nxt]))
        return [list(c) for c in sorted(found)]

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
