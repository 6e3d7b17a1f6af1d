"""The whole LeanSpec corpus, the 73 dev queries: search must beat every published baseline.

Slow (embeds ~9k chunks): `pytest -m slow tests/test_eval_corpus.py`. Set SPECMEM_EVAL_DATA to a
directory to keep the index between runs (a current index makes the ingest a no-op).
"""

from __future__ import annotations

import os

import pytest

from retriever.evaluation.evaluate import read_queries
from retriever.service import SpecMemory
from tests.conftest import DEV_QUERIES

pytestmark = [pytest.mark.slow, pytest.mark.model]

# The corpus README's baselines: BM25 0.911/0.863, MiniLM 0.820/0.753, RRF 0.899/0.849.
BEST_BASELINE = {"mrr@10": 0.911, "recall@1": 0.863}


@pytest.fixture(scope="module")
def corpus_memory(corpus_specs, tmp_path_factory) -> SpecMemory:
    data = os.environ.get("SPECMEM_EVAL_DATA") or tmp_path_factory.mktemp("eval-corpus")
    memory = SpecMemory(corpus_specs, data)
    memory.ingest()
    return memory


def test_hybrid_search_beats_every_baseline_on_the_dev_queries(corpus_memory):
    report = corpus_memory.evaluate(read_queries(DEV_QUERIES), details=True)
    assert report["n"] == 73
    assert report["problems"] == []
    misses = [(q["qid"], q["rank"]) for q in report["queries"] if q["rank"] != 1]
    assert report["mrr@10"] > BEST_BASELINE["mrr@10"], misses
    assert report["recall@1"] > BEST_BASELINE["recall@1"], misses
    assert report["recall@10"] >= 0.986


def test_lexical_mode_alone_matches_the_bm25_baseline(corpus_memory):
    report = corpus_memory.evaluate(read_queries(DEV_QUERIES), mode="lexical")
    assert report["mrr@10"] >= BEST_BASELINE["mrr@10"]
