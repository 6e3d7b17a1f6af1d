"""Dense retrieval in process against Chroma's ANN index on a real `chroma run` server, at 1x,
10x and 100x the LeanSpec corpus (issue 15, spec 094).

    python -m tests.bench.bench_dense_ann [--scales 1,10,100] [--data-root DIR]

The corpus: LeanSpec's chunk vectors from the real model (the index `make eval` builds). A
larger corpus is made by a generator, not by copies: identical copies would tie in every
ranking and make recall meaningless. Copy c of spec s takes each of s's chunks and blends its
vector with the chunk at the same position of a partner spec (a fixed random permutation per
copy): normalize(0.8 a + 0.6 b). So a synthetic spec has the same number of chunks as a real
one, sits in the same region of the space, is distinct from every other, and its nearest
neighbours are as crowded as a real corpus ten or a hundred times larger would make them.

For each scale and each dev query of every corpus (the real model embeds them; the raw query
embedding is the floor, timed in the same run):
- exact: every chunk's cosine, the spec scores as the product aggregates them (best chunk plus
  0.3 x second), top 10 specs;
- in process: retriever.ranking.dense.DenseIndex (exact up to 30,000 chunks, faiss IVF past it);
- Chroma: retriever.ranking.dense_chroma.ChromaDense over the server's HNSW index;
reported as p50/p99 ms, x the query embedding, and spec-level recall@10 against exact. Also the
memory each path holds per worker (the in-process matrix, and faiss's copy of it), the server's
RSS, and the time to load the vectors into the server.
"""

from __future__ import annotations

import argparse
import copy as copying
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from ingest.index.layout import IndexLayout, Manifest
from ingest.index.vectors import VectorStore
from retriever import SpecMemory
from retriever.evaluation.evaluate import read_queries
from retriever.ranking.dense import DenseIndex
from retriever.ranking.dense_chroma import ChromaDense
from retriever.ranking.fusion import sparse_spec_scores, spec_scores
from retriever.ranking.overlap import EmbeddingOverlap
from retriever.ranking.search import search_index
from retriever.ranking.warm_index import WarmIndex

from ..live_server import start_chroma, stop_process

REPO = Path(__file__).resolve().parents[2]
CORPORA = REPO.parent / "shared" / "corpora"
SCALES = (1, 10, 100)
TOP = 10


def _base(data_root: Path) -> tuple[WarmIndex, Any]:
    """LeanSpec's warm index (chunks, specs, the real model's vectors), and the model."""
    memory = SpecMemory(CORPORA / "leanspec" / "specs", data_root / "leanspec")
    memory.ingest()
    embedder = memory._index_embedder()
    return memory._warm_index(embedder), embedder


def _columns(index: WarmIndex) -> tuple[list[str], list[str], np.ndarray]:
    assert index.vectors is not None
    return [c.id for c in index.chunks], [c.spec for c in index.chunks], index.vectors


def _scaled_index(base: WarmIndex, ids: list[str], specs: list[str], store: Any) -> WarmIndex:
    """The synthetic corpus as a warm index with no vectors in it, dense through Chroma: the
    base corpus's chunk texts and spec metadata under each copy's ids and spec names."""
    chunks, infos = [], {}
    copies = len(ids) // len(base.chunks)
    by_name = {info.name: info for info in base.specs}
    for copy in range(copies):
        offset = copy * len(base.chunks)
        for k, chunk in enumerate(base.chunks):
            chunks.append(replace(chunk, id=ids[offset + k], spec=specs[offset + k]))
        for name, info in by_name.items():
            named = name if copy == 0 else f"{name}-c{copy}"
            infos[named] = replace(info, name=named)
    return WarmIndex(
        chunks, None, infos, remote=lambda i, names, of: ChromaDense(store, i, names, of)
    )


def synthetic(
    ids: Sequence[str], specs: Sequence[str], vectors: np.ndarray, scale: int, seed: int = 0
) -> tuple[list[str], list[str], np.ndarray]:
    """`scale` times the corpus: the original, then scale-1 blended copies (module docstring),
    each spec's chunks contiguous."""
    names, starts = np.unique(np.asarray(specs), return_index=True)
    order = np.argsort(starts)
    names, starts = names[order], starts[order]
    counts = np.diff(np.append(starts, len(specs)))
    owner = np.repeat(np.arange(len(names)), counts)
    position = np.arange(len(specs)) - np.repeat(starts, counts)
    rng = np.random.default_rng(seed)
    out_ids, out_specs, blocks = list(ids), list(specs), [vectors]
    for copy in range(1, scale):
        partner = rng.permutation(len(names))[owner]
        rows = starts[partner] + np.minimum(position, counts[partner] - 1)
        blended = 0.8 * vectors + 0.6 * vectors[rows]
        blended /= np.linalg.norm(blended, axis=1, keepdims=True)
        blocks.append(blended.astype(np.float32))
        out_specs += [f"{spec}-c{copy}" for spec in specs]
        out_ids += [f"{spec}-c{copy}/{n}" for spec, n in zip(specs, position, strict=True)]
    return out_ids, out_specs, np.concatenate(blocks)


def _top_specs(
    scores: np.ndarray, rows: np.ndarray | None, starts: np.ndarray, spec_of: np.ndarray
) -> list[int]:
    if rows is None:
        spec_level = spec_scores(scores, starts)
    else:
        spec_level = sparse_spec_scores(scores, rows, spec_of, len(starts), -np.inf)
    best = np.argpartition(-spec_level, TOP)[:TOP]
    return [int(i) for i in best[np.argsort(-spec_level[best])] if np.isfinite(spec_level[i])]


def _percentiles(samples: list[float], floor: float) -> dict[str, float]:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    return {
        "p50_ms": round(p50 * 1000, 2),
        "p99_ms": round(ordered[max(0, int(len(ordered) * 0.99) - 1)] * 1000, 2),
        "x_query_embedding": round(p50 / floor, 2),
    }


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def _one_scale(
    scale: int, base: WarmIndex, queries: list[str], embed: Callable[[str], np.ndarray], work: Path
) -> dict[str, Any]:
    ids, specs, vectors = synthetic(*_columns(base), scale)
    starts = np.flatnonzero(np.r_[True, np.asarray(specs[1:]) != np.asarray(specs[:-1])])
    spec_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(specs))))
    figures: dict[str, Any] = {"chunks": len(ids), "specs": len(starts)}
    started = time.perf_counter()
    in_process = DenseIndex(vectors)
    figures["in_process_build_seconds"] = round(time.perf_counter() - started, 1)
    held = vectors.nbytes + (in_process.ann.ntotal * vectors.shape[1] * 4 if in_process.ann else 0)
    figures["in_process_vectors_mb_per_worker"] = round(held / 2**20, 1)
    server, url = start_chroma(work / f"chroma-{scale}x")
    try:
        store = VectorStore.open(IndexLayout(work / f"layout-{scale}x"), url)
        store.collection(Manifest(model="bench", dimension=vectors.shape[1]))
        started = time.perf_counter()
        store.upsert(ids, vectors, [{"spec": spec} for spec in specs])
        figures["chroma_load_seconds"] = round(time.perf_counter() - started, 1)
        remote = ChromaDense(store, ids, [specs[i] for i in starts], spec_of)
        remote.search(embed(queries[0]))  # the server loads its HNSW index on the first query
        figures["chroma_server_rss_mb"] = _rss_mb(server.pid)
        before = _rss_mb(os.getpid())
        started = time.perf_counter()
        warm_remote = _scaled_index(base, ids, specs, store)
        figures["warm_index_build_seconds"] = round(time.perf_counter() - started, 1)
        figures["warm_index_without_vectors_rss_mb"] = round(_rss_mb(os.getpid()) - before, 1)
        # The same warm index with the vectors in process: its rows are the warm index's order.
        warm_memory = copying.copy(warm_remote)
        row = {chunk_id: i for i, chunk_id in enumerate(ids)}
        order = np.fromiter((row[c.id] for c in warm_remote.chunks), dtype=np.int64)
        warm_memory.vectors = vectors[order]
        warm_memory.dense = DenseIndex(warm_memory.vectors)
        overlap = EmbeddingOverlap()
        samples: dict[str, list[float]] = {
            "query embedding": [],
            "in process": [],
            "chroma": [],
            "search, in process": [],
            "search, chroma": [],
        }
        recall: dict[str, list[float]] = {"in process": [], "chroma": []}
        for query in queries:
            started = time.perf_counter()
            vector = embed(query)
            samples["query embedding"].append(time.perf_counter() - started)
            exact = _top_specs(vectors @ vector, None, starts, spec_of)
            for name, index in (("in process", in_process), ("chroma", remote)):
                started = time.perf_counter()
                scores, rows = index.search(vector)
                samples[name].append(time.perf_counter() - started)
                found = _top_specs(scores, rows, starts, spec_of)
                recall[name].append(len(set(found) & set(exact)) / max(1, len(exact)))
            for name, warm in (("in process", warm_memory), ("chroma", warm_remote)):
                started = time.perf_counter()
                search_index(warm, query, embed_query=embed, overlap=overlap)
                samples[f"search, {name}"].append(time.perf_counter() - started)
        overlap.close()
        floor = statistics.median(samples["query embedding"])
        for name, timed in samples.items():
            figures[name] = _percentiles(timed, floor)
            if name in recall:
                figures[name]["spec_recall_at_10"] = round(float(np.mean(recall[name])), 4)
        figures["queries"] = len(queries)
    finally:
        stop_process(server, timeout=30)
        shutil.rmtree(work / f"chroma-{scale}x", ignore_errors=True)
    return figures


def measure(scales: Sequence[int] = SCALES, data_root: Path | None = None) -> dict[str, Any]:
    data_root = data_root or REPO / ".specmem-eval"
    base, embedder = _base(data_root)
    queries = [
        q["query"] for path in sorted(CORPORA.glob("*/queries-*.jsonl")) for q in read_queries(path)
    ]
    report: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="specmem-ann-") as tmp:
        for scale in scales:
            report[f"{scale}x"] = _one_scale(scale, base, queries, embedder.embed_query, Path(tmp))
            print(json.dumps({f"{scale}x": report[f"{scale}x"]}), flush=True)
    return report


def run(report: dict) -> None:
    report["dense_ann"] = measure()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--scales", default=",".join(map(str, SCALES)))
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args(argv)
    scales = [int(s) for s in args.scales.split(",")]
    print(json.dumps(measure(scales, args.data_root), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
