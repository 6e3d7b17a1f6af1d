"""`make eval`: every labelled set of every corpus, per corpus and pooled, against the baselines.

    python -m tests.bench.eval_corpora [--corpora DIR] [--data-root DIR] [--config CONFIG]
                                       [--compare CONFIG ...] [--corpus NAME ...] [--json OUT]

A corpus is a folder of the corpora dir (`--corpora`, env SPECMEM_CORPORA, default
../shared/corpora) with a `specs/` dir and `queries-*.jsonl` files. Each is ingested into its own
data dir under `--data-root` (default .specmem-eval in the repo: the corpora dir may be read-only,
and a current index makes the next run's ingest a no-op), then every query file is scored through
SpecMemory.evaluate under the base configuration and each compared one (retriever.evaluation.eval_config:
a mode, a baseline (`bm25`, `bm25-windows`), or key=value ranking settings).

Rows are corpus x set kind (commit, deps, refs: from the file name), then each kind pooled over
the corpora, then everything pooled. A pooled figure is the mean over all its queries (each corpus
weighs by its number of queries); its bootstrap interval resamples queries within each corpus, so
that every resample keeps each corpus's share of the pool (retriever.evaluation.bootstrap).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingest.errors import SpecmemError
from retriever.evaluation.bootstrap import RESAMPLES, SEED
from retriever.evaluation.eval_config import EvalConfig, parse_config
from retriever.evaluation.evaluate import compare_entries, read_queries, summarize
from retriever.service import SpecMemory

for _name, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("OPENBLAS_NUM_THREADS", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
    ("ANONYMIZED_TELEMETRY", "False"),
):
    os.environ.setdefault(_name, _value)

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CORPORA = REPO.parent / "shared" / "corpora"
DEFAULT_DATA_ROOT = REPO / ".specmem-eval"
DEFAULT_COMPARE = ("lexical", "bm25", "bm25-windows")
FILE_KINDS = {"queries-dev": "commit", "queries-deps": "deps", "queries-refs": "refs"}
KIND_ORDER = ("commit", "deps", "refs")
POOLED = "pooled"
ALL = "all"


@dataclass(frozen=True)
class Corpus:
    name: str
    specs: Path
    query_files: tuple[Path, ...]


def find_corpora(root: Path, only: Sequence[str] = ()) -> list[Corpus]:
    """Every folder of `root` with a specs dir and query files, by name."""
    found = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
        files = tuple(sorted(folder.glob("queries-*.jsonl"), key=_file_order))
        if (folder / "specs").is_dir() and files and (not only or folder.name in only):
            found.append(Corpus(folder.name, folder / "specs", files))
    return found


def kind_of(path: str | Path) -> str:
    stem = Path(path).stem
    return FILE_KINDS.get(stem, stem.removeprefix("queries-"))


def _file_order(path: Path) -> tuple[int, str]:
    kind = kind_of(path)
    return (KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER), kind)


def evaluate_corpus(
    memory: SpecMemory, corpus: Corpus, configs: Sequence[EvalConfig]
) -> tuple[dict[str, list[dict[str, Any]]], list[dict[str, Any]]]:
    """Each configuration's scored queries (tagged with corpus and kind), and the problems (which
    depend on the labels and the specs only, so the first configuration's stand for all)."""
    queries = [query for path in corpus.query_files for query in read_queries(path)]
    entries: dict[str, list[dict[str, Any]]] = {}
    problems: list[dict[str, Any]] | None = None
    for config in configs:
        report = memory.evaluate(queries, mode=config.mode, params=config.params, details=True)
        entries[config.label] = [
            {**entry, "corpus": corpus.name, "kind": kind_of(entry["file"])}
            for entry in report["queries"]
        ]
        if problems is None:
            problems = [{**problem, "corpus": corpus.name} for problem in report["problems"]]
    return entries, problems or []


def run(
    corpora: Path,
    data_root: Path,
    *,
    config: str = "hybrid",
    compare: Sequence[str] = DEFAULT_COMPARE,
    only: Sequence[str] = (),
    say: Callable[[str], None] = print,
    embedder: Any = None,
) -> dict[str, Any]:
    """Ingest and score every corpus; the rows of the table, the problems, the configurations."""
    base = parse_config(config)
    configs = [base, *(parse_config(text, default_mode=base.mode) for text in compare)]
    found = find_corpora(corpora, only)
    if not found:
        raise SystemExit(f"no corpus with specs/ and queries-*.jsonl under {corpora}")
    pooled: dict[str, list[dict[str, Any]]] = {c.label: [] for c in configs}
    problems: list[dict[str, Any]] = []
    for corpus in found:
        memory = SpecMemory(corpus.specs, data_root / corpus.name, embedder=embedder)
        started = time.perf_counter()
        summary = memory.ingest()
        say(
            f"{corpus.name}: {summary.specs} specs, {summary.chunks} chunks, "
            f"{summary.embedded} embedded ({time.perf_counter() - started:.1f} s)"
        )
        entries, found_problems = evaluate_corpus(memory, corpus, configs)
        problems.extend(found_problems)
        for label, scored in entries.items():
            pooled[label].extend(scored)
    rows = _rows(pooled, [c.label for c in configs], [c.name for c in found])
    return {
        "config": base.label,
        "compare": [c.label for c in configs[1:]],
        "corpora": [c.name for c in found],
        "rows": rows,
        "problems": problems,
    }


def _rows(
    entries: dict[str, list[dict[str, Any]]], labels: list[str], corpora: list[str]
) -> list[dict[str, Any]]:
    base, others = labels[0], labels[1:]
    kinds = sorted(
        {e["kind"] for e in entries[base]},
        key=lambda kind: (KIND_ORDER.index(kind) if kind in KIND_ORDER else 99, kind),
    )
    # (corpus shown, set shown, corpus kept or None for all, kind kept or None for all)
    groups: list[tuple[str, str, str | None, str | None]] = [
        (corpus, kind, corpus, kind) for corpus in corpora for kind in kinds
    ]
    groups += [(POOLED, kind, None, kind) for kind in kinds]
    groups.append((POOLED, ALL, None, None))
    rows = []
    for shown_corpus, shown_kind, corpus, kind in groups:
        chosen = {
            label: [
                e
                for e in entries[label]
                if corpus in (None, e["corpus"]) and kind in (None, e["kind"])
            ]
            for label in labels
        }
        if not chosen[base]:
            continue
        strata = [e["corpus"] for e in chosen[base]] if corpus is None else None
        rows.append(
            {
                "corpus": shown_corpus,
                "set": shown_kind,
                "n": len(chosen[base]),
                "configs": {label: summarize(chosen[label]) for label in labels},
                "difference": {
                    other: compare_entries(chosen[base], chosen[other], strata=strata)["difference"]
                    for other in others
                },
            }
        )
    return rows


COLUMNS = (("MRR@10", "mrr@10"), ("R@1", "recall@1"), ("R@5", "recall@5"), ("R@10", "recall@10"))


def table(result: dict[str, Any]) -> str:
    """The rows as text: one line per configuration, with base − that configuration on MRR@10."""
    base = result["config"]
    delta = f"{base} - this, MRR@10 [95% CI]"
    header = (
        f"{'corpus':<10}{'set':<8}{'n':>5}  {'config':<18}"
        + "".join(f"{title:>8}" for title, _ in COLUMNS)
        + f"{'cov@10':>8}  {delta}"
    )
    lines = [header, "-" * len(header)]
    previous = None
    for row in result["rows"]:
        if previous is not None and (row["corpus"] == POOLED) != (previous == POOLED):
            lines.append("")
        previous = row["corpus"]
        for position, (label, figures) in enumerate(row["configs"].items()):
            lead = f"{row['corpus']:<10}{row['set']:<8}{row['n']:>5}" if position == 0 else " " * 23
            cells = "".join(f"{figures[key]:>8.3f}" for _, key in COLUMNS)
            # coverage@10 is what differs from recall@10 only where queries have several relevant
            # specs: the dependency sets.
            coverage = f"{figures['coverage@10']:>8.3f}" if row["set"] == "deps" else " " * 8
            difference = row["difference"].get(label, {}).get("mrr@10")
            shown = _interval(difference) if difference else ""
            lines.append(f"{lead}  {label:<18}{cells}{coverage}  {shown}".rstrip())
    lines.append("")
    lines.append(
        f"{base} - this: mean paired difference, bootstrap over queries ({RESAMPLES:,} "
        f"resamples, seed {SEED});\npooled rows resample within each corpus. "
        "cov@10: share of a query's relevant specs in the top 10."
    )
    for problem in result["problems"]:
        ref = f" {problem['ref']}:" if "ref" in problem else ""
        at = problem.get("where") or problem["corpus"]
        lines.append(f"warning: {at}: {problem['query'][:60]!r}:{ref} {problem['reason']}")
    return "\n".join(lines)


def _interval(difference: dict[str, float]) -> str:
    return f"{difference['mean']:+.3f} [{difference['low']:+.3f}, {difference['high']:+.3f}]"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.eval_corpora")
    parser.add_argument(
        "--corpora",
        type=Path,
        default=Path(os.environ.get("SPECMEM_CORPORA") or DEFAULT_CORPORA),
        help="the corpora dir (env SPECMEM_CORPORA; default ../shared/corpora)",
    )
    parser.add_argument(
        "--data-root",
        type=Path,
        default=DEFAULT_DATA_ROOT,
        help="one index per corpus under here (default .specmem-eval)",
    )
    parser.add_argument("--config", default="hybrid", help="the base configuration")
    parser.add_argument(
        "--compare",
        action="append",
        default=None,
        help="a configuration to compare against, repeatable (default: lexical, bm25 and bm25-windows)",
    )
    parser.add_argument("--corpus", action="append", default=[], help="only this corpus")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args(argv)
    try:
        result = run(
            args.corpora,
            args.data_root,
            config=args.config,
            compare=DEFAULT_COMPARE if args.compare is None else args.compare,
            only=args.corpus,
        )
    except SpecmemError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print()
    print(table(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
