"""Context bundles on small spec dirs: seeds, expansion, decisions, history, budgets, the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ingest.errors import InvalidInput, SpecNotFound, SpecParseError, UnsafeReference
from ingest.index.tokens import count_tokens
from ingest.specs.store import SpecStore
from retriever import SpecMemory
from retriever.bundles.context import MAX_BUDGET, SeedHit, build_context
from retriever.cli import cli
from tests.conftest import write_spec


def stub_ranker(*hits: SeedHit):
    calls = []

    def rank(query: str, limit: int) -> list[SeedHit]:
        calls.append((query, limit))
        return list(hits)[:limit]

    rank.calls = calls
    return rank


@pytest.fixture
def decision_specs(tiny_specs):
    """tiny_specs plus an unlinked spec whose Decision section is about refresh tokens."""
    write_spec(
        tiny_specs,
        "004-token-storage",
        """
        ---
        status: complete
        transitions:
          - status: planned
            at: '2025-11-01T10:00:00Z'
          - status: complete
            at: '2025-11-03T09:30:00Z'
        ---
        # Token storage

        ## Overview
        Where refresh tokens are kept between agent runs.

        ## Decision
        Refresh tokens live in the OS keychain, never in plain files, because agents run unattended.

        ## Plan
        - [ ] keychain adapter
        """,
    )
    return tiny_specs


def catalog_of(root):
    return SpecStore(root).scan()


def by_spec(bundle):
    return {item.spec: item for item in bundle.items}


def test_named_spec_brings_its_dependencies_dependents_and_related(tiny_specs):
    bundle = build_context(catalog_of(tiny_specs), specs=["002"], budget=4000)
    items = by_spec(bundle)
    assert bundle.seeds == ["002-token-refresh"]
    assert items["002-token-refresh"].reason == "named in the request"
    assert items["002-token-refresh"].kind == "seed"
    assert items["001-auth-design"].reason == "dependency of 002-token-refresh"
    assert items["003-search-ui"].reason == "depends on 002-token-refresh"
    assert items["002-token-refresh"].score > items["001-auth-design"].score


def test_depth_zero_keeps_only_the_seeds(tiny_specs):
    bundle = build_context(catalog_of(tiny_specs), specs=["003-search-ui"], budget=4000, depth=0)
    specs = [item.spec for item in bundle.items if item.kind != "decision"]
    assert specs == ["003-search-ui"]


def test_dependencies_are_followed_transitively_up_to_depth(tiny_specs):
    catalog = catalog_of(tiny_specs)
    deep = by_spec(build_context(catalog, specs=["003"], budget=4000, depth=2))
    assert deep["001-auth-design"].reason in (
        "dependency of 002-token-refresh",
        "related to 003-search-ui",
    )
    shallow = build_context(catalog, specs=["003"], budget=4000, depth=1)
    assert by_spec(shallow)["001-auth-design"].reason == "related to 003-search-ui"


def test_query_seeds_come_from_the_ranker_with_their_score(tiny_specs):
    ranker = stub_ranker(SeedHit("003-search-ui", 0.83, (("DESIGN.md", 3, 4),)))
    bundle = build_context(
        catalog_of(tiny_specs), "search page layout", budget=4000, seed_ranker=ranker
    )
    item = by_spec(bundle)["003-search-ui"]
    assert item.reason == "matches the query (0.83)"
    assert ranker.calls and ranker.calls[0][0] == "search page layout"
    assert bundle.rendered.startswith("# Context: search page layout")


def test_large_budget_gives_every_spec_in_full_with_sub_files(tiny_specs):
    bundle = build_context(catalog_of(tiny_specs), specs=["003"], budget=4000)
    item = by_spec(bundle)["003-search-ui"]
    assert item.resolution == "full"
    assert "Two panes." in item.text and "From DESIGN.md:" in item.text
    files = {section["file"] for section in item.sections}
    assert files == {"README.md", "DESIGN.md"}


def test_small_budget_keeps_summaries_and_the_invariant(decision_specs):
    catalog = catalog_of(decision_specs)
    for budget in (1, 5, 20, 40, 60, 100):
        bundle = build_context(catalog, specs=["002"], budget=budget)
        assert bundle.tokens == count_tokens(bundle.rendered) <= budget
    bundle = build_context(catalog, specs=["002"], budget=100)
    assert bundle.items and bundle.items[0].spec == "002-token-refresh"


def test_item_json_shape_and_token_invariant(decision_specs):
    bundle = build_context(catalog_of(decision_specs), specs=["002"], budget=300)
    data = json.loads(json.dumps(bundle.to_dict()))
    assert data["budget"] == 300
    assert data["tokens"] == count_tokens(data["rendered"]) <= 300
    for item in data["items"]:
        assert set(item) >= {
            "spec",
            "title",
            "status",
            "resolution",
            "reason",
            "score",
            "tokens",
            "source",
            "text",
        }
        assert item["resolution"] in ("full", "sections", "summary")
        assert item["tokens"] == count_tokens(item["text"])
        assert item["text"] in data["rendered"]
        assert set(item["source"]) == {"path", "lines"}
        first, last = item["source"]["lines"]
        assert 1 <= first <= last


def test_section_sources_point_at_the_lines_of_the_file(decision_specs):
    bundle = build_context(catalog_of(decision_specs), specs=["004"], budget=2000, depth=0)
    item = by_spec(bundle)["004-token-storage"]
    decision = next(s for s in item.sections if s["heading"] == "Decision")
    lines = (decision_specs / "004-token-storage" / "README.md").read_text().split("\n")
    first, last = decision["lines"]
    assert lines[first - 1] == "## Decision"
    assert lines[last - 1].startswith("Refresh tokens live in the OS keychain")


def test_decisions_of_other_specs_that_bear_on_the_query(decision_specs):
    ranker = stub_ranker(SeedHit("003-search-ui", 1.0))
    bundle = build_context(
        catalog_of(decision_specs),
        "where are refresh tokens kept",
        budget=4000,
        depth=0,
        seed_ranker=ranker,
    )
    decisions = [item for item in bundle.items if item.kind == "decision"]
    assert [item.spec for item in decisions] == ["004-token-storage"]
    assert decisions[0].reason.startswith("decision relevant to the query")
    assert "OS keychain" in decisions[0].text
    assert decisions[0].sections[0]["kind"] == "decision"


def test_history_is_newest_first(decision_specs):
    bundle = build_context(catalog_of(decision_specs), specs=["004"], budget=4000, depth=0)
    text = by_spec(bundle)["004-token-storage"].text
    newest = text.index("2025-11-03 09:30 status → complete")
    assert newest < text.index("2025-11-01 10:00 status → planned")


def test_lexical_seeds_without_an_index(decision_specs):
    bundle = build_context(catalog_of(decision_specs), "bearer tokens for headless agents")
    assert bundle.items[0].spec == "001-auth-design"
    assert bundle.items[0].reason.startswith("matches the query (")


def test_same_request_same_bundle(decision_specs):
    catalog = catalog_of(decision_specs)
    first = build_context(catalog, "tokens", specs=["003"], budget=250)
    second = build_context(catalog, "tokens", specs=["003"], budget=250)
    assert first.to_dict() == second.to_dict()


@pytest.mark.parametrize("budget", [0, -5, True, 2.5, "100"])
def test_budget_must_be_a_positive_whole_number(tiny_specs, budget):
    with pytest.raises(InvalidInput, match="budget"):
        build_context(catalog_of(tiny_specs), specs=["001"], budget=budget)


def test_absurd_budget_is_capped_with_a_note(tiny_specs):
    bundle = build_context(catalog_of(tiny_specs), specs=["001"], budget=10**9)
    assert bundle.budget == MAX_BUDGET
    assert bundle.notes == [f"budget {10**9} capped to {MAX_BUDGET} tokens"]


@pytest.mark.parametrize("depth", [-1, 11, 1.5])
def test_depth_out_of_range_is_refused(tiny_specs, depth):
    with pytest.raises(InvalidInput, match="depth"):
        build_context(catalog_of(tiny_specs), specs=["001"], depth=depth)


def test_needs_a_query_or_a_spec(tiny_specs):
    with pytest.raises(InvalidInput, match="query or at least one spec"):
        build_context(catalog_of(tiny_specs), "   ")


def test_named_specs_resolve_strictly(tiny_specs):
    catalog = catalog_of(tiny_specs)
    with pytest.raises(SpecNotFound):
        build_context(catalog, specs=["auth"])
    with pytest.raises(UnsafeReference):
        build_context(catalog, specs=["../001-auth-design"])


def test_service_context_uses_the_event_log_once_it_exists(decision_specs, tmp_path):
    memory = SpecMemory(decision_specs, tmp_path / "data")
    bundle = memory.context(specs=["004"], budget=4000, depth=0)
    assert "status → complete" in bundle.rendered
    assert not (tmp_path / "data" / "events.sqlite").exists()  # a read creates no log
    memory.log_event("004", "implemented", agent="claude", summary="keychain adapter landed")
    bundle = memory.context(specs=["004"], budget=4000, depth=0)
    assert "implemented by claude: keychain adapter landed" in bundle.rendered


def test_service_context_without_an_index_says_so(decision_specs, tmp_path):
    memory = SpecMemory(decision_specs, tmp_path / "data")
    bundle = memory.context("refresh tokens", budget=500)
    assert bundle.notes == ["no index: seeds ranked lexically (run `specmem ingest`)"]


def run_cli(specs_dir, tmp_path, *args):
    runner = CliRunner()
    base = ["--specs-dir", str(specs_dir), "--data-dir", str(tmp_path / "data"), "context"]
    return runner.invoke(cli, [*base, *args])


def test_cli_prints_the_markdown_bundle(decision_specs, tmp_path):
    result = run_cli(decision_specs, tmp_path, "--spec", "002", "--budget", "500")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("# Context: 002-token-refresh")
    assert count_tokens(result.stdout.rstrip("\n")) <= 500


def test_cli_json_has_items_tokens_and_rendered(decision_specs, tmp_path):
    result = run_cli(
        decision_specs, tmp_path, "keychain", "--spec", "001", "--budget", "800", "-o", "json"
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["tokens"] == count_tokens(data["rendered"]) <= 800
    assert data["items"][0]["spec"] == "001-auth-design"


def test_cli_reports_bad_input_as_an_error(decision_specs, tmp_path):
    result = run_cli(decision_specs, tmp_path, "--spec", "002", "--budget", "0")
    assert result.exit_code == 1
    # One limit at every door since issue 12 (retriever.request_model): 100 tokens.
    assert "budget must be at least 100 tokens" in result.stderr
    result = run_cli(decision_specs, tmp_path)
    assert result.exit_code == 1
    assert "needs a query or at least one spec" in result.stderr


def test_a_spec_that_cannot_be_parsed_is_skipped_as_a_neighbour_and_refused_by_name(tiny_specs):
    write_spec(tiny_specs, "005-broken", "---\nstatus: [unclosed\n---\n# Broken\n")
    write_spec(
        tiny_specs,
        "006-uses-broken",
        """
        ---
        status: planned
        depends_on: [005-broken]
        ---
        # Uses broken
        """,
    )
    catalog = catalog_of(tiny_specs)
    assert "005-broken" in catalog.broken
    bundle = build_context(catalog, specs=["006"], budget=1000)
    assert [item.spec for item in bundle.items if item.kind != "decision"] == ["006-uses-broken"]
    with pytest.raises(SpecParseError):
        build_context(catalog, specs=["005"], budget=1000)


def test_an_index_that_cannot_answer_falls_back_to_lexical_seeds_with_a_note(decision_specs):
    from ingest.errors import BackendUnavailable

    def broken(query: str, limit: int) -> list[SeedHit]:
        raise BackendUnavailable("chroma server at http://localhost:8000 is not answering")

    bundle = build_context(catalog_of(decision_specs), "bearer tokens", seed_ranker=broken)
    assert bundle.items[0].spec == "001-auth-design"
    assert bundle.notes == [
        "search unavailable (chroma server at http://localhost:8000 is not answering); "
        "seeds ranked lexically"
    ]


def test_parent_and_children_come_along(tmp_path):
    root = tmp_path / "specs"
    write_spec(root, "010-umbrella", "---\nstatus: in-progress\n---\n# Umbrella\n\nAll parts.\n")
    for number in ("011", "012"):
        write_spec(
            root,
            f"{number}-part",
            f"---\nstatus: planned\nparent: 010-umbrella\n---\n# Part {number}\n\nOne part.\n",
        )
    catalog = catalog_of(root)
    items = by_spec(build_context(catalog, specs=["011"], budget=2000))
    assert items["010-umbrella"].reason == "parent of 011-part"
    items = by_spec(build_context(catalog, specs=["010"], budget=2000))
    assert items["011-part"].reason == "child of 010-umbrella"
    assert items["012-part"].reason == "child of 010-umbrella"


def test_a_search_that_finds_nothing_falls_back_to_lexical_seeds(decision_specs):
    bundle = build_context(catalog_of(decision_specs), "bearer tokens", seed_ranker=stub_ranker())
    assert bundle.items[0].spec == "001-auth-design"
    assert bundle.notes == ["search found nothing; seeds ranked lexically"]


def test_an_edited_spec_is_seen_by_the_next_bundle(decision_specs, tmp_path):
    memory = SpecMemory(decision_specs, tmp_path / "data")
    assert "hardware key" not in memory.context("keychain", budget=2000).rendered
    readme = decision_specs / "004-token-storage" / "README.md"
    readme.write_text(
        readme.read_text().replace("OS keychain", "OS keychain or a hardware key"),
        encoding="utf-8",
    )
    memory.catalog(refresh=True)  # mtimes can tie within one test; a real edit changes them
    assert "hardware key" in memory.context("keychain", budget=2000).rendered


def test_open_questions_count_as_decisions_only_with_a_recommendation(tiny_specs):
    for name, answer in (("007-cache-open", ""), ("008-cache-answered", "Recommendation: LRU.")):
        write_spec(
            tiny_specs,
            name,
            f"""
            ---
            status: planned
            ---
            # Cache eviction

            ## Open Questions
            Which cache eviction policy for spec bundles? {answer}
            """,
        )
    ranker = stub_ranker(SeedHit("003-search-ui", 1.0))
    bundle = build_context(
        catalog_of(tiny_specs), "cache eviction policy", depth=0, seed_ranker=ranker
    )
    decisions = [item.spec for item in bundle.items if item.kind == "decision"]
    assert decisions == ["008-cache-answered"]
