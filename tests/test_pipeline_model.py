"""End to end with the real all-MiniLM-L6-v2 over a 15-spec slice of the LeanSpec corpus."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from ingest.errors import IndexMismatch
from ingest.index.chunk_db import ChunkDatabase
from ingest.index.embedding import SentenceTransformerEmbedder
from ingest.index.layout import IndexLayout, check_manifest
from ingest.index.vectors import VectorStore
from retriever.service import SpecMemory

pytestmark = pytest.mark.model


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEmbedder:
    # torch: no ONNX export step in the test run; the vectors are the reference ones.
    # One thread: the test box is shared, and oversubscribed torch threads crawl.
    return SentenceTransformerEmbedder(backend="torch", threads=1).load()


@pytest.fixture(scope="module")
def slice_index(
    corpus_specs: Path,
    minilm: SentenceTransformerEmbedder,
    tmp_path_factory: pytest.TempPathFactory,
) -> SpecMemory:
    root = tmp_path_factory.mktemp("slice")
    # The 15 smallest specs (~100 chunks): every feature of the corpus, a fraction of the cost.
    dirs = [p for p in corpus_specs.iterdir() if p.is_dir() and p.name[:3].isdigit()]
    size = {p.name: sum(f.stat().st_size for f in p.glob("*.md")) for p in dirs}
    for name in sorted(size, key=lambda n: (size[n], n))[:15]:
        shutil.copytree(corpus_specs / name, root / "specs" / name)
    memory = SpecMemory(root / "specs", root / "data", embedder=minilm)
    summary = memory.ingest()
    assert summary.specs == 15 and summary.embedded == summary.chunks and not summary.skipped
    return memory


def test_index_records_the_model_and_refuses_others(slice_index: SpecMemory) -> None:
    layout = IndexLayout(slice_index.settings.data_dir)
    manifest = check_manifest(layout, "all-MiniLM-L6-v2", 384)
    assert manifest is not None and manifest.model == "all-MiniLM-L6-v2"
    with pytest.raises(IndexMismatch):
        check_manifest(layout, "fake-hashing-embedder", 64)
    store = VectorStore.open(layout)
    assert store.collection(manifest).metadata["specmem_model"] == "all-MiniLM-L6-v2"


def test_a_chunk_finds_itself_and_its_spec_by_meaning(
    slice_index: SpecMemory, minilm: SentenceTransformerEmbedder
) -> None:
    layout = IndexLayout(slice_index.settings.data_dir)
    store = VectorStore.open(layout)
    store.collection(layout.read_manifest())
    with ChunkDatabase(layout.lexical_path) as lexical:
        chunks = lexical.all_chunks()
    target = max(chunks, key=lambda c: c.tokens)
    hits = store.query(minilm.embed_query(target.embed_text), limit=3)
    assert hits[0][0] == target.id and hits[0][1] > 0.99
    # The spec's title, paraphrase-free, should find a chunk of that spec among the top few.
    query = target.title
    top_specs = [
        chunk_id.split("/")[0] for chunk_id, _ in store.query(minilm.embed_query(query), 5)
    ]
    assert target.spec in top_specs


def test_noop_and_one_spec_edit_with_the_real_model(slice_index: SpecMemory) -> None:
    assert slice_index.ingest().embedded == 0
    with ChunkDatabase(IndexLayout(slice_index.settings.data_dir).lexical_path) as lexical:
        spec = lexical.all_chunks()[0].spec
        before = lexical.chunk_ids(spec)
    readme = slice_index.settings.specs_dir / spec / "README.md"
    readme.write_text(readme.read_text() + "\n## Notes\n\nA late note.\n", encoding="utf-8")
    summary = slice_index.ingest()
    assert summary.updated == 1 and 1 <= summary.embedded <= 2
    with ChunkDatabase(IndexLayout(slice_index.settings.data_dir).lexical_path) as lexical:
        after = lexical.chunk_ids(spec)
    assert len(after - before) == summary.embedded
