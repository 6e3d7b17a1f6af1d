"""`specmem eval`: spec-level retrieval metrics over labelled queries.

A labelled query is a JSON object per line, `{"query": ..., "relevant": [spec refs]}`, optionally
with `exclude` (specs to leave out of the ranking before scoring: the spec a query was taken from,
which would otherwise trivially rank first) and `set` (which labelled set it belongs to, for the
breakdown); other fields (a `qid`, notes) ride along. Every ref resolves strictly like every other
reference (exact dir name, or a number exactly one spec has): an unknown or ambiguous ref is
reported, never guessed. A query left with no resolvable relevant spec, or with an exclude ref that
does not resolve (the spec it names might still be ranked), is reported and not scored.

Per query, over the ranking with the excluded specs removed:

- recall@k: 1 if at least one relevant spec is in the top k (the mean is the share of queries);
- MRR@10: 1/rank of the first relevant spec, 0 past rank 10;
- coverage@10: the share of the query's relevant specs in the top 10. It equals recall@10 when a
  query has one relevant spec; for dependency queries, which have several, it is the corpus
  README's "share of the dependencies in the top 10".

A figure over several queries (a set, a file, a pool of corpora) is the mean of the per-query
values, so pooling is just concatenating the per-query entries.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ingest.errors import InvalidInput, SpecmemError
from ingest.specs.store import Catalog

from .bootstrap import paired_bootstrap

__all__ = [
    "COMPARED",
    "check_query",
    "compare_entries",
    "comparison",
    "evaluate_queries",
    "group_by",
    "query_scores",
    "read_queries",
    "summarize",
]

RECALL_CUTS = (1, 5, 10)
MRR_CUT = 10
COVERAGE_CUT = 10
COMPARED = ("mrr@10", "recall@1")  # the figures a comparison gives intervals for


def read_queries(path: str | Path) -> list[dict[str, Any]]:
    """Labelled queries from a JSONL file, each with `file` and `line` set to where it was read;
    InvalidInput names the line that is not one, a `qid` given twice, or a file with none."""
    source = Path(path)
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as err:
        raise InvalidInput(f"{source}: cannot read queries: {err.strerror}") from None
    except UnicodeDecodeError as err:
        at = source.read_bytes()[: err.start].count(b"\n") + 1
        raise InvalidInput(f"{source}:{at}: not UTF-8 text (byte {err.start})") from None
    queries = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source}:{number}"
        try:
            item = json.loads(line)
        except json.JSONDecodeError as err:
            raise InvalidInput(f"{where}: not JSON ({err.msg})") from None
        query = check_query(item, where)
        if "qid" in query:
            qid = str(query["qid"])
            if qid in seen:  # a comparison pairs queries by qid: two would be scored as one
                raise InvalidInput(f"{where}: qid {qid!r} is also the qid of line {seen[qid]}")
            seen[qid] = number
        queries.append({**query, "file": str(source), "line": number})
    if not queries:
        raise InvalidInput(f"{source}: no labelled queries (one JSON object per line)")
    return queries


def check_query(item: object, where: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise InvalidInput(f"{where}: a labelled query must be a JSON object")
    query = item.get("query")
    if not isinstance(query, str) or not query.strip():
        raise InvalidInput(f"{where}: field 'query' must be a non-empty string")
    relevant = _refs(item.get("relevant"))
    if not relevant:
        raise InvalidInput(f"{where}: field 'relevant' must be a non-empty list of spec refs")
    exclude = _refs(item.get("exclude") or [])
    if exclude is None:
        raise InvalidInput(f"{where}: field 'exclude' must be a list of spec refs")
    return {**item, "relevant": relevant, "exclude": exclude}


def _refs(value: object) -> list[str] | None:
    if isinstance(value, str | int):
        value = [value]
    if not isinstance(value, list):
        return None
    return [str(ref) for ref in value]


def query_scores(ranked: Sequence[str], relevant: set[str], k: int = 10) -> dict[str, float]:
    """One query's recall@1/5/10 (and @k), MRR@10 and coverage@10 from its ranking."""
    rank = next((r for r, name in enumerate(ranked, start=1) if name in relevant), None)
    scores = {
        f"recall@{cut}": float(rank is not None and rank <= cut)
        for cut in sorted({*RECALL_CUTS, k})
    }
    scores[f"mrr@{MRR_CUT}"] = 1.0 / rank if rank is not None and rank <= MRR_CUT else 0.0
    found = relevant.intersection(ranked[:COVERAGE_CUT])
    scores[f"coverage@{COVERAGE_CUT}"] = len(found) / len(relevant)
    return scores


def summarize(entries: Sequence[dict[str, Any]], k: int = 10) -> dict[str, Any]:
    """`n` and the mean of every per-query score over `entries` (rounded to 4 places); with no
    entries, zeros for the scores a cut-off of `k` gives."""
    result: dict[str, Any] = {"n": len(entries)}
    names = list(entries[0]["scores"]) if entries else list(query_scores([], {"-"}, k))
    for name in names:
        total = sum(entry["scores"][name] for entry in entries)
        result[name] = round(total / len(entries), 4) if entries else 0.0
    return result


def evaluate_queries(
    queries: Iterable[dict[str, Any]],
    search: Callable[[str, int], list[str]],
    catalog: Catalog,
    *,
    k: int = 10,
    details: bool = False,
) -> dict[str, Any]:
    """Run each query through `search(query, limit) -> ranked spec names` and score the ranking.

    The report has the pooled figures, `sets` (the same per query set), `problems`, and with
    `details` every scored query (`queries`: its set, file, rank, top k and scores).
    """
    if k < 1:
        raise InvalidInput(f"k must be at least 1, got {k}")
    depth = max(k, MRR_CUT, COVERAGE_CUT)
    problems: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    for position, raw in enumerate(queries, start=1):
        item = check_query(raw, f"query {position}")
        where = {"query": item["query"]}
        if item.get("file"):
            where["where"] = f"{item['file']}:{item['line']}" if item.get("line") else item["file"]
        relevant, bad_relevant = _resolve(item["relevant"], catalog, rankable=True)
        excluded, bad_excluded = _resolve(item["exclude"], catalog)
        for ref, reason in bad_relevant + bad_excluded:
            problems.append({**where, "ref": ref, "reason": reason})
        if bad_excluded:
            problems.append({**where, "reason": "an exclude ref fails; skipped"})
            continue
        if relevant & excluded:
            problems.append({**where, "reason": "a relevant spec is also excluded; dropped"})
            relevant -= excluded
        if not relevant:
            problems.append({**where, "reason": "no relevant spec resolves; skipped"})
            continue
        # Asking for as many more as there are exclusions keeps `depth` specs after dropping them.
        ranked = search(item["query"], depth + len(excluded))
        ranked = [name for name in ranked if name not in excluded][:depth]
        entries.append(_entry(item, relevant, excluded, ranked, k))
    report = summarize(entries, k)
    report["k"] = k
    report["sets"] = {name: summarize(group) for name, group in group_by(entries, "set").items()}
    report["problems"] = problems
    if details:
        report["queries"] = entries
    return report


def _entry(
    item: dict[str, Any], relevant: set[str], excluded: set[str], ranked: list[str], k: int
) -> dict[str, Any]:
    rank = next((r for r, name in enumerate(ranked, start=1) if name in relevant), None)
    entry: dict[str, Any] = {"qid": item["qid"]} if "qid" in item else {}
    entry.update(
        query=item["query"],
        set=item.get("set") or (Path(item["file"]).stem if item.get("file") else "all"),
        relevant=sorted(relevant),
        rank=rank,
        top=ranked[:k],
        scores=query_scores(ranked, relevant, k),
    )
    if item.get("file"):
        entry["file"] = item["file"]
    if excluded:
        entry["excluded"] = sorted(excluded)
    return entry


def group_by(entries: Iterable[dict[str, Any]], key: str) -> dict[str, list[dict[str, Any]]]:
    """Entries by the value of `key`, groups in order of first appearance."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        groups.setdefault(str(entry.get(key)), []).append(entry)
    return groups


def compare_entries(
    base: Sequence[dict[str, Any]],
    other: Sequence[dict[str, Any]],
    *,
    strata: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Both configurations' figures on the same queries and, for each of COMPARED, the paired
    bootstrap difference base − other with its 95% interval (retriever.evaluation.bootstrap); `strata`
    labels each query's group to resample within."""
    if [_identity(e) for e in base] != [_identity(e) for e in other]:
        raise InvalidInput("a comparison needs both configurations scored on the same queries")
    difference = {
        metric: paired_bootstrap(
            [e["scores"][metric] for e in base],
            [e["scores"][metric] for e in other],
            strata=strata,
        ).to_dict()
        for metric in COMPARED
    }
    return {"base": summarize(base), "other": summarize(other), "difference": difference}


def comparison(base: dict[str, Any], other: dict[str, Any], label: str) -> dict[str, Any]:
    """The comparison of two detailed reports on the same queries: per set, and over all of
    them resampled within each set, so each set keeps its share of the pool."""
    first, second = base["queries"], other["queries"]
    others = group_by(second, "set")
    return {
        "config": label,
        "overall": compare_entries(first, second, strata=[e["set"] for e in first]),
        "sets": {
            name: compare_entries(group, others.get(name, []))
            for name, group in group_by(first, "set").items()
        },
    }


def _identity(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (entry.get("qid"), entry["query"], entry.get("file"), entry["set"])


def _resolve(
    refs: Iterable[str], catalog: Catalog, *, rankable: bool = False
) -> tuple[set[str], list[tuple[str, str]]]:
    """The names `refs` mean. With `rankable`, a spec that failed to load is unresolved too: it
    is in no index, so counting it relevant would score a miss no ranking could avoid."""
    resolved: set[str] = set()
    unresolved: list[tuple[str, str]] = []
    for ref in refs:
        try:
            name = catalog.resolve_name(ref)
        except SpecmemError as err:
            unresolved.append((ref, str(err)))
            continue
        if rankable and name in catalog.broken:
            unresolved.append(
                (ref, f"spec {name} failed to load, so it cannot rank: {catalog.broken[name]}")
            )
            continue
        resolved.add(name)
    return resolved, unresolved
