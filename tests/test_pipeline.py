"""The ingest pipeline end to end over a real embedded Chroma and SQLite, with the FakeEmbedder
(these tests are about what gets re-embedded and stored, not which vectors)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ingest.authoring.spec_changes import SpecChange
from ingest.errors import IndexMismatch, SpecNotFound
from ingest.index.chunk_db import ChunkDatabase
from ingest.index.embedding import FakeEmbedder
from ingest.index.layout import IndexLayout, check_manifest
from ingest.index.vectors import VectorStore
from retriever.cli import cli
from retriever.service import SpecMemory

from .conftest import write_spec


def memory_for(specs: Path, embedder: FakeEmbedder | None = None) -> SpecMemory:
    return SpecMemory(specs, specs.parent / "data", embedder=embedder or FakeEmbedder())


def index_state(memory: SpecMemory) -> dict:
    """Everything both stores hold, comparable across runs."""
    layout = IndexLayout(memory.settings.data_dir)
    manifest = layout.read_manifest()
    with ChunkDatabase(layout.lexical_path) as lexical:
        chunks = {c.id: c for c in lexical.all_chunks()}
        files = {p: s.hash for p, s in lexical.file_states().items()}
        specs = lexical.spec_records()
    vectors = VectorStore.open(layout)
    vectors.collection(manifest)
    ids = vectors.ids()
    stored = vectors.get_vectors(sorted(ids)) if ids else np.zeros((0, 0))
    return {
        "chunks": chunks,
        "files": files,
        "specs": specs,
        "vector_ids": ids,
        "vectors": {i: v.round(5).tolist() for i, v in zip(sorted(ids), stored, strict=True)},
    }


def test_ingest_fills_both_stores(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    summary = memory.ingest()
    assert (summary.specs, summary.added, summary.full) == (3, 3, True)
    assert summary.embedded == summary.chunks > 3
    state = index_state(memory)
    assert set(state["chunks"]) == state["vector_ids"]
    assert {c.spec for c in state["chunks"].values()} == {
        "001-auth-design",
        "002-token-refresh",
        "003-search-ui",
    }
    assert any(c.file == "DESIGN.md" for c in state["chunks"].values())
    assert state["specs"]["002-token-refresh"].status == "in-progress"
    assert state["specs"]["002-token-refresh"].depends_on == ("001-auth-design",)
    manifest = IndexLayout(memory.settings.data_dir).read_manifest()
    assert (manifest.model, manifest.dimension) == ("fake-hashing-embedder", 64)


def test_noop_reingest_embeds_nothing_and_never_opens_chroma(
    tiny_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    embedder = FakeEmbedder()
    memory = memory_for(tiny_specs, embedder)
    memory.ingest()
    calls = embedder.calls

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a no-op ingest opened the vector store")

    monkeypatch.setattr(VectorStore, "open", refuse)
    summary = memory.ingest()
    assert (summary.added, summary.updated, summary.removed, summary.embedded) == (0, 0, 0, 0)
    assert summary.unchanged == 3
    assert embedder.calls == calls

    # A touched file (same bytes, new mtime) is re-hashed, found equal, and not re-chunked.
    readme = tiny_specs / "001-auth-design" / "README.md"
    os.utime(readme, ns=(readme.stat().st_atime_ns, readme.stat().st_mtime_ns + 10**9))
    summary = memory.ingest()
    assert (summary.updated, summary.embedded, summary.unchanged) == (0, 0, 3)


def test_editing_a_spec_reembeds_only_its_changed_chunks(tiny_specs: Path) -> None:
    embedder = FakeEmbedder()
    memory = memory_for(tiny_specs, embedder)
    memory.ingest()
    before = index_state(memory)
    readme = tiny_specs / "001-auth-design" / "README.md"
    readme.write_text(
        readme.read_text().replace("bearer tokens", "signed bearer tokens"), encoding="utf-8"
    )
    summary = memory.ingest()
    assert (summary.updated, summary.unchanged, summary.embedded) == (1, 2, 1)
    assert summary.chunks_removed == 1
    after = index_state(memory)
    assert set(after["chunks"]) == after["vector_ids"]
    changed = set(after["chunks"]) ^ set(before["chunks"])
    assert len(changed) == 2 and all(c.startswith("001-auth-design/") for c in changed)
    assert "signed" in " ".join(c.text for c in after["chunks"].values())


def test_status_change_reembeds_nothing_and_updates_the_metadata(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    old = {c for c in index_state(memory)["chunks"] if c.startswith("001-")}
    readme = tiny_specs / "001-auth-design" / "README.md"
    readme.write_text(
        readme.read_text().replace("status: complete", "status: in-progress"), encoding="utf-8"
    )
    summary = memory.ingest()
    assert (summary.updated, summary.embedded, summary.chunks_removed) == (1, 0, 0)
    state = index_state(memory)
    new = {c for c in state["chunks"] if c.startswith("001-")}
    assert new == old
    assert all(state["chunks"][c].status == "in-progress" for c in new)
    in_progress = memory.search("auth", status="in-progress", mode="lexical")
    complete = memory.search("auth", status="complete", mode="lexical")
    assert "001-auth-design" in {h.spec for h in in_progress} - {h.spec for h in complete}


def test_tag_change_reembeds_the_whole_spec(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    old = {c for c in index_state(memory)["chunks"] if c.startswith("001-")}
    memory.update_spec("001", SpecChange(add_tags=["tokens"]))
    state = index_state(memory)
    new = {c for c in state["chunks"] if c.startswith("001-")}
    assert not old & new and len(new) == len(old)


def test_deleted_spec_and_file_disappear_from_both_stores(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    shutil.rmtree(tiny_specs / "002-token-refresh")
    (tiny_specs / "003-search-ui" / "DESIGN.md").unlink()
    summary = memory.ingest()
    assert (summary.removed, summary.updated, summary.specs) == (1, 1, 2)
    state = index_state(memory)
    assert set(state["chunks"]) == state["vector_ids"]
    assert not any(c.startswith("002-") for c in state["vector_ids"])
    assert not any(c.file == "DESIGN.md" for c in state["chunks"].values())
    assert "002-token-refresh" not in state["specs"]
    assert not any(p.startswith("002-") for p in state["files"])


def test_broken_spec_is_reported_and_a_previously_indexed_one_dropped(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    write_spec(tiny_specs, "004-broken", "---\nstatus: [unclosed\n---\n# Broken\n")
    summary = memory.ingest()
    assert summary.specs == 3
    assert [s["spec"] for s in summary.skipped] == ["004-broken"]
    assert summary.skipped[0]["path"].endswith("004-broken/README.md")
    assert summary.skipped[0]["reason"] and summary.skipped[0]["line"] == 2
    # Reported again on the next run (it is still broken), and nothing else is touched.
    again = memory.ingest()
    assert [s["spec"] for s in again.skipped] == ["004-broken"]
    assert again.embedded == 0

    (tiny_specs / "001-auth-design" / "README.md").write_bytes(b"\xff\xfe not utf-8")
    summary = memory.ingest()
    assert summary.removed == 1 and summary.specs == 2
    assert {s["spec"] for s in summary.skipped} == {"001-auth-design", "004-broken"}
    state = index_state(memory)
    assert not any(c.startswith("001-") for c in state["vector_ids"] | set(state["chunks"]))


def test_an_unclosed_frontmatter_fence_is_named_with_its_line(tiny_specs: Path) -> None:
    write_spec(tiny_specs, "004-open", "---\nstatus: planned\n# Open fence\n\nBody.\n")
    memory = memory_for(tiny_specs)
    spec = memory.catalog().get("004")
    (problem,) = [p for p in spec.load_problems if p.code == "frontmatter-missing"]
    assert problem.line == 1 and "never closed" in problem.reason
    report = memory.validate("004")
    assert any(p.line == 1 and "never closed" in p.message for p in report.problems)


def test_unreadable_sub_spec_is_reported_and_the_rest_indexed(tiny_specs: Path) -> None:
    (tiny_specs / "003-search-ui" / "NOTES.md").write_bytes(b"\x00\x01binary")
    summary = memory_for(tiny_specs).ingest()
    assert summary.specs == 3
    assert [(s["spec"], Path(s["path"]).name) for s in summary.skipped] == [
        ("003-search-ui", "NOTES.md")
    ]


def test_nested_files_are_indexed_and_an_edit_to_one_reindexes_only_its_spec(
    tiny_specs: Path,
) -> None:
    spec_dir = tiny_specs / "003-search-ui"
    evals = spec_dir / "research" / "evals.md"
    evals.parent.mkdir()
    evals.write_text("# Evals\n\n## Results\nThe two-pane layout won the study.\n")
    memory = memory_for(tiny_specs)
    memory.ingest()
    state = index_state(memory)
    nested = [c for c in state["chunks"].values() if c.file == "research/evals.md"]
    assert nested and all(c.id.startswith("003-search-ui/research/evals.md#") for c in nested)
    assert nested[0].header.splitlines()[1] == "research/evals.md > Results"
    assert "003-search-ui/research/evals.md" in state["files"]

    evals.write_text("# Evals\n\n## Results\nThe single-pane layout won the second study.\n")
    summary = memory.ingest()
    assert (summary.updated, summary.unchanged, summary.embedded) == (1, 2, 1)
    assert "single-pane" in " ".join(c.text for c in index_state(memory)["chunks"].values())
    assert memory.ingest().embedded == 0

    (spec_dir / "docs").mkdir()
    (spec_dir / "docs" / "faq.md").write_text("# FAQ\n\n## Why two panes\nSpace.\n")
    added = memory.ingest()
    assert (added.updated, added.unchanged) == (1, 2)
    shutil.rmtree(spec_dir / "research")
    removed = memory.ingest()
    assert (removed.updated, removed.unchanged) == (1, 2)
    state = index_state(memory)
    assert {c.file for c in state["chunks"].values() if c.spec == "003-search-ui"} == {
        "README.md",
        "DESIGN.md",
        "docs/faq.md",
    }
    assert set(state["chunks"]) == state["vector_ids"]
    assert not any("research" in path for path in state["files"])


def test_an_unreadable_nested_file_is_reported_and_the_spec_indexed(tiny_specs: Path) -> None:
    broken = tiny_specs / "003-search-ui" / "research" / "broken.md"
    broken.parent.mkdir()
    broken.write_bytes(b"\x00\x01binary")
    summary = memory_for(tiny_specs).ingest()
    assert summary.specs == 3
    (skipped,) = summary.skipped
    assert skipped["path"] == str(broken) and "binary" in skipped["reason"]


def test_a_spec_in_underscore_archived_is_indexed_as_archived(tiny_specs: Path) -> None:
    write_spec(tiny_specs / "_archived", "009-old", "---\nstatus: complete\n---\n# Old\n\nGone.\n")
    memory = memory_for(tiny_specs)
    assert memory.ingest().specs == 4
    record = index_state(memory)["specs"]["009-old"]
    assert record.archived and record.path == "_archived/009-old"


def test_an_older_index_format_is_refused_then_rebuilt(tiny_specs: Path) -> None:
    # Format 1 put the status into every chunk header (spec 032): it must not linger on the
    # specs that have not changed since.
    memory = memory_for(tiny_specs)
    memory.ingest()
    layout = IndexLayout(memory.settings.data_dir)
    old = layout.read_manifest()
    assert old is not None
    layout.write_manifest(dataclasses.replace(old, format=1))
    with pytest.raises(IndexMismatch, match="index format 1"):
        memory.search("auth", mode="lexical")
    summary = memory.ingest()
    assert summary.full and summary.embedded == summary.chunks
    assert memory.search("auth", mode="lexical")[0].spec == "001-auth-design"


def test_model_change_rebuilds_and_readers_refuse_a_mismatch(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    layout = IndexLayout(memory.settings.data_dir)
    with pytest.raises(IndexMismatch, match="fake-hashing-embedder"):
        check_manifest(layout, "all-MiniLM-L6-v2", 384)

    other = FakeEmbedder(dimension=32, name="another-model")
    second = SpecMemory(tiny_specs, memory.settings.data_dir, embedder=other)
    summary = second.ingest()
    assert summary.full and summary.embedded == summary.chunks
    assert check_manifest(layout, "another-model", 32) is not None
    state = index_state(second)
    assert len(next(iter(state["vectors"].values()))) == 32
    assert set(state["chunks"]) == state["vector_ids"]


def test_full_rebuild_gives_the_same_index(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    write_spec(tiny_specs, "004-new", "---\nstatus: draft\n---\n# New\n\n## Overview\nFresh.\n")
    memory.ingest()
    incremental = index_state(memory)
    summary = memory.ingest(full=True)
    assert summary.full and summary.embedded == summary.chunks
    assert index_state(memory) == incremental


def test_scoped_ingest_touches_only_the_named_specs(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    for name in ("001-auth-design", "003-search-ui"):
        readme = tiny_specs / name / "README.md"
        readme.write_text(readme.read_text() + "\nMore words.\n", encoding="utf-8")
    summary = memory.ingest(specs=["3"])
    assert summary.updated == 1
    shutil.rmtree(tiny_specs / "002-token-refresh")
    assert memory.ingest(specs=["002-token-refresh"]).removed == 1
    with pytest.raises(SpecNotFound):
        memory.ingest(specs=["999"])
    assert memory.ingest().updated == 1  # 001 was left for the unscoped run


def test_lost_chroma_dir_is_rebuilt_from_sqlite(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    expected = index_state(memory)
    from chromadb.api.client import SharedSystemClient

    shutil.rmtree(memory.settings.data_dir / "chroma")
    SharedSystemClient.clear_system_cache()  # the in-process client still holds the old files
    summary = memory.ingest()
    assert summary.reconciled and summary.embedded == summary.chunks
    assert index_state(memory) == expected


def test_cli_ingest_json_summary_and_quiet(tiny_specs: Path) -> None:
    runner = CliRunner()
    env = {"SPECMEM_MODEL": "fake"}
    args = ["--specs-dir", str(tiny_specs), "--data-dir", str(tiny_specs.parent / "data")]
    result = runner.invoke(cli, [*args, "ingest", "-o", "json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert set(data) >= {
        "specs",
        "chunks",
        "added",
        "updated",
        "removed",
        "skipped",
        "embedded",
        "seconds",
        "model",
    }
    assert (data["specs"], data["added"], data["model"]) == (3, 3, "fake-hashing-embedder")
    quiet = runner.invoke(cli, [*args, "ingest", "-q"], env=env)
    assert quiet.exit_code == 0 and quiet.output == ""
    text = runner.invoke(cli, [*args, "ingest"], env=env)
    assert "3 specs" in text.output and "unchanged 3" in text.output
    assert "\r" not in text.output  # no progress bar when not on a terminal


def test_a_reader_store_follows_a_full_rebuild(tiny_specs: Path) -> None:
    memory = memory_for(tiny_specs)
    memory.ingest()
    layout = IndexLayout(memory.settings.data_dir)
    reader = VectorStore.open(layout)
    reader.collection(layout.read_manifest(), create=False)
    before = reader.ids()
    memory.ingest(full=True)  # drops and recreates the collection under the same name
    assert reader.ids() == before
    assert reader.get_vectors(sorted(before)).shape == (len(before), 64)
