"""The same ingest and queries against a real `chroma run` server (SPECMEM_CHROMA_URL)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.errors import BackendUnavailable
from ingest.index.chunk_db import ChunkDatabase
from ingest.index.embedding import FakeEmbedder
from ingest.index.layout import IndexLayout
from ingest.index.vectors import VectorStore
from retriever.service import SpecMemory
from tests.live_server import free_port, start_chroma, stop_process

pytestmark = pytest.mark.server


def _start_chroma(path: Path) -> tuple[subprocess.Popen[bytes], str]:
    try:
        return start_chroma(path)
    except FileNotFoundError as err:
        pytest.skip(str(err))
    except RuntimeError as err:
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def chroma_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, url = _start_chroma(tmp_path_factory.mktemp("chroma-server"))
    try:
        yield url
    finally:
        stop_process(server, timeout=10)


def test_ingest_and_query_through_the_server(
    tiny_specs: Path, chroma_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECMEM_CHROMA_URL", chroma_url)
    data = tiny_specs.parent / "data"
    embedder = FakeEmbedder()
    memory = SpecMemory(tiny_specs, data, embedder=embedder)
    summary = memory.ingest()
    assert summary.embedded == summary.chunks > 0
    assert not (data / "chroma").exists()  # the vectors live on the server
    assert IndexLayout(data).read_manifest().vector_backend == chroma_url

    store = VectorStore.open(IndexLayout(data), chroma_url)
    store.collection(IndexLayout(data).read_manifest())
    with ChunkDatabase(IndexLayout(data).lexical_path) as lexical:
        target = next(c for c in lexical.all_chunks() if "bearer" in c.text)
    top = store.query(embedder.embed_query(target.embed_text), limit=1)
    assert top[0][0] == target.id and top[0][1] == pytest.approx(1.0, abs=1e-5)
    assert store.query(embedder.embed_query("x"), 5, {"spec": "003-search-ui"})

    shutil.rmtree(tiny_specs / "002-token-refresh")
    assert memory.ingest().removed == 1
    assert not any(i.startswith("002-") for i in store.ids())
    assert memory.ingest().embedded == 0


def test_switching_between_embedded_and_server_rebuilds(
    tiny_specs: Path, chroma_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tiny_specs.parent / "data"
    SpecMemory(tiny_specs, data, embedder=FakeEmbedder()).ingest()
    monkeypatch.setenv("SPECMEM_CHROMA_URL", chroma_url)
    summary = SpecMemory(tiny_specs, data, embedder=FakeEmbedder()).ingest()
    assert summary.full and summary.embedded == summary.chunks


def test_ingest_with_the_server_down_is_backend_unavailable(
    tiny_specs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECMEM_CHROMA_URL", f"http://127.0.0.1:{free_port()}")
    memory = SpecMemory(tiny_specs, tiny_specs.parent / "data", embedder=FakeEmbedder())
    with pytest.raises(BackendUnavailable, match="SPECMEM_CHROMA_URL"):
        memory.ingest()


def test_dense_retrieval_asks_the_server_when_told_and_answers_the_same(
    tiny_specs: Path, chroma_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SPECMEM_CHROMA_URL", chroma_url)
    data = tiny_specs.parent / "data"
    chosen = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())  # auto: small, so in memory
    chosen.ingest()
    monkeypatch.setenv("SPECMEM_DENSE", "chroma")
    remote = SpecMemory(tiny_specs, data, embedder=FakeEmbedder())
    for query in ("bearer tokens", "token refresh", "search ui"):
        expected = [(h.spec, round(h.score, 4)) for h in chosen.search(query)]
        assert [(h.spec, round(h.score, 4)) for h in remote.search(query)] == expected
    assert chosen._warm_index(FakeEmbedder()).vectors is not None
    assert remote._warm_index(FakeEmbedder()).vectors is None


def test_a_search_with_the_server_gone_is_backend_unavailable(
    tiny_specs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = _start_chroma(tmp_path / "chroma")
    try:
        monkeypatch.setenv("SPECMEM_CHROMA_URL", url)
        monkeypatch.setenv("SPECMEM_DENSE", "chroma")
        memory = SpecMemory(tiny_specs, tmp_path / "data", embedder=FakeEmbedder())
        memory.ingest()
        assert memory.search("bearer tokens")
    finally:
        stop_process(server, timeout=10)
    with pytest.raises(BackendUnavailable):
        memory.search("bearer tokens")
    assert memory.search("bearer tokens", mode="lexical")  # the words need no vectors
