"""A status callback against the whole indexed corpus, as an orchestrator makes it: the update
(file write plus re-index of that spec), then the next hybrid search and the next 4k bundle, which
must see it.

Runs on a copy of the corpus and of the search bench's index (bench_search runs first and builds
it in SPECMEM_BENCH_SEARCH_DATA or its default folder), so nothing is re-embedded here: with the
status out of the chunk header (spec 032) a callback embeds nothing. Before that change an update
re-embedded the whole spec (~1-5 s) and the next read rebuilt the whole warm index (~1.3 s).
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from ingest.authoring.spec_changes import SpecChange
from retriever.service import SpecMemory
from tests.conftest import CORPUS_SPECS

ROUNDS = 30
STATUSES = ("planned", "in-progress", "complete")
QUERY = "how are context bundles packed within a token budget"


def _p50_p95(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "n": len(ordered),
    }


def run(report: dict) -> None:
    index = Path(
        os.environ.get("SPECMEM_BENCH_SEARCH_DATA")
        or Path(tempfile.gettempdir()) / "specmem-bench-search"
    )
    if not (index / "manifest.json").is_file():
        report["status_callbacks"] = {"skipped": f"no search bench index in {index}"}
        return
    with tempfile.TemporaryDirectory(prefix="specmem-bench-callbacks-") as tmp:
        specs, data = Path(tmp) / "specs", Path(tmp) / "data"
        shutil.copytree(CORPUS_SPECS, specs, symlinks=True)  # copy2: mtimes kept, ingest no-op
        shutil.copytree(index, data)
        memory = SpecMemory(specs, data)
        catch_up = memory.ingest()  # re-embeds only if the bench index is older than the code
        memory.search(QUERY)
        memory.context(QUERY, budget=4000)
        names = [spec.dir_name for spec in memory.catalog()][:ROUNDS]
        update, search, context = [], [], []
        for i, name in enumerate(names):
            started = time.perf_counter()
            memory.update_spec(name, SpecChange(status=STATUSES[i % 3]))
            update.append(time.perf_counter() - started)
            started = time.perf_counter()
            memory.search(QUERY, limit=10)
            search.append(time.perf_counter() - started)
            started = time.perf_counter()
            memory.context(QUERY, budget=4000)
            context.append(time.perf_counter() - started)
            # Not timed: the filter sees the new status (every spec has a dense score).
            hits = memory.search(QUERY, status=STATUSES[i % 3], limit=300)
            if name not in {hit.spec for hit in hits}:
                raise AssertionError(f"search filtered on the new status missed {name}")
        embedded = memory.ingest().embedded  # each update re-indexed already: nothing left
        spec_count = len(memory.catalog())
    report["status_callbacks"] = {
        "specs": spec_count,
        "catch_up_ingest_embedded": catch_up.embedded,
        "update_with_reindex": _p50_p95(update),
        "next_hybrid_search": _p50_p95(search),
        "next_context_4k": _p50_p95(context),
        "left_to_embed_after": embedded,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }
