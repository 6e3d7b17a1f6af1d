"""The query embedding beside the lexical half (retriever.ranking.overlap): same answers, its
errors reach the caller, and it never queues behind busy workers."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ingest.errors import BackendUnavailable
from ingest.index.chunking import chunk_spec
from ingest.index.embedding import FakeEmbedder
from ingest.specs.store import SpecStore
from retriever.ranking.overlap import EmbeddingOverlap
from retriever.ranking.search import search_index
from retriever.ranking.warm_index import build_warm_index


@pytest.fixture
def overlap():
    started = EmbeddingOverlap(workers=1)
    yield started
    started.close()


def test_a_hybrid_search_answers_the_same_with_and_without_it(tiny_specs, overlap):
    catalog = SpecStore(tiny_specs).scan()
    embedder = FakeEmbedder()
    chunks = [c for spec in catalog for c in chunk_spec(spec, embedder.count_model_tokens)]
    index = build_warm_index(
        chunks, embedder.embed_documents([c.embed_text for c in chunks]), catalog
    )
    for query in ("token budget for context", "auth", "status transitions"):
        alone = search_index(index, query, embed_query=embedder.embed_query)
        beside = search_index(index, query, embed_query=embedder.embed_query, overlap=overlap)
        assert [h.to_dict() for h in beside] == [h.to_dict() for h in alone]


def test_what_the_embedding_raised_reaches_the_caller(overlap):
    def broken(query: str) -> np.ndarray:
        raise BackendUnavailable("the model is gone")

    vector = overlap.start(broken, "anything")
    with pytest.raises(BackendUnavailable, match="the model is gone"):
        vector()


def test_inline_while_the_only_worker_is_taken(overlap):
    taken = threading.Event()
    release = threading.Event()

    def hold(query: str) -> np.ndarray:
        taken.set()
        release.wait(5)
        return np.ones(1, dtype=np.float32)

    first = overlap.start(hold, "a")
    assert taken.wait(5)
    where: list[str] = []

    def record(query: str) -> np.ndarray:
        where.append(threading.current_thread().name)
        return np.zeros(1, dtype=np.float32)

    second = overlap.start(record, "b")
    assert where == [threading.current_thread().name]  # ran at once, on the caller's thread
    assert second().tolist() == [0.0]
    release.set()
    assert first().tolist() == [1.0]


def test_after_close_it_embeds_inline(overlap):
    overlap.close()
    where: list[str] = []

    def record(query: str) -> np.ndarray:
        where.append(threading.current_thread().name)
        return np.zeros(1, dtype=np.float32)

    assert overlap.start(record, "q")().tolist() == [0.0]
    assert where == [threading.current_thread().name]
