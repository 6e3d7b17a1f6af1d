"""Write latency on the real corpus: the editor alone, through the service, create, split, and
eight processes contending for one spec's lock.

Index-free: these are the costs of the write path itself (lock, re-read, line edit, verify,
fsync'd atomic replace) plus, for the service, the catalog rescan that makes reads see the write.
"""

from __future__ import annotations

import multiprocessing
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.authoring.writes import SpecWriter
from ingest.specs.store import SpecStore
from retriever import SpecMemory
from tests.conftest import CORPUS_SPECS

CONTENDERS = 8
UPDATES_EACH = 5


def _timed(action: Callable[[int], object], repeat: int) -> dict[str, float]:
    samples = []
    for index in range(repeat):
        started = time.perf_counter()
        action(index)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return {
        "p50_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[max(0, int(len(samples) * 0.95) - 1)], 2),
        "n": repeat,
    }


def _contender(specs: str, data: str, worker: int) -> None:
    memory = SpecMemory(specs, data)
    for step in range(UPDATES_EACH):
        memory.update_spec("045", SpecChange(add_tags=[f"bench-w{worker}-{step}"]))


def run(report: dict) -> None:
    with tempfile.TemporaryDirectory(prefix="specmem-bench-writes-") as tmp:
        specs = Path(tmp) / "specs"
        shutil.copytree(CORPUS_SPECS, specs, symlinks=True)
        data = Path(tmp) / "data"
        store = SpecStore(specs)
        catalog = store.scan()
        names = [spec.dir_name for spec in catalog][:100]
        writer = SpecWriter(store, data)
        out: dict = {"specs": len(catalog)}
        out["update_status_editor_only"] = _timed(
            lambda i: writer.update(
                catalog, names[i], SpecChange(status="draft" if i % 2 else "planned")
            ),
            len(names),
        )
        out["update_tag_editor_only"] = _timed(
            lambda i: writer.update(catalog, names[i], SpecChange(add_tags=["bench"])), len(names)
        )
        memory = SpecMemory(specs, data)
        memory.catalog()
        out["update_status_service"] = _timed(
            lambda i: memory.update_spec(
                "045", SpecChange(status="complete" if i % 2 else "in-progress")
            ),
            20,
        )
        out["create_service"] = _timed(
            lambda i: memory.create_spec(NewSpec(title=f"Bench spec {i}", tags=["bench"])), 20
        )
        splittable = [s.dir_name for s in memory.catalog() if s.body.count("\n## ") >= 3][:20]
        out["split_service"] = _timed(
            lambda i: memory.split_spec(
                splittable[i], [_last_heading(memory, splittable[i])], f"BENCH-{i}.md"
            ),
            len(splittable),
        )
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["retriever.service"])
        started = time.perf_counter()
        workers = [
            context.Process(target=_contender, args=(str(specs), str(data), w))
            for w in range(CONTENDERS)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        tags = SpecMemory(specs, data).get_spec("045").meta.tags
        written = sum(tag.startswith("bench-w") for tag in tags)
        out["contended_one_spec"] = {
            "processes": CONTENDERS,
            "updates": CONTENDERS * UPDATES_EACH,
            "lost": CONTENDERS * UPDATES_EACH - written,
            "wall_s": round(elapsed, 2),
        }
        report["writes"] = out


def _last_heading(memory: SpecMemory, name: str) -> str:
    from ingest.authoring.split import find_sections

    lines = memory.get_spec(name).readme.text.split("\n")
    headings = [s.heading for s in find_sections([line.rstrip("\r") for line in lines])]
    unique = [h for h in headings if [x.casefold() for x in headings].count(h.casefold()) == 1]
    return unique[-1]
