"""Search across projects, judged: every dev corpus served as one project of one server.

    python -m tests.bench.eval_projects [--corpora DIR] [--data-root DIR]

Each query of each corpus is asked of all the corpora at once (retriever.projects.across) and
must find its spec in its own project, `project:spec`. Rows: asking only the query's own project
(what a server of one folder answers: the ceiling), then the merges across all projects, per
corpus and kind and pooled, with a paired bootstrap of each against the default merge (cosine)
(spec 096). Indexes are the ones `make eval` builds under .specmem-eval.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retriever.evaluation.bootstrap import paired_bootstrap
from retriever.evaluation.evaluate import evaluate_queries, read_queries
from retriever.projects import ProjectEntry, Projects, ProjectTable
from retriever.projects.across import MERGES, search
from tests.bench.eval_corpora import (
    DEFAULT_CORPORA,
    DEFAULT_DATA_ROOT,
    find_corpora,
    kind_of,
)

METRICS = ("mrr@10", "recall@1", "recall@10")


class QualifiedCatalog:
    """A corpus's catalog whose names carry its project, as answers across projects do."""

    def __init__(self, project: str, catalog: Any):
        self.project, self.catalog = project, catalog

    def resolve_name(self, ref: object) -> str:
        return f"{self.project}:{self.catalog.resolve_name(ref)}"

    @property
    def broken(self) -> dict[str, Any]:
        return {f"{self.project}:{name}": why for name, why in self.catalog.broken.items()}


def ranker(projects: Projects, name: str | None, merge_by: str) -> Callable[[str, int], list[str]]:
    def ranked(query: str, limit: int) -> list[str]:
        found = search(projects, name, query, limit=limit, merge_by=merge_by)
        return [f"{hit.extra['project']}:{hit.spec}" for hit in found.hits]

    return ranked


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpora", type=Path, default=DEFAULT_CORPORA)
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA_ROOT)
    args = parser.parse_args(argv)
    corpora = find_corpora(args.corpora)
    entries = tuple(
        ProjectEntry(c.name, c.specs, (args.data_root / c.name).absolute()) for c in corpora
    )
    projects = Projects(ProjectTable(entries))
    for project in projects.all():
        project.memory.ingest()  # a no-op when `make eval` built it
    runs = {"own project": {}, **{f"across, {m}": {} for m in MERGES}}
    for corpus in corpora:
        catalog = QualifiedCatalog(corpus.name, projects.get(corpus.name).memory.catalog())
        for path in corpus.query_files:
            kind = kind_of(path)
            queries = read_queries(path)
            for label in runs:
                name = corpus.name if label == "own project" else None
                merge_by = "cosine" if label == "own project" else label.split(", ")[1]
                report = evaluate_queries(
                    queries, ranker(projects, name, merge_by), catalog, details=True
                )
                runs[label][(corpus.name, kind)] = report["queries"]
    print(f"{'run':<18} {'corpus/kind':<18} {'n':>4}  " + "  ".join(f"{m:>9}" for m in METRICS))
    for label, cells in runs.items():
        rows = [*cells.items(), (("pooled", ""), [e for group in cells.values() for e in group])]
        for (corpus_name, kind), group in rows:
            means = [sum(e["scores"][m] for e in group) / len(group) for m in METRICS]
            where = f"{corpus_name}/{kind}" if kind else corpus_name
            print(
                f"{label:<18} {where:<18} {len(group):>4}  " + "  ".join(f"{v:9.3f}" for v in means)
            )
    base = runs["across, cosine"]
    for label in [name for name in runs if name != "across, cosine"]:
        keys = list(base)
        for metric in ("mrr@10", "recall@1"):
            a = [e["scores"][metric] for key in keys for e in runs[label][key]]
            b = [e["scores"][metric] for key in keys for e in base[key]]
            strata = [key for key in keys for _ in base[key]]
            diff = paired_bootstrap(a, b, strata=strata)
            print(f"{label} minus across, cosine, pooled {metric}: {diff.to_dict()}")
            for key in keys:
                one = paired_bootstrap(
                    [e["scores"][metric] for e in runs[label][key]],
                    [e["scores"][metric] for e in base[key]],
                )
                print(f"    {key[0]}/{key[1]}: {one.to_dict()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
