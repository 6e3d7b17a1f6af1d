"""Graph expansion: from the seed specs to the specs an agent also needs to read.

A spec rarely stands alone: what it depends on constrains it, what depends on it constrains
changes to it, its parent states the goal and its children the parts. Each neighbour enters with a
relevance that decays per hop by how strongly the link binds (a dependency binds more than a
"related" mention), so the packer spends tokens on close, binding neighbours first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ingest.specs.graph import SpecGraph

__all__ = ["LINK_DECAY", "Candidate", "expand"]

# Relevance kept per hop along each kind of link. Dependencies are followed transitively (up to
# `depth`); the other links one hop from a seed, since their neighbours' neighbours are rarely
# about the same thing.
LINK_DECAY = {
    "dependency": 0.6,  # the seed depends on it
    "dependent": 0.4,  # it depends on the seed
    "parent": 0.5,
    "child": 0.4,
    "related": 0.35,
}
_REASONS = {
    "dependency": "dependency of {}",
    "dependent": "depends on {}",
    "parent": "parent of {}",
    "child": "child of {}",
    "related": "related to {}",
}


@dataclass(frozen=True)
class Candidate:
    spec: str
    relevance: float  # 0..1, the seed's relevance times the decay along the path
    reason: str
    via: str | None = None  # the spec it was reached from; None for a seed
    link: str | None = None  # a LINK_DECAY key; None for a seed
    distance: int = 0


def expand(
    graph: SpecGraph,
    seeds: Mapping[str, tuple[float, str]],
    depth: int,
) -> list[Candidate]:
    """Seeds (spec -> (relevance, reason)) and their neighbours, most relevant first.

    Each spec appears once, with the most relevant way it was reached; ties go to the spec name
    so the result is the same on every run.
    """
    best: dict[str, Candidate] = {
        name: Candidate(name, relevance, reason) for name, (relevance, reason) in seeds.items()
    }

    def offer(candidate: Candidate) -> None:
        current = best.get(candidate.spec)
        if current is None or candidate.relevance > current.relevance:
            best[candidate.spec] = candidate

    if depth > 0:
        for name, (relevance, _) in sorted(seeds.items()):
            # The walk hands over the hop before each spec: looking it up per spec (a path search
            # each) made a wide fan-out quadratic.
            for upstream, distance, via in graph.reach(name, "upstream", depth):
                weight = relevance * LINK_DECAY["dependency"] ** distance
                offer(_neighbour(upstream, weight, "dependency", via, distance))
            one_hop = [("dependent", n) for n in graph.dependents.get(name, [])]
            one_hop += [("child", n) for n in graph.children.get(name, [])]
            one_hop += [("related", n) for n in graph.related.get(name, [])]
            if name in graph.parent:
                one_hop.append(("parent", graph.parent[name]))
            for link, neighbour in one_hop:
                offer(_neighbour(neighbour, relevance * LINK_DECAY[link], link, name, 1))
    return sorted(best.values(), key=lambda c: (-c.relevance, c.distance, c.spec))


def _neighbour(spec: str, relevance: float, link: str, via: str, distance: int) -> Candidate:
    return Candidate(spec, relevance, _REASONS[link].format(via), via, link, distance)
