"""search_index over a warm index built from real chunks of tiny specs (FakeEmbedder vectors:
these tests check shape, filters and modes, not ranking quality)."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.errors import InvalidInput
from ingest.index.chunking import chunk_spec
from ingest.index.embedding import FakeEmbedder
from ingest.specs.store import SpecStore
from retriever.ranking.search import RankingParams, search_index
from retriever.ranking.warm_index import build_warm_index
from tests.conftest import write_spec


@pytest.fixture
def warm(tiny_specs):
    write_spec(
        tiny_specs,
        "004-auth-audit-log",
        """
        ---
        status: planned
        priority: high
        tags: [auth, audit]
        ---
        # Auth audit log

        ## Overview
        Record every authentication attempt with the agent and the token used.
        """,
    )
    catalog = SpecStore(tiny_specs).scan()
    embedder = FakeEmbedder()
    chunks = [c for spec in catalog for c in chunk_spec(spec, embedder.count_model_tokens)]
    vectors = embedder.embed_documents([c.embed_text for c in chunks])
    return build_warm_index(chunks, vectors, catalog), embedder, tiny_specs


def names(hits):
    return [hit.spec for hit in hits]


def test_one_hit_per_spec_best_first_with_a_snippet(warm):
    index, embedder, root = warm
    hits = search_index(
        index, "bearer tokens for headless agents", embed_query=embedder.embed_query
    )
    assert names(hits)[0] == "001-auth-design"
    assert len(names(hits)) == len(set(names(hits)))
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)
    top = hits[0].to_dict()
    assert top["rank"] == 1
    assert top["title"] == "Authentication design"
    assert top["status"] == "complete"
    assert set(top["components"]) == {"lexical", "identifier", "dense", "fused"}
    snippet = top["snippet"]
    assert snippet["file"] == "README.md"
    assert snippet["heading_path"] == ["Decision"]
    assert "bearer tokens" in snippet["text"]
    start, end = snippet["lines"]
    lines = (root / "001-auth-design" / "README.md").read_text().splitlines()
    assert "bearer tokens" in "\n".join(lines[start - 1 : end])


def test_filters_apply_inside_retrieval(warm):
    index, embedder, _ = warm
    # Only one spec is planned; with limit 1 a post-filter of the global top 1 would return nothing.
    hits = search_index(
        index, "bearer tokens", embed_query=embedder.embed_query, status=["planned"], limit=1
    )
    assert names(hits) == ["004-auth-audit-log"]
    hits = search_index(index, "tokens", embed_query=embedder.embed_query, tags=["auth"], limit=10)
    assert set(names(hits)) == {"001-auth-design", "002-token-refresh", "004-auth-audit-log"}
    hits = search_index(
        index, "tokens", embed_query=embedder.embed_query, tags=["auth", "audit"], limit=10
    )
    assert names(hits) == ["004-auth-audit-log"]
    assert (
        search_index(index, "tokens", embed_query=None, priority=["critical"], mode="lexical") == []
    )


def test_filtered_query_still_fills_the_limit(warm):
    index, embedder, _ = warm
    hits = search_index(index, "zzz unrelated words", embed_query=embedder.embed_query, limit=3)
    assert len(hits) == 3  # hybrid ranks every eligible spec, even with no word in common


def test_modes(warm):
    index, embedder, _ = warm
    lexical = search_index(index, "two panes layout", embed_query=None, mode="lexical")
    assert names(lexical)[0] == "003-search-ui"
    assert set(lexical[0].components) == {"lexical", "identifier", "fused"}
    assert lexical[0].snippet.file == "DESIGN.md"
    dense = search_index(index, "two panes layout", embed_query=embedder.embed_query, mode="dense")
    assert set(dense[0].components) == {"dense", "fused"}
    zscored = search_index(
        index, "two panes", embed_query=embedder.embed_query, params=RankingParams(fusion="zscore")
    )
    assert names(zscored)[0] == "003-search-ui"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"query": "  "}, "query"),
        ({"query": "x", "limit": 0}, "limit"),
        ({"query": "x", "mode": "fuzzy"}, "mode"),
    ],
)
def test_bad_input_is_refused(warm, kwargs, message):
    index, embedder, _ = warm
    with pytest.raises(InvalidInput, match=message):
        search_index(index, embed_query=embedder.embed_query, **kwargs)


def test_dense_mode_needs_an_embedder(warm):
    index, _, _ = warm
    with pytest.raises(InvalidInput, match="embedder"):
        search_index(index, "tokens", embed_query=None, mode="dense")


def test_an_empty_index_returns_nothing():
    index = build_warm_index([], np.zeros((0, 8), dtype=np.float32))
    assert search_index(index, "anything", embed_query=lambda q: np.zeros(8)) == []


def test_a_method_that_did_not_score_a_spec_reports_none(warm):
    from retriever.ranking.dense import DenseIndex

    index, embedder, _ = warm
    # Force the two-stage dense path with a one-chunk shortlist: other specs get no dense score.
    index.dense = DenseIndex(index.vectors, exact_limit=0, candidates=1)
    hits = search_index(index, "tokens", embed_query=embedder.embed_query, limit=4)
    assert any(hit.components["dense"] is None for hit in hits)
    assert all(hit.to_dict()["components"]["fused"] is not None for hit in hits)


def test_lexical_mode_answers_a_miss_with_nothing_not_with_zeros(warm):
    index, _, _ = warm
    assert search_index(index, "zqxwvy plorp", embed_query=None, mode="lexical") == []
    hits = search_index(index, "tokens zqxwvy", embed_query=None, mode="lexical", limit=50)
    assert hits and all(h.components["lexical"] > 0 for h in hits)
