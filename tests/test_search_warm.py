"""The warm index follows the index generation, and its vector cache is only trusted when it
matches (FakeEmbedder: these tests are about which vectors are served, not their quality)."""

from __future__ import annotations

import numpy as np

from ingest.authoring.spec_changes import SpecChange
from ingest.index.embedding import FakeEmbedder
from ingest.index.layout import IndexLayout
from ingest.index.vectors import VectorStore
from retriever.ranking.warm_loader import VECTOR_CACHE
from retriever.service import SpecMemory

from .conftest import write_spec


def memory_for(specs, embedder=None) -> SpecMemory:
    return SpecMemory(specs, specs.parent / "data", embedder=embedder or FakeEmbedder())


def chroma_vectors(memory: SpecMemory, ids: list[str]) -> np.ndarray:
    layout = IndexLayout(memory.settings.data_dir)
    store = VectorStore.open(layout)
    store.collection(layout.read_manifest())
    return store.get_vectors(ids)


def served(memory: SpecMemory):
    return memory._warm_index(memory._index_embedder())


def test_served_vectors_always_match_chroma_across_edits_and_processes(tiny_specs):
    memory = memory_for(tiny_specs)
    memory.ingest()
    assert memory.search("bearer tokens")[0].spec == "001-auth-design"
    cache = memory.settings.data_dir / VECTOR_CACHE
    assert cache.is_file()
    warm = served(memory)
    assert np.allclose(warm.vectors, chroma_vectors(memory, [c.id for c in warm.chunks]))

    write_spec(tiny_specs, "004-webhooks", "# Webhooks\n\n## Overview\nSigned webhook delivery.\n")
    memory.ingest()
    assert memory.search("signed webhook delivery")[0].spec == "004-webhooks"
    warm = served(memory)
    assert "004-webhooks" in warm.spec_names
    assert np.allclose(warm.vectors, chroma_vectors(memory, [c.id for c in warm.chunks]))

    fresh = memory_for(tiny_specs)  # another process: reads the cache file of this generation
    again = served(fresh)
    assert [c.id for c in again.chunks] == [c.id for c in warm.chunks]
    assert np.allclose(again.vectors, warm.vectors)


def test_a_torn_or_stale_cache_file_is_ignored(tiny_specs):
    memory = memory_for(tiny_specs)
    memory.ingest()
    memory.search("tokens")
    cache = memory.settings.data_dir / VECTOR_CACHE
    cache.write_bytes(b"not a numpy archive")
    fresh = memory_for(tiny_specs)
    assert fresh.search("bearer tokens")[0].spec == "001-auth-design"
    warm = served(fresh)
    assert np.allclose(warm.vectors, chroma_vectors(fresh, [c.id for c in warm.chunks]))

    # A cache left by an older generation (here: written before an edit) is not served.
    stale = cache.read_bytes()
    readme = tiny_specs / "003-search-ui" / "README.md"
    readme.write_text(readme.read_text() + "\nKeyboard shortcuts for every pane.\n")
    memory.ingest()
    cache.write_bytes(stale)
    later = memory_for(tiny_specs)
    warm = served(later)
    assert np.allclose(warm.vectors, chroma_vectors(later, [c.id for c in warm.chunks]))


def test_lexical_search_needs_no_vectors(tiny_specs):
    memory = memory_for(tiny_specs)
    memory.ingest()
    fresh = memory_for(tiny_specs)
    hits = fresh.search("bearer tokens", mode="lexical")
    assert hits[0].spec == "001-auth-design"
    assert served(fresh).has_vectors  # asking for hybrid afterwards loads them


def test_a_status_change_swaps_the_metadata_and_reuses_the_rest(tiny_specs):
    memory = memory_for(tiny_specs)
    memory.ingest()
    before = served(memory)
    memory.update_spec("001", SpecChange(status="in-progress"))
    after = served(memory)
    assert after is not before and after.generation != before.generation
    assert after.bm25 is before.bm25 and after.vectors is before.vectors  # nothing re-analyzed
    info = after.specs[after.spec_position["001-auth-design"]]
    assert info.status == "in-progress"
    assert "001-auth-design" in {h.spec for h in memory.search("auth", status="in-progress")}
    # The transition appended to the frontmatter moved every body line of 001 without changing
    # a chunk id: the served line ranges are the index's, as a fresh load reads them.
    fresh = served(memory_for(tiny_specs))
    assert [(c.id, c.line_start, c.line_end) for c in after.chunks] == [
        (c.id, c.line_start, c.line_end) for c in fresh.chunks
    ]
    moved = [c for c in after.chunks if c.spec == "001-auth-design"]
    old_lines = {c.id: c.line_start for c in before.chunks}
    assert all(c.line_start > old_lines[c.id] for c in moved if c.line_start > 1)


def test_an_edit_builds_from_reused_parts_what_a_fresh_load_builds(tiny_specs):
    from retriever.ranking.terms import terms

    memory = memory_for(tiny_specs)
    memory.ingest()
    served(memory)
    readme = tiny_specs / "003-search-ui" / "README.md"
    readme.write_text(readme.read_text() + "\nKeyboard shortcuts for every pane.\n")
    write_spec(tiny_specs, "004-webhooks", "# Webhooks\n\n## Overview\nSigned webhook delivery.\n")
    memory.ingest()
    patched = served(memory)
    fresh = served(memory_for(tiny_specs))
    assert [(c.id, c.text, c.line_start) for c in patched.chunks] == [
        (c.id, c.text, c.line_start) for c in fresh.chunks
    ]
    assert np.allclose(patched.vectors, fresh.vectors)
    for query in ("keyboard shortcuts", "signed webhook", "bearer tokens refresh", "pane"):
        assert np.allclose(patched.bm25.scores(terms(query)), fresh.bm25.scores(terms(query)))
    assert patched.specs == fresh.specs


def test_a_load_succeeds_while_every_read_races_a_commit(tiny_specs, monkeypatch):
    """Status callbacks can commit faster than a reader reads: the reader reads one snapshot
    instead of retrying until nothing moved (which may never happen)."""
    from ingest.index.chunk_db import ChunkDatabase

    memory = memory_for(tiny_specs)
    memory.ingest()
    served(memory)
    writer = memory_for(tiny_specs)  # another process's service, committing between our reads
    statuses = iter(["planned", "in-progress", "complete"] * 10)
    read_order = ChunkDatabase.chunk_order

    def racing(self):
        order = read_order(self)
        writer.update_spec("002", SpecChange(status=next(statuses)))  # a commit lands mid-load
        return order

    monkeypatch.setattr(ChunkDatabase, "chunk_order", racing)
    writer.update_spec(
        "001", SpecChange(status="planned")
    )  # move the generation: the next read reloads
    warm = served(memory)
    info = warm.specs[warm.spec_position["001-auth-design"]]
    assert info.status == "planned"
