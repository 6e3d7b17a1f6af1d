"""A corrupted Chroma store under the real model (spec 043): the 15 smallest LeanSpec specs
embedded with all-MiniLM-L6-v2 into a real embedded Chroma. Garbage over chroma.sqlite3 is
`index_damaged` naming the store, through the service and HTTP; a plain ingest rebuilds it, and
search then ranks exactly as before the damage. Scrambled or deleted HNSW segment files are
measured too: Chroma rebuilds them from chroma.sqlite3, so they are not damage."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from ingest.errors import IndexDamaged
from ingest.index.layout import IndexLayout
from ingest.index.vectors import forget_embedded
from retriever import SpecMemory
from retriever.http import create_app
from tests.test_pipeline_model import minilm  # noqa: F401  (the session's model fixture)

pytestmark = pytest.mark.model

QUERIES = ("how are specs validated", "token budget for context", "archive old specs")


@pytest.fixture
def memory(corpus_specs: Path, minilm, tmp_path: Path) -> SpecMemory:  # noqa: F811
    dirs = [p for p in corpus_specs.iterdir() if p.is_dir() and p.name[:3].isdigit()]
    size = {p.name: sum(f.stat().st_size for f in p.glob("*.md")) for p in dirs}
    for name in sorted(size, key=lambda n: (size[n], n))[:15]:
        shutil.copytree(corpus_specs / name, tmp_path / "specs" / name)
    memory = SpecMemory(tmp_path / "specs", tmp_path / "data", embedder=minilm)
    assert memory.ingest().embedded > 50
    return memory


def ranking(memory: SpecMemory) -> list[list[tuple[str, float]]]:
    return [
        [(hit.spec, round(hit.score, 4)) for hit in memory.search(query, limit=5)]
        for query in QUERIES
    ]


def as_a_new_process(memory: SpecMemory) -> SpecMemory:
    """A reader that has nothing cached: no vector cache file, no Chroma client in memory."""
    layout = IndexLayout(memory.settings.data_dir)
    layout.vector_cache_path.unlink(missing_ok=True)
    forget_embedded(layout)
    return SpecMemory(memory.settings.specs_dir, layout.data_dir, embedder=memory._embedder)


def _scramble(path: Path) -> None:
    path.write_bytes(random.Random(3).randbytes(max(path.stat().st_size, 4096)))


def test_garbage_over_chroma_sqlite_is_damage_and_a_plain_ingest_rebuilds(
    memory: SpecMemory,
) -> None:
    before = ranking(memory)
    chroma = IndexLayout(memory.settings.data_dir).chroma_dir
    _scramble(chroma / "chroma.sqlite3")
    reader = as_a_new_process(memory)
    with pytest.raises(IndexDamaged) as raised:
        reader.search(QUERIES[0])
    assert "chroma" in raised.value.path
    with TestClient(create_app(reader, mount_mcp=False)) as client:
        answer = client.get("/search", params={"q": QUERIES[0]})
        assert answer.status_code == 409 and answer.json()["error"]["code"] == "index_damaged"
    summary = reader.ingest()
    assert summary.full and summary.damaged and "chroma" in summary.damaged[0]["path"]
    assert summary.embedded == summary.chunks
    assert ranking(as_a_new_process(memory)) == before


@pytest.mark.parametrize(
    "harm",
    [
        lambda segment: shutil.rmtree(segment),
        lambda segment: [_scramble(f) for f in segment.iterdir() if f.suffix == ".bin"],
    ],
    ids=["segments-deleted", "segment-files-scrambled"],
)
def test_hnsw_segment_files_heal_from_chroma_sqlite(
    harm: Callable[[Path], object], memory: SpecMemory
) -> None:
    before = ranking(memory)
    chroma = IndexLayout(memory.settings.data_dir).chroma_dir
    segments = [p for p in chroma.iterdir() if p.is_dir()]
    assert segments
    for segment in segments:
        harm(segment)
    reader = as_a_new_process(memory)
    assert ranking(reader) == before
    summary = reader.ingest()
    assert (summary.full, summary.damaged, summary.embedded) == (False, [], 0)
