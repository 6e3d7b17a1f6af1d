"""Context bundle invariants over the real LeanSpec corpus, without the model.

Seeds come from named specs and from the lexical section ranker, so these run in the default
suite: the first bundle parses and counts the corpus once (a few seconds), the rest are warm.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.index.tokens import count_tokens
from ingest.specs.store import Catalog, SpecStore
from retriever.bundles.context import build_context
from tests.conftest import DEV_QUERIES

MIN_FILL = 0.9
# Above the largest budget tested: a bundle this big holds all the material, or more than any
# tested budget, which is all the fill check needs to know (and far cheaper than MAX_BUDGET).
MATERIAL_PROBE = 40_000


_loaded: dict[str, Catalog] = {}


@pytest.fixture(scope="module")
def corpus_catalog(corpus_specs):
    if "corpus" not in _loaded:
        catalog = SpecStore(corpus_specs).scan()
        build_context(catalog, "warm the caches", budget=100)
        _loaded["corpus"] = catalog
    return _loaded["corpus"]


def loaded_catalog() -> Catalog:
    """For hypothesis tests, which print their arguments on failure (the catalog is megabytes)."""
    return _loaded["corpus"]


@pytest.fixture(scope="module")
def dev_queries():
    if not DEV_QUERIES.is_file():
        pytest.skip(f"dev queries not found at {DEV_QUERIES}")
    return [json.loads(line)["query"] for line in DEV_QUERIES.read_text().splitlines() if line]


_material: dict[tuple, int] = {}


def material_tokens(catalog, query, specs, depth) -> int:
    """What the bundle could hold, or at least MATERIAL_PROBE tokens of it."""
    key = (query, tuple(specs), depth)
    if key not in _material:
        _material[key] = build_context(catalog, query, specs, MATERIAL_PROBE, depth).tokens
    return _material[key]


def check_bundle(bundle, catalog, query, specs, depth, budget):
    assert bundle.tokens == count_tokens(bundle.rendered) <= budget
    assert bundle.budget == budget
    for item in bundle.items:
        assert item.text in bundle.rendered
        assert item.tokens == count_tokens(item.text)
    seen = [(item.spec, s["file"], s["lines"][0]) for item in bundle.items for s in item.sections]
    assert len(seen) == len(set(seen)), "a section appears twice"
    if material_tokens(catalog, query, specs, depth) > budget:
        assert bundle.tokens >= MIN_FILL * budget, (bundle.tokens, budget)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    budget=st.integers(100, 32_000),
    picks=st.lists(st.integers(0, 303), max_size=3),
    depth=st.integers(0, 3),
)
@pytest.mark.usefixtures("corpus_catalog")
def test_named_spec_bundles_fit_and_fill_the_budget(budget, picks, depth):
    corpus_catalog = loaded_catalog()
    names = [spec.dir_name for spec in corpus_catalog]
    specs = [names[i % len(names)] for i in picks] or [names[0]]
    bundle = build_context(corpus_catalog, specs=specs, budget=budget, depth=depth)
    check_bundle(bundle, corpus_catalog, None, specs, depth, budget)


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(budget=st.integers(100, 32_000), pick=st.integers(0, 10_000))
@pytest.mark.usefixtures("corpus_catalog")
def test_query_bundles_fit_and_fill_the_budget(dev_queries, budget, pick):
    corpus_catalog = loaded_catalog()
    query = dev_queries[pick % len(dev_queries)]
    bundle = build_context(corpus_catalog, query, budget=budget)
    check_bundle(bundle, corpus_catalog, query, (), 2, budget)


def test_the_largest_spec_at_small_budgets_is_cut_not_dropped(corpus_catalog):
    largest = max(corpus_catalog, key=lambda spec: len(spec.body))
    for budget in (100, 250, 1000):
        bundle = build_context(corpus_catalog, specs=[largest.dir_name], budget=budget, depth=0)
        assert bundle.items[0].spec == largest.dir_name
        assert bundle.tokens <= budget
        assert bundle.tokens >= MIN_FILL * budget


def test_query_bundle_puts_the_best_match_first_and_explains_every_item(corpus_catalog):
    bundle = build_context(corpus_catalog, "MCP server tool error handling", budget=4000)
    assert bundle.items[0].kind == "seed"
    assert bundle.items[0].resolution in ("sections", "full")
    reasons = {item.reason.split(" (")[0].rsplit(" ", 1)[0] for item in bundle.items}
    assert reasons <= {
        "matches the",
        "dependency of",
        "depends on",
        "parent of",
        "child of",
        "related to",
        "decision relevant to the",
    }


def test_duplicate_numbers_are_refused_not_guessed(corpus_catalog):
    from ingest.errors import AmbiguousSpecRef

    with pytest.raises(AmbiguousSpecRef):
        build_context(corpus_catalog, specs=["038"])


def test_cycles_do_not_loop(corpus_catalog):
    bundle = build_context(corpus_catalog, specs=["184"], budget=8000, depth=10)
    names = [item.spec for item in bundle.items]
    assert len(names) == len(set(names))
    assert bundle.tokens <= 8000


def test_named_specs_come_before_anything_else_at_small_budgets(corpus_catalog):
    named = ["107-ui-ux-refinements", "293-headless-vte-state-machine"]
    bundle = build_context(corpus_catalog, specs=named, budget=149, depth=3)
    assert [item.spec for item in bundle.items[:1]] == ["107-ui-ux-refinements"]
    assert all(item.kind == "seed" for item in bundle.items)


def test_a_summary_sentence_is_not_repeated_when_its_section_is_in(corpus_catalog):
    bundle = build_context(corpus_catalog, specs=["080"], budget=32_000, depth=0)
    item = bundle.items[0]
    assert item.resolution == "full"
    assert item.text.count("file has grown to") == 1  # the section; the header lost its copy
    assert item.text.split("\n")[2] == ""
