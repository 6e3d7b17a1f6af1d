"""Search across projects: the three dev corpora as three projects of one server (spec 096).

Times, query by query in turn (so each sees the same load), over every dev query of every corpus:
the query embedding alone (the floor), a hybrid search of the query's own project, and the same
search across all three projects, merged. Each timed search gets a query text no earlier call has
embedded (a trailing space per round: the same vector, a new cache key), so the across search
pays one embedding, as a served query does. Quality across projects is `make eval`'s
(tests.bench.eval_projects).

Indexes are the ones `make eval` keeps under .specmem-eval (built here when missing).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

from ingest.index.embedding import load_embedder
from retriever.evaluation.evaluate import read_queries
from retriever.projects import ProjectEntry, Projects, ProjectTable
from retriever.projects.across import search
from tests.bench.eval_corpora import DEFAULT_CORPORA, DEFAULT_DATA_ROOT, find_corpora

ROUNDS = 3


def _p(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p99_ms": round(ordered[int(0.99 * (len(ordered) - 1))] * 1000, 2),
        "n": len(ordered),
    }


def run(report: dict[str, Any], corpora_dir: Path = DEFAULT_CORPORA) -> None:
    corpora = find_corpora(corpora_dir)
    entries = tuple(
        ProjectEntry(c.name, c.specs, (DEFAULT_DATA_ROOT / c.name).absolute()) for c in corpora
    )
    projects = Projects(ProjectTable(entries))
    asked: list[tuple[str, str]] = []
    for corpus in corpora:
        projects.get(corpus.name).memory.ingest()
        for path in corpus.query_files:
            asked += [(corpus.name, q["query"]) for q in read_queries(path)]
    floor = load_embedder(projects.all()[0].memory.settings)
    floor.embed_query("warm up")
    for _, query in asked[:20]:  # warm every project's index and the shared model
        search(projects, None, query, limit=10)
    samples: dict[str, list[float]] = {"embed": [], "own": [], "across": []}
    for round_ in range(ROUNDS):
        for name, query in asked:
            fresh = query + " " * (round_ + 1)
            own = projects.get(name).memory
            calls = (
                ("embed", floor.embed_query, (fresh,), {}),
                ("own", own.search, (fresh + "\t",), {"limit": 10}),
                ("across", search, (projects, None, fresh + "\n"), {"limit": 10}),
            )
            for label, call, args, options in calls:
                started = time.perf_counter()
                call(*args, **options)
                samples[label].append(time.perf_counter() - started)
    figures = {label: _p(values) for label, values in samples.items()}
    floor_ms = figures["embed"]["p50_ms"]
    for label in ("own", "across"):
        figures[label]["x_embedding"] = round(figures[label]["p50_ms"] / floor_ms, 2)
    figures["projects"] = len(corpora)
    report["projects"] = figures
    print(
        f"   {len(asked)} dev queries x {ROUNDS}: embedding p50 {floor_ms} ms; own project "
        f"{figures['own']['p50_ms']} ms ({figures['own']['x_embedding']}x); across "
        f"{len(corpora)} projects {figures['across']['p50_ms']} ms "
        f"({figures['across']['x_embedding']}x), p99 {figures['across']['p99_ms']} ms"
    )
