"""Pure ranking pieces: the analyzer, BM25, chunk-to-spec aggregation and fusion."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from retriever.ranking.fusion import best_chunks, combine, rrf, spec_scores, zscore
from retriever.ranking.lexical_rank import BM25Index
from retriever.ranking.terms import stem, terms

NEG_INF = -np.inf


def test_terms_split_identifiers_and_drop_function_words():
    assert terms("Migrate the CLI to Commander.js") == ["migrat", "cli", "commander", "js"]
    assert terms("lean-spec spec_dependencies CamelCase v0.3") == [
        *("lean", "spec", "spec", "dependenci", "camel", "cas", "v", "0", "3")
    ]
    assert terms("embed embedded embedding") == ["embed"] * 3


@pytest.mark.parametrize(
    ("words", "same"),
    [
        (["validate", "validates", "validation", "validating", "validated"], True),
        (["search", "searches", "searching"], True),
        (["dependency", "dependencies"], True),
        (["run", "running"], True),
        (["migrate", "migration", "migrating"], True),
        (["spec", "class"], False),
    ],
)
def test_stem_conflates_inflections(words, same):
    assert (len({stem(w) for w in words}) == 1) is same


def test_stem_leaves_short_words_digits_and_double_s_alone():
    assert stem("api") == "api"
    assert stem("2024") == "2024"
    assert stem("class") == "class"


def test_bm25_prefers_rarer_terms_and_shorter_documents():
    docs = [
        ["search", "rank", "spec"],
        ["spec", "spec", "spec", "status"],
        ["search"] + ["filler"] * 30,
    ]
    index = BM25Index(docs)
    scores = index.scores(["search", "rank"])
    assert scores[0] > scores[2] > scores[1] == 0.0
    assert index.idf("rank") > index.idf("spec")
    assert index.document_frequency("spec") == 2
    assert index.scores(["absent"]).tolist() == [0.0, 0.0, 0.0]


def test_bm25_term_weights_scale_contributions():
    index = BM25Index([["alpha"], ["beta"]])
    plain = index.scores(["alpha", "beta"])
    weighted = index.scores(["alpha", "beta"], {"alpha": 0.5})
    assert weighted[0] == pytest.approx(plain[0] * 0.5)
    assert weighted[1] == pytest.approx(plain[1])


def test_spec_score_is_best_plus_weighted_second():
    # spec 0: chunks 0-2, spec 1: chunk 3, spec 2: chunks 4-5 (all filtered out)
    starts = np.array([0, 3, 4])
    scores = np.array([1.0, 5.0, 2.0, 4.0, NEG_INF, NEG_INF], dtype=np.float32)
    result = spec_scores(scores, starts, second_weight=0.5)
    assert result[0] == pytest.approx(5.0 + 0.5 * 2.0)
    assert result[1] == pytest.approx(4.0)  # a lone chunk: no second
    assert result[2] == NEG_INF
    assert best_chunks(scores, starts, np.array([0, 1])) == [1, 3]


def test_spec_score_counts_a_tied_second_and_ignores_negative_seconds():
    starts = np.array([0, 2])
    scores = np.array([3.0, 3.0, 0.5, -0.2], dtype=np.float32)
    result = spec_scores(scores, starts, second_weight=0.3)
    assert result[0] == pytest.approx(3.9)
    assert result[1] == pytest.approx(0.5)


def test_zscore_keeps_excluded_specs_out():
    values = np.array([1.0, 2.0, 3.0, NEG_INF], dtype=np.float32)
    z = zscore(values)
    assert z[:3].mean() == pytest.approx(0.0, abs=1e-6)
    assert z[3] == NEG_INF
    assert zscore(np.array([2.0, 2.0], dtype=np.float32)).tolist() == [0.0, 0.0]


def test_combine_weights_standardized_components():
    lexical = np.array([10.0, 0.0, 0.0, NEG_INF], dtype=np.float32)
    dense = np.array([0.1, 0.5, 0.2, NEG_INF], dtype=np.float32)
    fused = combine({"lexical": lexical, "dense": dense}, {"lexical": 0.8, "dense": 0.2})
    assert int(np.argmax(fused)) == 0
    assert fused[3] == NEG_INF
    dense_only = combine({"lexical": lexical, "dense": dense}, {"lexical": 0.0, "dense": 1.0})
    assert int(np.argmax(dense_only)) == 1


def test_rrf_rewards_agreement():
    a = np.array([3.0, 2.0, 1.0], dtype=np.float32)
    b = np.array([2.0, 3.0, 1.0], dtype=np.float32)
    fused = rrf({"a": a, "b": b})
    assert fused[0] == pytest.approx(fused[1])
    assert fused[2] < fused[0]


def test_dense_two_stage_keeps_the_exact_top_chunks():
    from retriever.ranking.dense import DenseIndex

    rng = np.random.default_rng(7)
    # Like sentence embeddings, mostly spanned by a few directions.
    latent = rng.normal(size=(4000, 8)) @ rng.normal(size=(8, 32))
    vectors = (latent + 0.05 * rng.normal(size=(4000, 32))).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    query = vectors[17] + 0.1 * vectors[99]
    exact, _ = DenseIndex(vectors).search(query)
    staged = DenseIndex(vectors, exact_limit=1000, candidates=500)
    assert staged.ann is not None
    approximate, _ = staged.search(query)
    top = np.argsort(-exact)[:20]
    assert np.allclose(
        approximate[top], exact[top]
    )  # the best chunks are shortlisted, exactly scored
    assert np.isneginf(approximate).sum() == 4000 - 500
    mask = np.zeros(4000, dtype=bool)
    mask[:900] = True  # few enough eligible rows: exact over the masked rows only
    masked, _ = staged.search(query, mask)
    assert np.allclose(masked[:900], exact[:900]) and np.isneginf(masked[900:]).all()


_WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]
_words = st.lists(st.sampled_from(_WORDS), max_size=12)


@given(
    old=st.lists(_words, max_size=8),
    new=st.lists(st.tuples(st.booleans(), _words), max_size=8),
)
def test_a_rebuilt_bm25_index_scores_like_one_built_from_scratch(old, new) -> None:
    # Each new document either reuses an old one's codes (when there is one) or brings terms.
    first = BM25Index(old)
    documents: list = []
    plain: list[list[str]] = []
    for i, (reuse, words) in enumerate(new):
        if reuse and old:
            documents.append(first.encoded[i % len(old)])
            plain.append(old[i % len(old)])
        else:
            documents.append(words)
            plain.append(words)
    rebuilt, scratch = first.rebuilt(documents), BM25Index(plain)
    for query in (["alpha"], ["beta", "gamma", "gamma"], ["omega"], ["zeta", "eta", "theta"]):
        assert np.allclose(rebuilt.scores(query), scratch.scores(query))


def test_codes_are_one_flat_array_narrowed_while_the_vocabulary_fits() -> None:
    small = BM25Index([["alpha", "beta"], [], ["beta"]])
    assert small._codes.dtype == np.uint16 and len(small.encoded) == 3
    assert [list(doc) for doc in small.encoded] == [[0, 1], [], [1]]
    assert all(np.shares_memory(doc, small._codes) for doc in small.encoded if len(doc))
    # Past 65,536 terms the codes widen, and reused narrow codes still mean the same terms.
    wide = small.rebuilt([small.encoded[0], [f"t{i}" for i in range(70_000)]])
    assert wide._codes.dtype == np.int32
    assert wide.scores(["alpha"])[0] > 0 and wide.scores(["t69999"])[1] > 0


def test_handing_freed_memory_back_never_fails_a_build() -> None:
    from retriever.ranking.heap import release_freed_memory

    # True or False by what the allocator had to give back; never an error, on any C library.
    garbage = [bytearray(4096) for _ in range(20_000)]
    del garbage
    assert release_freed_memory() in (True, False)


def test_the_vocabulary_is_compacted_when_edits_leave_it_mostly_unused() -> None:
    index = BM25Index([[f"w{i}" for i in range(100)]])
    for round_ in range(5):
        index = index.rebuilt([[f"r{round_}-{i}" for i in range(100)]])
    assert len(index.vocabulary) <= 2 * 100
    assert index.scores(["r4-7"])[0] > 0 and index.idf("w3") == 0.0


def test_a_spec_outside_the_dense_shortlist_ranks_below_one_both_methods_found():
    from retriever.ranking.search import RankingParams, _fuse

    components = {
        "lexical": np.array([2.0, 2.0, 1.0, NEG_INF], dtype=np.float32),
        "identifier": np.array([0.0, 0.0, 0.0, NEG_INF], dtype=np.float32),
        "dense": np.array([0.5, NEG_INF, 0.2, NEG_INF], dtype=np.float32),
    }
    fused = _fuse(components, RankingParams())
    assert fused[0] > fused[1]  # same lexical score; spec 1 was not shortlisted
    assert np.isfinite(fused[1])  # but it keeps its lexical evidence
    assert fused[3] == NEG_INF  # filtered out by every method stays out


def test_dense_shortlist_under_a_filter_scores_only_rows_the_filter_lets_through():
    from retriever.ranking.dense import DenseIndex

    rng = np.random.default_rng(11)
    vectors = rng.normal(size=(3000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    staged = DenseIndex(vectors, exact_limit=1000, candidates=200)
    mask = np.zeros(3000, dtype=bool)
    mask[::2] = True  # 1,500 eligible rows: still past the exact limit, so the IVF path
    scores, shortlist = staged.search(vectors[4], mask)
    assert (
        shortlist is not None and shortlist.tolist() == np.flatnonzero(np.isfinite(scores)).tolist()
    )
    assert np.isneginf(scores[~mask]).all()
    assert scores[4] == pytest.approx(1.0, abs=1e-5)
    assert np.isfinite(scores).sum() == 200
