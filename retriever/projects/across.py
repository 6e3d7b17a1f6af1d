"""Reads across projects: search, context and listings over every project in a request's scope.

Each project ranks its own specs with its own index, and the rankings are merged keeping each
project's order, by the embedding cosine of each project's next hit (`merge`; spec 096 measures it
against reciprocal rank and the fused score, on the three dev corpora served together). Every
hit, item and listed spec then carries its `project`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ingest.errors import (
    BackendUnavailable,
    IndexDamaged,
    IndexMismatch,
    InvalidInput,
    NoIndex,
    ProjectRequired,
    SpecmemError,
    StorageUnavailable,
)
from ingest.specs.model import Spec

from .registry import Project, Projects

__all__ = [
    "MERGES",
    "ProjectBundle",
    "ProjectHits",
    "context",
    "list_specs",
    "merge",
    "search",
    "search_events",
    "validate",
]

RRF_K = 60
MERGES = ("cosine", "rrf", "score")
ALSO_RELEVANT = 3  # other projects' best hits a cross-project bundle names in its notes
# What is wrong with one project's index or storage, not with the request: a read across
# projects answers from the others and names the one it skipped.
PROJECT_FAULTS = (NoIndex, IndexDamaged, IndexMismatch, BackendUnavailable, StorageUnavailable)


@dataclass
class ProjectHits:
    """A ranked answer across projects, and the projects that could not answer (no index yet,
    a damaged index, its storage unavailable), each with the error code it answered."""

    hits: list[Any]
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self, query: str, mode: str) -> dict[str, Any]:
        data: dict[str, Any] = {"query": query, "mode": mode, "results": self.hits}
        if self.skipped:
            data["projects_skipped"] = self.skipped
        return data


def search(
    projects: Projects, name: str | None, query: str, *, merge_by: str = "cosine", **options: Any
) -> ProjectHits:
    """`SpecMemory.search` in every project in scope (`options` are its keyword arguments),
    merged into one ranking of at most `options["limit"]` hits."""
    scope = projects.scope(name)
    if not projects.named:
        return ProjectHits(scope[0].memory.search(query, **options))
    ranked: list[list[Any]] = []
    skipped: list[dict[str, str]] = []
    faults: list[SpecmemError] = []
    for project in scope:
        try:
            hits = project.memory.search(query, **options)
        except PROJECT_FAULTS as err:
            if len(scope) == 1:
                raise
            reason = str(err)
            if isinstance(err, NoIndex) and project.name in projects.building:
                reason = f"its first index is being built: {reason}"
            skipped.append({"project": str(project.name), "code": err.code, "reason": reason})
            faults.append(err)
            continue
        for hit in hits:
            hit.extra["project"] = project.name
        ranked.append(hits)
    if not ranked and faults:
        worse = [err for err in faults if not isinstance(err, NoIndex)]
        if worse:  # a damaged or unreachable index says so, not "no index yet"
            raise worse[0]
        raise NoIndex("no project has an index yet: " + "; ".join(s["reason"] for s in skipped))
    merged = merge(ranked, options.get("limit", 10), merge_by)
    return ProjectHits(merged, skipped)


def merge(ranked: Sequence[Sequence[Any]], limit: int, by: str = "cosine") -> list[Any]:
    """One ranking from several projects' rankings, renumbered from 1.

    "cosine" (the default) keeps each project's own order and, at each step, takes the head of
    the project whose next hit is closest to the query by the embedding's cosine: the one score
    on one scale in every project (one model, one query vector), where BM25 and the fused score
    are relative to their corpus. In lexical mode, where no cosine is computed, the heads
    compare by BM25. "rrf" interleaves by rank; "score" sorts by the fused score (both measured
    and rejected in spec 096). Ties keep the projects' order, so the answer is deterministic.
    """
    if by not in MERGES:
        raise InvalidInput(f"merge {by!r}: expected one of {', '.join(MERGES)}")
    if by == "cosine":
        heads = [list(hits) for hits in ranked]
        merged: list[Any] = []
        while len(merged) < limit and any(heads):
            best = max((h for h in heads if h), key=lambda h: _closeness(h[0]))
            merged.append(best.pop(0))
    else:
        scored: list[tuple[float, int, int, Any]] = []
        for which, hits in enumerate(ranked):
            for position, hit in enumerate(hits):
                value = 1.0 / (RRF_K + position + 1) if by == "rrf" else float(hit.score)
                scored.append((-value, position, which, hit))
        scored.sort(key=lambda row: row[:3])
        merged = [row[3] for row in scored[:limit]]
    return [replace(hit, rank=rank) for rank, hit in enumerate(merged, start=1)]


def _closeness(hit: Any) -> tuple[float, float]:
    components = getattr(hit, "components", {}) or {}
    dense = components.get("dense")
    lexical = components.get("lexical")
    return (float(dense) if dense is not None else float("-inf"), float(lexical or 0.0))


@dataclass
class ProjectBundle:
    """A context bundle built in one project; `project` marks it and each item."""

    project: str | None
    bundle: Any

    def to_dict(self) -> dict[str, Any]:
        data = self.bundle.to_dict()
        if self.project is None:
            return data
        for item in data["items"]:
            item["project"] = self.project
        return {"project": self.project, **data}


def context(
    projects: Projects,
    name: str | None,
    query: str | None = None,
    *,
    specs: Sequence[str] = (),
    **options: Any,
) -> ProjectBundle:
    """A bundle is built inside one project, where its dependencies live: the one named, the
    one every named spec is in, or the one of the best hit across projects for `query`; the
    best hits of the other projects are named in its notes, for the agent to ask for next."""
    if not projects.named:
        memory = projects.scope(name)[0].memory
        return ProjectBundle(None, memory.context(query, specs=specs, **options))
    if specs:
        project, local = _one_project_of(projects, name, specs)
        return ProjectBundle(project.name, project.memory.context(query, specs=local, **options))
    if name is not None or not query:
        project = projects.one(name)
        return ProjectBundle(project.name, project.memory.context(query, **options))
    found = search(projects, None, query, limit=ALSO_RELEVANT + 1)
    if not found.hits:  # nothing ranks anywhere: the default project's (empty-handed) bundle
        try:
            project = projects.one(None)
        except ProjectRequired:
            project = projects.all()[0]
        return ProjectBundle(project.name, project.memory.context(query, **options))
    best = projects.get(found.hits[0].extra["project"])
    bundle = best.memory.context(query, **options)
    others = [hit for hit in found.hits if hit.extra["project"] != best.name]
    if others:
        named = ", ".join(f"{hit.extra['project']}:{hit.spec} ({hit.title})" for hit in others)
        bundle.notes.append(f"built in project {best.name}; also relevant elsewhere: {named}")
    return ProjectBundle(best.name, bundle)


def _one_project_of(
    projects: Projects, name: str | None, refs: Sequence[str]
) -> tuple[Project, list[str]]:
    resolved = [projects.spec(name, ref) for ref in refs]
    names = sorted({str(project.name) for project, _ in resolved})
    if len(names) > 1:
        raise InvalidInput(
            f"specs {', '.join(refs)} are in several projects ({', '.join(names)}): a bundle is "
            "built in one project; ask for each project's specs separately"
        )
    return resolved[0][0], [str(local) for _, local in resolved]


def list_specs(projects: Projects, name: str | None, **filters: Any) -> list[tuple[Project, Spec]]:
    """Every project's matching specs, project by project, each with its project."""
    return [
        (project, spec)
        for project in projects.scope(name)
        for spec in project.memory.list_specs(**filters)
    ]


def search_events(
    projects: Projects,
    name: str | None,
    query: str | None = None,
    *,
    spec: str | None = None,
    limit: int = 50,
    offset: int = 0,
    **filters: Any,
) -> list[dict[str, Any]]:
    """`SpecMemory.search_events` in the project of `spec`, or in every project in scope, newest
    first across all of them (each log stores `at` as the same normalized UTC text, so the text
    orders them); on a server of several projects each event carries its `project`."""
    if spec is not None:
        project, local = projects.spec(name, spec)
        scope, ref = [project], str(local)
    else:
        scope, ref = projects.scope(name), None
    if not projects.named:
        memory = scope[0].memory
        return memory.search_events(query, spec=ref, limit=limit, offset=offset, **filters)
    merged: list[tuple[str, int, int, dict[str, Any]]] = []
    for which, project in enumerate(scope):
        # Each log's first offset + limit events hold every one the merged page can show.
        found = project.memory.search_events(
            query, spec=ref, limit=offset + limit, offset=0, **filters
        )
        for event in found:
            merged.append((str(event.get("at") or ""), -which, int(event.get("id") or 0), event))
            event["project"] = project.name
    merged.sort(key=lambda row: row[:3], reverse=True)
    return [row[3] for row in merged[offset : offset + limit]]


def validate(projects: Projects, name: str | None, spec: str | None = None) -> dict[str, Any]:
    """`SpecMemory.validate` as a read: one spec (in whichever project holds it), the project
    named, or, on a server of several, every project, each problem with its `project` and the
    counts summed (`projects` gives each one's own). `ok` only when every project is."""
    if spec is not None:
        project, ref = projects.spec(name, spec)
        return _marked(project, project.memory.validate(ref).to_dict())
    scope = projects.scope(name)
    if len(scope) == 1:
        return _marked(scope[0], scope[0].memory.validate(None).to_dict())
    reports = {str(p.name): _marked(p, p.memory.validate(None).to_dict()) for p in scope}
    return {
        "ok": all(report["ok"] for report in reports.values()),
        "errors": sum(report["errors"] for report in reports.values()),
        "warnings": sum(report["warnings"] for report in reports.values()),
        "checked": sum(report["checked"] for report in reports.values()),
        "problems": [problem for report in reports.values() for problem in report["problems"]],
        "projects": {
            name: {key: report[key] for key in ("ok", "errors", "warnings", "checked")}
            for name, report in reports.items()
        },
    }


def _marked(project: Project, report: dict[str, Any]) -> dict[str, Any]:
    if project.name is None:
        return report
    for problem in report["problems"]:
        problem["project"] = project.name
    return {"project": project.name, **report}
