"""As served (issue 12): index, event log and a warm server present, at 1x and 10x LeanSpec.

For each size:
- the specs dir (1x the LeanSpec corpus; 10x ten copies of every spec dir, renumbered, with
  "-c{k}" slugs and "copy k" titles; their depends_on still names the originals);
- an index built by the real model. The 10x copies' chunks get the vectors of the originals'
  texts (`_CopyMemo`), so the embedding is paid once, not ten times. It would only measure the
  embedder again, and the vectors keep the real corpus's distribution;
- an event log with one event per spec;
- a warm SpecMemory, and a real uvicorn over it.

Each size also reports `worker_rss_mb`, the resident size of this process once it has served.
It is an upper bound on one worker's: the process also ran the ingest (embedded Chroma, the
chunking's garbage) and, at 10x, the 1x size before it.

Each dev query is timed in turns: the raw query embedding (the floor), hybrid search, and a
4,000-token query-seeded bundle, in process; then search and context over HTTP. Targets, as
ratios to the floor measured in the same run: context p50 <= 2.5x, search p50 <= 1.5x. Data
is kept under .specmem-bench/served/ between runs, where a current index makes ingest a no-op.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ingest.config import Settings
from ingest.index.embedding import load_embedder
from retriever.evaluation.evaluate import read_queries
from retriever.http import create_app
from retriever.http.server import LastResort, serving_options
from retriever.service import SpecMemory
from tests.bench.bench_dense_ann import _rss_mb
from tests.bench.bench_search import _time_together
from tests.live_server import serve_in_thread

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO.parent / "shared" / "corpora" / "leanspec"
ROOT = REPO / ".specmem-bench" / "served"
ROUNDS = 2
BUDGET = 4000
TOKEN = "bench-served-token-0123456789"
# A copy's chunk header reads "1045 slug words c1: Title · copy 1" where its original's reads
# "045 slug words: Title"; the body can name the copy's title too.
_COPY_HEADER = re.compile(r"^[1-9](\d{3}) (.*) c\d+: (.*) · copy \d+$", re.M)
_COPY_MARK = re.compile(r"-c\d+\b| · copy \d+")


def _original(text: str) -> str:
    return _COPY_MARK.sub("", _COPY_HEADER.sub(r"\1 \2: \3", text))


class _CopyMemo:
    """The real embedder; a copy's text is embedded as its original's (the copy marks taken
    out), once. Same name and dimension: the index is the real model's."""

    def __init__(self, real: Any):
        self.real, self.name, self.dimension = real, real.name, real.dimension
        self._seen: dict[str, np.ndarray] = {}

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        keys = [_original(text) for text in texts]
        missing = sorted({k for k in keys if k not in self._seen})
        if missing:
            self._seen.update(zip(missing, self.real.embed_documents(missing), strict=True))
        if not keys:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._seen[k] for k in keys])

    def embed_query(self, text: str) -> np.ndarray:
        return self.real.embed_query(text)

    def count_model_tokens(self, text: str) -> int:
        return self.real.count_model_tokens(text)


def _specs(scale: int) -> Path:
    source = CORPUS / "specs"
    if scale == 1:
        return source
    target = ROOT / f"specs-{scale}x"
    if target.exists():
        return target
    building = target.with_name(target.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    for directory in sorted(p for p in source.iterdir() if p.is_dir() and p.name[:3].isdigit()):
        number, slug = directory.name.split("-", 1)
        for k in range(scale):
            name = directory.name if k == 0 else f"{int(number) + 1000 * k:04d}-{slug}-c{k}"
            copy = building / name
            shutil.copytree(directory, copy, symlinks=True)
            if k:
                readme = copy / "README.md"
                text = readme.read_text(encoding="utf-8", errors="replace")
                readme.write_text(
                    re.sub(r"^# (.+)$", rf"# \1 · copy {k}", text, count=1, flags=re.M),
                    encoding="utf-8",
                )
    building.rename(target)
    return target


def _in_turns(functions: dict[str, Callable[[str], object]], queries: list[str]) -> dict:
    return _time_together(functions, queries, rounds=ROUNDS)


def _one_size(scale: int, queries: list[str]) -> dict[str, Any]:
    specs = _specs(scale)
    data = ROOT / f"data-{scale}x"
    settings = Settings.load(specs, data)
    embedder = _CopyMemo(load_embedder(settings))
    memory = SpecMemory(settings=settings, embedder=embedder)
    started = time.perf_counter()
    summary = memory.ingest()
    figures: dict[str, Any] = {
        "specs": summary.specs,
        "chunks": summary.chunks,
        "ingest_seconds": round(time.perf_counter() - started, 1),
    }
    if not memory.events(memory.list_specs()[0].dir_name):
        for spec in memory.list_specs():
            memory.log_event(spec.dir_name, "session", summary=f"worked on {spec.title}")
    figures["events"] = len(memory.search_events(limit=100_000))
    memory.search(queries[0])
    memory.context(queries[0], budget=BUDGET)  # warm: model, warm index, sections, watches
    timed = _in_turns(
        {
            "query_embedding": embedder.embed_query,
            "search_hybrid": memory.search,
            "context_4k": lambda q: memory.context(q, budget=BUDGET),
        },
        queries,
    )
    app = create_app(memory, token=TOKEN, mount_mcp=False)
    with serve_in_thread(LastResort(app), **serving_options()) as url, httpx.Client() as http:
        timed.update(
            {
                f"http_{name}": value
                for name, value in _in_turns(
                    {
                        "query_embedding": embedder.embed_query,
                        "search": lambda q: http.get(f"{url}/search", params={"q": q}),
                        "context": lambda q: http.post(
                            f"{url}/context", json={"query": q, "budget": BUDGET}
                        ),
                    },
                    queries,
                ).items()
            }
        )
    # One worker as served, bounded above: this process holds the model, the warm index, the
    # section index, the event log and the server, and what the ingest before them left.
    figures["worker_rss_mb"] = _rss_mb(os.getpid())
    floor = timed["query_embedding"]["p50_ms"]
    http_floor = timed["http_query_embedding"]["p50_ms"]
    figures.update(timed)
    figures["context_over_query_embedding"] = round(timed["context_4k"]["p50_ms"] / floor, 2)
    figures["search_over_query_embedding"] = round(timed["search_hybrid"]["p50_ms"] / floor, 2)
    figures["http_context_over_query_embedding"] = round(
        timed["http_context"]["p50_ms"] / http_floor, 2
    )
    figures["http_search_over_query_embedding"] = round(
        timed["http_search"]["p50_ms"] / http_floor, 2
    )
    figures["targets_met"] = {
        "context p50 <= 2.5x query embedding": figures["context_over_query_embedding"] <= 2.5,
        "search p50 <= 1.5x query embedding": figures["search_over_query_embedding"] <= 1.5,
    }
    return figures


def run(report: dict) -> None:
    queries = [q["query"] for q in read_queries(CORPUS / "queries-dev.jsonl")]
    ROOT.mkdir(parents=True, exist_ok=True)
    report["served"] = {f"{scale}x": _one_size(scale, queries) for scale in (1, 10)}
