"""retriever.evaluation.evaluate, retriever.evaluation.bootstrap and retriever.ranking.baseline as pure functions: a stub search
over the tiny specs' catalog, constructed vectors, and a warm index of real chunks."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest

from ingest.errors import InvalidInput
from ingest.index.chunking import chunk_spec
from ingest.index.embedding import FakeEmbedder
from ingest.specs.store import SpecStore
from retriever.evaluation.bootstrap import paired_bootstrap
from retriever.evaluation.eval_config import EvalConfig, parse_config
from retriever.evaluation.evaluate import compare_entries, evaluate_queries, read_queries
from retriever.ranking.baseline import PlainBM25, baseline_tokens, spec_windows
from retriever.ranking.search import RankingParams, rank_specs
from retriever.ranking.warm_index import build_warm_index

AUTH, REFRESH, UI = "001-auth-design", "002-token-refresh", "003-search-ui"


@pytest.fixture
def catalog(tiny_specs):
    return SpecStore(tiny_specs).scan()


def fixed(ranking, asked=None):
    """A search that always answers `ranking`, recording the limits it was asked for."""

    def search(query, limit):
        if asked is not None:
            asked.append(limit)
        return ranking[:limit]

    return search


def test_excluded_specs_are_dropped_before_scoring(catalog):
    asked: list[int] = []
    queries = [{"qid": "q1", "query": "token refresh", "relevant": ["1"], "exclude": ["2"]}]
    report = evaluate_queries(queries, fixed([REFRESH, AUTH, UI], asked), catalog, details=True)
    assert asked == [11]  # one more than the depth, to fill the place of the excluded spec
    entry = report["queries"][0]
    assert entry["rank"] == 1 and entry["excluded"] == [REFRESH]
    assert REFRESH not in entry["top"]
    assert report["mrr@10"] == report["recall@1"] == 1.0


def test_an_exclude_ref_that_does_not_resolve_skips_the_query(catalog):
    queries = [
        {"query": "token refresh", "relevant": ["1"], "exclude": ["999-nowhere"]},
        {"query": "search page", "relevant": [UI]},
    ]
    report = evaluate_queries(queries, fixed([UI, AUTH]), catalog)
    assert report["n"] == 1
    reasons = " ".join(p.get("ref", "") + " " + p["reason"] for p in report["problems"])
    assert "999-nowhere" in reasons and "skipped" in reasons


def test_a_relevant_spec_that_failed_to_load_is_reported_not_scored_as_a_miss(tiny_specs, tmp_path):
    broken = tmp_path / "broken-specs"
    shutil.copytree(tiny_specs, broken)
    (broken / UI / "README.md").write_text("---\nstatus: [unclosed\n---\n# Search UI\n")
    queries = tmp_path / "queries-dev.jsonl"
    queries.write_text(
        json.dumps({"query": "search page", "relevant": [UI]})
        + "\n"
        + json.dumps({"query": "auth", "relevant": [AUTH]})
        + "\n"
    )
    report = evaluate_queries(read_queries(queries), fixed([AUTH]), SpecStore(broken).scan())
    assert report["n"] == 1 and report["mrr@10"] == 1.0
    first = report["problems"][0]
    assert first["where"] == f"{queries}:1"
    assert "failed to load, so it cannot rank" in first["reason"] and "README.md" in first["reason"]


@pytest.mark.parametrize(
    ("content", "named"),
    [
        (b'{"query": "caf\xe9", "relevant": ["1"]}\n', ":1: not UTF-8 text"),
        (b"\n\n", "no labelled queries"),
        (
            b'{"qid": "q1", "query": "a", "relevant": ["1"]}\n'
            b'{"qid": "q1", "query": "b", "relevant": ["2"]}\n',
            ":2: qid 'q1' is also the qid of line 1",
        ),
    ],
)
def test_a_queries_file_that_cannot_be_scored_is_refused_naming_file_and_line(
    tmp_path, content, named
):
    path = tmp_path / "queries.jsonl"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=named) as raised:
        read_queries(path)
    assert str(path) in str(raised.value)


def test_coverage_is_the_share_of_relevant_specs_and_recall_needs_one(catalog):
    queries = [{"query": "deps", "relevant": [AUTH, REFRESH], "set": "deps"}]
    ranking = [UI, AUTH] + [f"x{i}" for i in range(20)]
    report = evaluate_queries(queries, fixed(ranking), catalog)
    assert report["recall@10"] == 1.0
    assert report["coverage@10"] == 0.5
    assert report["mrr@10"] == 0.5
    assert report["sets"] == {
        "deps": {k: v for k, v in report.items() if k in report["sets"]["deps"]}
    }


def test_queries_from_several_files_keep_their_file_and_set(tmp_path, catalog):
    first, second = tmp_path / "queries-dev.jsonl", tmp_path / "queries-refs.jsonl"
    first.write_text(json.dumps({"query": "auth", "relevant": [AUTH]}) + "\n")
    second.write_text(
        json.dumps({"query": "ui", "relevant": [UI], "exclude": [AUTH], "set": "refs"}) + "\n"
    )
    queries = read_queries(first) + read_queries(second)
    report = evaluate_queries(queries, fixed([AUTH, UI]), catalog, details=True)
    assert [(e["set"], e["file"]) for e in report["queries"]] == [
        ("queries-dev", str(first)),  # no `set` field: the file names the set
        ("refs", str(second)),
    ]
    assert report["sets"]["queries-dev"]["mrr@10"] == 1.0
    assert report["sets"]["refs"]["mrr@10"] == 1.0  # AUTH excluded: UI moves up to rank 1


def test_bootstrap_of_identical_vectors_is_zero():
    values = np.random.default_rng(1).random(50)
    difference = paired_bootstrap(values, values)
    assert (difference.mean, difference.low, difference.high) == (0.0, 0.0, 0.0)
    stratified = paired_bootstrap(values, values, strata=["a"] * 20 + ["b"] * 30)
    assert (stratified.low, stratified.high) == (0.0, 0.0)


def test_bootstrap_interval_covers_the_true_difference():
    rng = np.random.default_rng(7)
    base = rng.random(300)
    noise = rng.normal(0.0, 0.2, 300)
    other = base - 0.1 + (noise - noise.mean())  # the mean difference is 0.1 exactly
    difference = paired_bootstrap(base, other)
    assert difference.low < 0.1 < difference.high
    assert difference.low < difference.mean < difference.high
    assert difference.high - difference.low < 0.1  # paired: the shared spread cancels
    again = paired_bootstrap(base, other)
    assert again == difference  # a fixed seed


def test_bootstrap_refuses_unaligned_vectors():
    with pytest.raises(InvalidInput, match="aligned"):
        paired_bootstrap([1.0, 0.0], [1.0])


def test_compare_entries_refuses_different_queries(catalog):
    one = evaluate_queries(
        [{"query": "a", "relevant": [AUTH]}], fixed([AUTH]), catalog, details=True
    )
    two = evaluate_queries(
        [{"query": "b", "relevant": [AUTH]}], fixed([AUTH]), catalog, details=True
    )
    with pytest.raises(InvalidInput, match="same queries"):
        compare_entries(one["queries"], two["queries"])


def test_configs_read_ranking_params_fields():
    # second_weight: a float setting every mode reads (settings a mode ignores are refused)
    number = next(f for f in dataclasses.fields(RankingParams) if f.name == "second_weight")
    config = parse_config(f"lexical,{number.name}=0.25")
    assert config.mode == "lexical"
    assert config.params is not None and getattr(config.params, number.name) == 0.25
    assert parse_config(config.label) == config
    assert parse_config(f"{number.name}=0.25", default_mode="dense").mode == "dense"
    assert parse_config("bm25") == EvalConfig("bm25")
    assert parse_config("bm25-windows") == EvalConfig("bm25-windows")


def test_an_unknown_ranking_setting_is_named():
    with pytest.raises(InvalidInput, match="'no_such_knob'"):
        parse_config("no_such_knob=1")
    with pytest.raises(InvalidInput, match="sparse"):
        parse_config("sparse")
    with pytest.raises(InvalidInput, match="bm25"):
        parse_config("bm25,second_weight=0.1")
    with pytest.raises(InvalidInput, match="bm25-windows"):
        parse_config("bm25-windows,second_weight=0.1")


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("lexical_weight=0,dense_weight=0,identifier_weight=0", "are all 0"),
        ("fusion=rrf,rrf_k=-5", "rrf_k must be a finite number above 0"),
        ("dense_weight=inf", "dense_weight must be a finite number >= 0"),
        ("second_weight=nan", "second_weight must be"),
        ("lexical_weight=-1", "lexical_weight must be"),
        ("fusion=bayes", "fusion must be one of"),
    ],
)
def test_a_ranking_setting_out_of_range_is_refused_by_name(text, named):
    with pytest.raises(InvalidInput, match=named):
        parse_config(text)


@pytest.mark.parametrize(
    ("text", "unread"),
    [
        ("rrf_k=20", "rrf_k"),  # the default fusion is zscore
        ("fusion=rrf,dense_weight=0.5", "dense_weight"),
        ("lexical,dense_weight=0.9", "dense_weight"),
        ("dense,lexical_weight=0.2", "lexical_weight"),
    ],
)
def test_a_setting_the_configuration_never_reads_is_refused(text, unread):
    with pytest.raises(InvalidInput, match=f"^{unread}: not read by"):
        parse_config(text)
    assert parse_config("fusion=rrf,rrf_k=20").params.rrf_k == 20


def test_lexical_mode_with_its_methods_weighted_zero_names_them(catalog):
    params = RankingParams(lexical_weight=0.0, identifier_weight=0.0)
    memory_index = build_warm_index(
        [c for spec in catalog for c in chunk_spec(spec, FakeEmbedder().count_model_tokens)],
        None,
        catalog,
    )
    with pytest.raises(InvalidInput, match=r"\(lexical, identifier\) has weight 0"):
        rank_specs(memory_index, "tokens", None, mode="lexical", params=params)


def test_baseline_ranks_by_best_chunk_with_plain_tokens(catalog):
    embedder = FakeEmbedder()
    chunks = [c for spec in catalog for c in chunk_spec(spec, embedder.count_model_tokens)]
    baseline = PlainBM25(build_warm_index(chunks, None, catalog))
    assert baseline_tokens("Token-Refresh v0.3 isn't") == [
        "token",
        "refresh",
        "v0",
        "3",
        "isn",
        "t",
    ]
    assert baseline.rank("headless agents bearer tokens", 3)[0] == AUTH
    assert baseline.rank("refresh", 3) == [REFRESH]  # no stemming: "refresh" only, one spec
    assert baseline.rank("search ui", 1) == [UI]  # the `dir | title` header counts
    assert baseline.rank("zanzibar", 5) == []


def test_windows_cut_a_spec_into_runs_of_words_across_its_chunks(catalog):
    embedder = FakeEmbedder()
    chunks = chunk_spec(next(iter(catalog)), embedder.count_model_tokens)
    assert len(chunks) > 1  # the cut must cross chunk edges to mean anything
    words = " ".join(c.text for c in chunks).split()
    windows = spec_windows(chunks, 7)
    assert " ".join(windows).split() == words  # nothing lost or repeated at a chunk's edge
    assert all(len(w.split()) == 7 for w in windows[:-1]) and 0 < len(windows[-1].split()) <= 7
    assert spec_windows([], 7) == [""]  # a spec with no text still has its header to score


def test_the_windows_baseline_ranks_the_same_specs_by_their_best_window(catalog):
    embedder = FakeEmbedder()
    chunks = [c for spec in catalog for c in chunk_spec(spec, embedder.count_model_tokens)]
    baseline = PlainBM25(build_warm_index(chunks, None, catalog), windows=30)
    assert baseline.rank("headless agents bearer tokens", 3)[0] == AUTH
    assert baseline.rank("refresh", 3) == [REFRESH]
    assert baseline.rank("search ui", 1) == [UI]
    assert baseline.rank("zanzibar", 5) == []
    assert sorted(baseline.spec_names) == sorted(spec.dir_name for spec in catalog)
