"""The live catalog (spec 077): one owner, no walk on a warm read, and every change seen at once.

Changes are made the way people and tools make them (an editor saving in place, a new folder,
a touch, a rename) and read back with no pause: the watch is exact, not eventual.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ingest.authoring.spec_changes import SpecChange
from ingest.index import dir_watch
from ingest.index.dir_watch import DirectoryWatch
from ingest.specs import store
from retriever import SpecMemory
from retriever.live_catalog import LiveCatalog
from tests.conftest import write_spec

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="inotify is Linux's; elsewhere stats are used"
)


@pytest.fixture(params=["watch", "stats"])
def live(request, tiny_specs: Path, monkeypatch) -> LiveCatalog:
    """Both ways of knowing nothing changed must see the same changes."""
    if request.param == "stats":
        monkeypatch.setattr(DirectoryWatch, "open", classmethod(lambda cls: None))
    elif not sys.platform.startswith("linux"):
        pytest.skip("inotify is Linux's")
    catalog = LiveCatalog(store.SpecStore(tiny_specs))
    catalog.current()
    return catalog


def test_an_edit_in_place_is_seen_by_the_very_next_read(live, tiny_specs):
    readme = tiny_specs / "002-token-refresh" / "README.md"
    for n in range(20):
        with readme.open("a", encoding="utf-8") as handle:  # as an editor saving in place
            handle.write(f"\nEdit {n}.\n")
        assert f"Edit {n}." in live.current().get("2").body


def test_new_specs_nested_files_and_new_folders_are_seen_at_once(live, tiny_specs):
    write_spec(tiny_specs, "004-audit-log", "# Audit log\n\nWho did what.\n")
    assert "004-audit-log" in live.current().by_name
    research = tiny_specs / "001-auth-design" / "research"
    research.mkdir()
    assert [f.name for f in live.current().get("1").sub_files] == []
    (research / "evals.md").write_text("# Evals\n\nNumbers.\n", encoding="utf-8")
    assert [f.name for f in live.current().get("1").sub_files] == ["research/evals.md"]
    (research / "evals.md").write_text("# Evals\n\nOther numbers.\n", encoding="utf-8")
    assert "Other numbers." in live.current().get("1").sub_files[0].text


def test_renames_removals_and_archiving_are_seen_at_once(live, tiny_specs):
    os.rename(tiny_specs / "003-search-ui", tiny_specs / "003-search-page")
    assert "003-search-page" in live.current().by_name
    (tiny_specs / "archived").mkdir()
    os.rename(tiny_specs / "003-search-page", tiny_specs / "archived" / "003-search-page")
    assert live.current().get("3").is_archived
    (tiny_specs / "archived" / "003-search-page" / "README.md").unlink()
    assert "003-search-page" in live.current().broken or "3" not in {
        str(s.number) for s in live.current()
    }


@linux_only
def test_a_warm_read_walks_no_directory_and_stats_no_file(tiny_specs, monkeypatch):
    memory = SpecMemory(tiny_specs, tiny_specs.parent / "data")
    memory.context("bearer tokens", budget=2000)  # warm: scanned once, watches set

    def walked(*_: object, **__: object) -> None:
        raise AssertionError("the warm read path walked the specs dir")

    monkeypatch.setattr(os, "scandir", walked)
    monkeypatch.setattr(store.SpecStore, "file_states", walked)
    for _ in range(3):
        assert memory.context("bearer tokens", budget=2000).items
        assert memory.get_spec("1").title
        assert memory.list_specs()


def test_a_write_through_the_service_is_seen_without_a_rescan(tiny_specs, tmp_path, monkeypatch):
    memory = SpecMemory(tiny_specs, tmp_path / "data")
    before = memory.catalog()
    spec = memory.update_spec(
        "2", SpecChange(status="complete"), expected_hash=before.get("2").content_hash
    )
    scans = []
    monkeypatch.setattr(store.SpecStore, "scan", lambda self: scans.append(1) or before)
    after = memory.catalog()
    assert after.get("2").content_hash == spec.content_hash
    assert after.get("1") is before.get("1")  # the other specs, and what they derived, stay
    assert scans == []


def test_the_watch_limit_falls_back_to_stats_and_still_sees_changes(tiny_specs, monkeypatch):
    monkeypatch.setattr(DirectoryWatch, "watch", lambda self, folders: False)
    live = LiveCatalog(store.SpecStore(tiny_specs))
    live.current()
    readme = tiny_specs / "001-auth-design" / "README.md"
    readme.write_text(readme.read_text() + "\nLate line.\n", encoding="utf-8")
    assert "Late line." in live.current().get("1").body


@linux_only
def test_an_overflowed_event_queue_means_rescan(tiny_specs):
    live = LiveCatalog(store.SpecStore(tiny_specs))
    first = live.current()
    assert live.current() is first
    watch = live._watch
    assert watch is not None
    original = watch.changes
    watch.changes = lambda: dir_watch.EVERYTHING  # type: ignore[method-assign]
    assert live.current() is not first
    watch.changes = original  # type: ignore[method-assign]


def test_derived_state_lives_with_the_catalog_version(tiny_specs, tmp_path):
    from retriever.bundles.context_index import section_index

    memory = SpecMemory(tiny_specs, tmp_path / "data")
    catalog = memory.catalog()
    assert section_index(catalog) is section_index(memory.catalog())
    spec = memory.update_spec(
        "2", SpecChange(status="complete"), expected_hash=catalog.get("2").content_hash
    )
    newer = memory.catalog()
    assert newer is not catalog and newer.get("2").content_hash == spec.content_hash
    assert "section_index" not in newer.derived
    assert section_index(newer) is not section_index(catalog)


def test_concurrent_writers_never_read_their_own_spec_stale(tmp_path):
    """Found by the load run: a rescan that began before a write's one-spec swap, and ended
    after it, put the old file back with the write's events already drained, and every later
    read of that spec was stale (412 on the next write). Each writer owns one spec here, as an
    orchestrator's callbacks do."""
    import threading

    from ingest.index.embedding import FakeEmbedder
    from ingest.specs.store import content_hash

    specs = tmp_path / "specs"
    names = [f"{n:03d}-feature-{n}" for n in range(1, 13)]
    for name in names:
        write_spec(specs, name, f"---\nstatus: planned\n---\n# {name}\n\n## Overview\nWords.\n")
    memory = SpecMemory(specs, tmp_path / "data", embedder=FakeEmbedder())
    memory.ingest()  # the re-index after each write widens the windows, as in production
    problems: list[tuple[str, int]] = []

    def writer(name: str) -> None:
        for i in range(30):
            spec = memory.get_spec(name)
            if spec.content_hash != content_hash((spec.path / "README.md").read_bytes()):
                problems.append((name, i))
            status = ("planned", "in-progress", "complete")[i % 3]
            memory.update_spec(name, SpecChange(status=status), expected_hash=spec.content_hash)

    threads = [threading.Thread(target=writer, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == []
