"""Dense retrieval through Chroma's ANN index instead of the in-process matrix (spec 094): the
same answers on a corpus small enough that Chroma's shortlist holds every chunk, filters turned
into Chroma `where` clauses, and the choice of path by setting and by size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.config import Settings
from ingest.errors import InvalidInput
from ingest.index.embedding import FakeEmbedder
from retriever import SpecMemory
from retriever.ranking.dense_chroma import CHROMA_MIN_CHUNKS, ChromaDense, uses_chroma

QUERIES = ["bearer tokens for agents", "token refresh", "search ui", "how agents authenticate"]


def test_the_path_is_chosen_by_setting_and_by_size():
    url = "http://chroma:8000"
    assert uses_chroma("chroma", None, 10)  # the embedded store has an ANN index too
    assert not uses_chroma("memory", url, 10 * CHROMA_MIN_CHUNKS)
    assert not uses_chroma("auto", None, 10 * CHROMA_MIN_CHUNKS)  # nothing to share
    assert not uses_chroma("auto", url, CHROMA_MIN_CHUNKS - 1)
    assert uses_chroma("auto", url, CHROMA_MIN_CHUNKS)


def test_an_unknown_dense_setting_names_the_variable(monkeypatch):
    monkeypatch.setenv("SPECMEM_DENSE", "gpu")
    with pytest.raises(InvalidInput, match=r"SPECMEM_DENSE='gpu'.*auto, memory, chroma"):
        Settings.load("specs", "data")


def _memory(specs: Path, data: Path, backend: str) -> SpecMemory:
    settings = Settings.load(specs, data, model="fake", dense_backend=backend)
    return SpecMemory(settings=settings, embedder=FakeEmbedder())


def _ranked(memory: SpecMemory, query: str, **filters) -> list[tuple[str, float]]:
    return [(h.spec, round(h.score, 4)) for h in memory.search(query, **filters)]


def test_chroma_answers_as_the_matrix_does_and_holds_no_vectors(tiny_specs, tmp_path):
    data = tmp_path / "data"
    in_memory = _memory(tiny_specs, data, "memory")
    in_memory.ingest()
    through_chroma = _memory(tiny_specs, data, "chroma")
    for query in QUERIES:
        for mode in ("dense", "hybrid"):
            expected = _ranked(in_memory, query, mode=mode)
            assert _ranked(through_chroma, query, mode=mode) == expected, (query, mode)
    index = through_chroma._warm_index(FakeEmbedder())
    assert index.vectors is None and isinstance(index.dense, ChromaDense)
    assert isinstance(in_memory._warm_index(FakeEmbedder()).vectors, np.ndarray)


def test_a_filter_reaches_chroma_as_a_where_clause(tiny_specs, tmp_path):
    data = tmp_path / "data"
    in_memory = _memory(tiny_specs, data, "memory")
    in_memory.ingest()
    through_chroma = _memory(tiny_specs, data, "chroma")
    for status in ("complete", ["complete", "planned"], "archived"):
        for query in QUERIES:
            expected = _ranked(in_memory, query, status=status)
            assert _ranked(through_chroma, query, status=status) == expected


class _Recording:
    def __init__(self, hits):
        self.hits, self.calls = hits, []

    def nearest(self, vector, limit, where=None):
        self.calls.append((limit, where))
        return self.hits


def test_shortlisted_rows_score_and_the_rest_get_no_vote():
    store = _Recording([("c2", 0.9), ("gone", 0.8), ("c0", 0.5)])
    dense = ChromaDense(store, ["c0", "c1", "c2"], ["a", "b"], np.array([0, 0, 1]), candidates=2)
    scores, rows = dense.search(np.ones(3))
    assert rows.tolist() == [0, 2]  # a chunk of a newer ingest ("gone") is not in this copy
    assert scores.tolist() == pytest.approx([0.5, -np.inf, 0.9])
    assert store.calls == [(2, None)]
    scores, rows = dense.search(np.ones(3), np.array([False, False, True]))
    assert rows.tolist() == [2] and store.calls[-1] == (1, {"spec": "b"})
    dense.search(np.ones(3), np.array([True, False, True]))
    assert store.calls[-1] == (2, {"spec": {"$in": ["a", "b"]}})
    scores, rows = dense.search(np.ones(3), np.zeros(3, dtype=bool))
    assert rows.tolist() == [] and len(store.calls) == 3 and np.isinf(scores).all()


def test_a_filter_letting_most_of_many_specs_through_is_applied_to_a_deeper_shortlist(
    monkeypatch,
):
    from retriever.ranking import dense_chroma

    monkeypatch.setattr(dense_chroma, "MAX_WHERE_SPECS", 2)
    store = _Recording([("c3", 0.9), ("c0", 0.8), ("c1", 0.7)])
    ids, names = ["c0", "c1", "c2", "c3"], ["a", "b", "c", "d"]
    dense = ChromaDense(store, ids, names, np.arange(4), candidates=2)
    scores, rows = dense.search(np.ones(3), np.array([True, True, True, False]))
    assert store.calls[-1] == (3, None)  # 2 candidates / a share of 3/4 -> 3, unfiltered
    assert rows.tolist() == [0, 1] and np.isinf(scores[3])  # d's chunk refused after the fact
    dense.search(np.ones(3), np.array([True, False, False, False]))
    assert store.calls[-1] == (1, {"spec": "a"})
