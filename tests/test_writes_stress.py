"""Slow: many processes mixing every kind of write on a corpus copy; nothing lost, nothing torn."""

from __future__ import annotations

import contextlib
import multiprocessing
from pathlib import Path

import pytest

from ingest.authoring.spec_changes import NewSpec, SpecChange
from ingest.errors import DependencyCycle, StaleWrite
from ingest.specs.store import SpecStore

PROCESSES = 8
ROUNDS = 8
TARGETS = ["045", "250", "302", "305"]


def _worker(specs: str, data: str, worker: int) -> None:
    from retriever.service import SpecMemory

    memory = SpecMemory(specs, data)
    statuses = ["in-progress", "complete", "planned"]
    for step in range(ROUNDS):
        target = TARGETS[(worker + step) % len(TARGETS)]
        memory.update_spec(
            target,
            SpecChange(status=statuses[(worker + step) % 3], add_tags=[f"s-{worker}-{step}"]),
        )
        other = TARGETS[(worker + step + 1) % len(TARGETS)]
        # opposite edges race here; the graph lock must refuse exactly the cycle-closers
        with contextlib.suppress(DependencyCycle):
            memory.update_spec(target, SpecChange(add_deps=[other]))
        spec = memory.get_spec(target)
        # optimistic writers: a stale hash is refused, never merged over
        with contextlib.suppress(StaleWrite):
            memory.update_spec(target, SpecChange(priority="high"), expected_hash=spec.content_hash)
    memory.create_spec(NewSpec(title=f"Stress {worker}"))


@pytest.mark.slow
def test_mixed_concurrent_writes_keep_every_file_valid_and_every_tag(corpus_copy, tmp_path):
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["retriever.service"])
    workers = [
        context.Process(target=_worker, args=(str(corpus_copy), str(tmp_path / "data"), w))
        for w in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=600)
        assert worker.exitcode == 0

    catalog = SpecStore(corpus_copy).scan()
    assert not catalog.broken
    tags = {tag for name in TARGETS for tag in catalog.get(name).meta.tags}
    assert {f"s-{w}-{s}" for w in range(PROCESSES) for s in range(ROUNDS)} <= tags
    from ingest.specs.graph import SpecGraph

    graph = SpecGraph.from_catalog(catalog)
    resolved = {catalog.resolve_name(t) for t in TARGETS}
    assert not [c for c in graph.cycles() if set(c) <= resolved]
    assert len([s for s in catalog if s.slug.startswith("stress-")]) == PROCESSES
    leftovers = [p for p in Path(corpus_copy).rglob(".*.tmp")]
    assert leftovers == []
