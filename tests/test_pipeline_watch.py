"""`ingest --watch`: which paths matter, and a real watcher thread stopped by its event."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from watchfiles import Change

from ingest.index.embedding import FakeEmbedder
from ingest.index.watch import affected_specs, spec_of_path, watch_specs
from retriever.service import SpecMemory


def test_only_spec_markdown_and_spec_dirs_matter(tmp_path: Path) -> None:
    root = tmp_path / "specs"
    assert spec_of_path(root, root / "012-x" / "README.md") == "012-x"
    assert spec_of_path(root, root / "012-x" / "DESIGN.md") == "012-x"
    assert spec_of_path(root, root / "archived" / "013-y" / "README.md") == "013-y"
    assert spec_of_path(root, root / "_archived" / "014-z" / "README.md") == "014-z"
    assert spec_of_path(root, root / "012-x") == "012-x"  # a deleted or renamed dir
    assert spec_of_path(root, root / "012-x" / "research" / "evals.md") == "012-x"
    assert spec_of_path(root, root / "012-x" / "research") == "012-x"  # a folder moved away
    for ignored in (
        root / "012-x" / "README.md.backup",
        root / "012-x" / "WORKFLOW.yml",
        root / "012-x" / ".README.md.swp",
        root / "012-x" / ".git" / "notes.md",
        root / "012-x" / "assets" / "logo.png",
        root / "012-x" / "a" / "b" / "c" / "d" / "e" / "deep.md",  # below MAX_FOLDER_DEPTH
        root / "notes.md",
        root / "drafts" / "README.md",
        tmp_path / ".specmem" / "lexical.sqlite",
    ):
        assert spec_of_path(root, ignored) is None, ignored
    changes = [
        (Change.modified, str(root / "012-x" / "README.md")),
        (Change.added, str(root / "012-x" / "DESIGN.md")),
        (Change.deleted, str(root / "002-a")),
        (Change.modified, str(root / "012-x" / "x.tmp")),
    ]
    assert affected_specs(root, changes) == ["002-a", "012-x"]


def test_watcher_reindexes_a_changed_spec_then_stops(tiny_specs: Path) -> None:
    memory = SpecMemory(tiny_specs, tiny_specs.parent / "data", embedder=FakeEmbedder())
    memory.ingest()
    batches: list[list[str]] = []
    summaries = []
    stop = threading.Event()

    def on_change(names: list[str]) -> None:
        batches.append(names)
        summaries.append(memory.ingest(specs=names))

    watcher = threading.Thread(
        target=watch_specs, args=(tiny_specs, on_change), kwargs={"stop_event": stop}
    )
    watcher.start()
    try:
        time.sleep(0.5)  # let the watcher register before the edit
        readme = tiny_specs / "003-search-ui" / "README.md"
        readme.write_text(readme.read_text() + "\nA filter row.\n", encoding="utf-8")
        (tiny_specs / "003-search-ui" / "scratch.txt").write_text("ignored", encoding="utf-8")
        deadline = time.monotonic() + 30
        while not summaries and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        watcher.join(timeout=10)
    assert not watcher.is_alive()
    assert batches and batches[0] == ["003-search-ui"]
    assert summaries[0].updated == 1 and summaries[0].embedded >= 1
