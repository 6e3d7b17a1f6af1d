"""Embedding speed per backend and batching, and how far each variant's vectors are from torch's.

A sample of real corpus chunks (every 15th, 600 by default: SPECMEM_BENCH_EMBED_SAMPLE) is
embedded by each variant after a short warm-up. Reported per variant: chunks/s, seconds, max abs
difference and minimum cosine against the torch vectors, and nearest-neighbour agreement (how
many of each text's 10 nearest sample neighbours under torch the variant also ranks top 10).
SPECMEM_BENCH_EMBED_VARIANTS=onnx,torch limits the variants run.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ingest.index.chunking import chunk_spec
from ingest.index.embedding import SentenceTransformerEmbedder, model_token_counter
from ingest.specs.store import SpecStore

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "leanspec" / "specs"
NEIGHBOURS = 10


def sample_texts(size: int) -> tuple[list[str], dict]:
    count = model_token_counter()
    started = time.perf_counter()
    catalog = SpecStore(CORPUS).scan()
    chunks = [chunk for spec in catalog for chunk in chunk_spec(spec, count)]
    seconds = time.perf_counter() - started
    chunking = {
        "specs": len(catalog),
        "chunks": len(chunks),
        "seconds_scan_and_chunk": round(seconds, 2),
        "median_model_tokens": float(np.median([c.model_tokens for c in chunks])),
        "median_text_tiktoken": float(np.median([c.tokens for c in chunks])),
    }
    return [c.embed_text for c in chunks[::15]][:size], chunking


def _unsorted(embedder: SentenceTransformerEmbedder) -> Callable[[Sequence[str]], np.ndarray]:
    """Batches in corpus order: what embedding without sorting by length costs."""

    def embed(texts: Sequence[str]) -> np.ndarray:
        size = embedder.batch_size
        return np.vstack(
            [embedder.embed_documents(texts[i : i + size]) for i in range(0, len(texts), size)]
        )

    return embed


def _variants(cache: Path) -> dict[str, Callable[[], Callable[[Sequence[str]], np.ndarray]]]:
    def make(backend: str, **options: Any) -> Callable[[Sequence[str]], np.ndarray]:
        return SentenceTransformerEmbedder(
            backend=backend, cache_dir=cache, **options
        ).embed_documents

    return {
        "torch": lambda: make("torch"),
        "onnx": lambda: make("onnx"),
        "onnx-int8": lambda: make("onnx-int8"),
        "onnx-1-thread": lambda: make("onnx", threads=1),
        "onnx-batch-8k-tokens": lambda: make("onnx", batch_tokens=8192),
        "onnx-batch-32k-tokens": lambda: make("onnx", batch_tokens=32768),
        "onnx-unsorted": lambda: _unsorted(
            SentenceTransformerEmbedder(backend="onnx", cache_dir=cache)
        ),
        "torch-unsorted": lambda: _unsorted(SentenceTransformerEmbedder(backend="torch")),
        "torch-batch-64": lambda: make("torch", batch_size=64),
    }


def _neighbour_agreement(reference: np.ndarray, vectors: np.ndarray) -> float:
    def top(matrix: np.ndarray) -> np.ndarray:
        scores = matrix @ matrix.T
        np.fill_diagonal(scores, -np.inf)
        return np.argsort(-scores, axis=1)[:, :NEIGHBOURS]

    expected, got = top(reference), top(vectors)
    shared = [len(set(a) & set(b)) for a, b in zip(expected, got, strict=True)]
    return round(float(np.mean(shared)) / NEIGHBOURS, 4)


def run(report: dict) -> None:
    """Variants run round-robin for SPECMEM_BENCH_EMBED_ROUNDS rounds (default 1) and keep their
    best round: on a shared machine the minimum is the least disturbed measurement. CPU seconds
    (all threads of this process) are reported too, as they vary less with other load."""
    size = int(os.environ.get("SPECMEM_BENCH_EMBED_SAMPLE", "600"))
    rounds = int(os.environ.get("SPECMEM_BENCH_EMBED_ROUNDS", "1"))
    wanted = os.environ.get("SPECMEM_BENCH_EMBED_VARIANTS")
    texts, chunking = sample_texts(size)
    results: dict = {"sample_chunks": len(texts), "rounds": rounds, "chunking": chunking}
    cache = Path(os.environ.get("SPECMEM_MODEL_CACHE") or tempfile.mkdtemp(prefix="specmem-bench-"))
    variants = {
        name: factory
        for name, factory in _variants(cache).items()
        if name == "torch" or not wanted or name in wanted.split(",")
    }
    embedders: dict[str, Callable[[Sequence[str]], np.ndarray]] = {}
    rows: dict[str, dict] = {}
    for name, factory in variants.items():
        started = time.perf_counter()
        embedders[name] = factory()
        embedders[name](texts[:16])  # load, export if needed, warm up
        rows[name] = {"load_seconds": round(time.perf_counter() - started, 2)}
    reference: np.ndarray | None = None
    for _ in range(rounds):
        for name, embed in embedders.items():
            wall, cpu = time.perf_counter(), time.process_time()
            vectors = embed(texts)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            row = rows[name]
            if wall < row.get("seconds", float("inf")):
                row.update(
                    chunks_per_s=round(len(texts) / wall, 1),
                    seconds=round(wall, 2),
                    cpu_seconds=round(cpu, 2),
                )
            if reference is None:
                reference = vectors
            elif name != "torch" and "max_abs_diff_vs_torch" not in row:
                row["max_abs_diff_vs_torch"] = float(np.abs(vectors - reference).max())
                row["min_cosine_vs_torch"] = round(
                    float((vectors * reference).sum(axis=1).min()), 6
                )
                row["top10_neighbour_agreement"] = _neighbour_agreement(reference, vectors)
            print(f"   {name}: {row}", flush=True)
    results["variants"] = rows
    report["embedding"] = results
