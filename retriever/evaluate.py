"""`specmem eval`: spec-level retrieval metrics over labelled queries.

A labelled query is a JSON object per line, `{"query": ..., "relevant": [spec refs]}`; other
fields (a `qid`, notes) ride along. Relevant refs resolve strictly like every other reference
(exact dir name, or a number exactly one spec has): an unknown or ambiguous ref is reported, never
guessed, and a query left with no resolvable relevant spec is reported and not scored.

recall@k is the share of queries with at least one relevant spec in the top k; MRR@10 averages
1/rank of the first relevant spec (0 past rank 10).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ingest.errors import InvalidInput, SpecmemError
from ingest.store import Catalog

__all__ = ["evaluate_queries", "metrics", "read_queries"]

RECALL_CUTS = (1, 5, 10)
MRR_CUT = 10


def read_queries(path: str | Path) -> list[dict[str, Any]]:
    """Labelled queries from a JSONL file; InvalidInput names the line that is not one."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InvalidInput(f"{source}: cannot read queries: {err.strerror}") from None
    queries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInput(f"{source}:{number}: not JSON ({err.msg})") from None
        queries.append(check_query(item, f"{source}:{number}"))
    return queries


def check_query(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: a labelled query must be a JSON object")
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput(f"{where}: field 'query' must be a non-empty string")
    relevant = item.get("relevant")
    if isinstance(relevant, str | int):
        relevant = [relevant]
    if not isinstance(relevant, list) or not relevant:
        raise InvalidInput(f"{where}: field 'relevant' must be a non-empty list of spec refs")
    return {**item, "relevant": [str(ref) for ref in relevant]}


def first_relevant_rank(ranked: Sequence[str], relevant: set[str]) -> int | None:
    """1-based rank of the first relevant spec, or None if none was returned."""
    for rank, name in enumerate(ranked, start=1):
        if name in relevant:
            return rank
    return None


def metrics(ranks: Sequence[int | None]) -> dict[str, Any]:
    """recall@1/5/10 and MRR@10 from the first-relevant rank of each query."""
    n = len(ranks)
    result: dict[str, Any] = {"n": n}
    for cut in RECALL_CUTS:
        hits = sum(1 for r in ranks if r is not None and r <= cut)
        result[f"recall@{cut}"] = round(hits / n, 4) if n else 0.0
    reciprocal = sum(1.0 / r for r in ranks if r is not None and r <= MRR_CUT)
    result[f"mrr@{MRR_CUT}"] = round(reciprocal / n, 4) if n else 0.0
    return result


def evaluate_queries(
    queries: Iterable[dict[str, Any]],
    search: Callable[[str, int], list[str]],
    catalog: Catalog,
    *,
    k: int = 10,
    details: bool = False,
) -> dict[str, Any]:
    """Run each query through `search(query, limit) -> ranked spec names` and score the ranking."""
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    depth = max(k, MRR_CUT)
    ranks: list[int | None] = []
    problems: list[dict[str, Any]] = []
    per_query: list[dict[str, Any]] = []
    for position, raw in enumerate(queries, start=1):
        item = check_query(raw, f"query {position}")
        relevant, unresolved = _resolve(item["relevant"], catalog)
        for ref, reason in unresolved:
            problems.append({"query": item["query"], "ref": ref, "reason": reason})
        if not relevant:
            problems.append(
                {"query": item["query"], "reason": "no relevant spec resolves; skipped"}
            )
            continue
        ranked = search(item["query"], depth)
        rank = first_relevant_rank(ranked, relevant)
        ranks.append(rank)
        if details:
            entry = {"query": item["query"], "relevant": sorted(relevant), "rank": rank}
            if "qid" in item:
                entry = {"qid": item["qid"], **entry}
            entry["top"] = ranked[:k]
            per_query.append(entry)
    result = metrics(ranks)
    result["k"] = k
    if k not in RECALL_CUTS:
        hits = sum(1 for r in ranks if r is not None and r <= k)
        result[f"recall@{k}"] = round(hits / len(ranks), 4) if ranks else 0.0
    result["problems"] = problems
    if details:
        result["queries"] = per_query
    return result


def _resolve(refs: Iterable[str], catalog: Catalog) -> tuple[set[str], list[tuple[str, str]]]:
    resolved: set[str] = set()
    unresolved: list[tuple[str, str]] = []
    for ref in refs:
        try:
            resolved.add(catalog.resolve_name(ref))
        except SpecmemError as err:
            unresolved.append((ref, str(err)))
    return resolved, unresolved
