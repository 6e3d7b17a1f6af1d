"""Search and eval end to end: a real index (real model, real Chroma and SQLite) over a slice of
the LeanSpec corpus, through SpecMemory and the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ingest.errors import InvalidInput
from retriever.cli import cli
from retriever.service import SpecMemory

pytestmark = pytest.mark.model

SLICE = [
    "004-existing-project-integration",
    "008-commander-migration",
    "038-flat-structure-migration",
    "038-mcp-frontmatter-bug-fix",
    "039-template-variable-sync",
    "042-mcp-error-handling",
    "044-spec-relationships-clarity",
    "047-git-backfill-timestamps",
    "064-docs-site-zh-translation",
    "075-intelligent-search-engine",
    "124-advanced-search-capabilities",
]
# Real commit subjects from the corpus's dev queries, each citing one spec of the slice.
LABELLED = [
    {"qid": "A003", "query": "Add existing-project integration for lspec init (merge/backup/skip)", "relevant": ["004-existing-project-integration"]},
    {"qid": "A004", "query": "Migrate CLI to Commander.js and remove manual argument parsing", "relevant": ["8"]},
    {"qid": "A008", "query": "Implement: Template variable synchronization for frontmatter fields", "relevant": ["039-template-variable-sync"]},
    {"qid": "A012", "query": "Add: Backfill timestamp frontmatter from git history", "relevant": ["047-git-backfill-timestamps"]},
    {"qid": "A013", "query": "Fix MCP server crash on tool errors - throw instead of process.exit", "relevant": ["042"]},
    {"qid": "A028", "query": "Implement bidirectional spec relationships", "relevant": ["044-spec-relationships-clarity"]},
    {"qid": "A058", "query": "Add Chinese (Simplified) translation support to documentation site", "relevant": ["064-docs-site-zh-translation"]},
    {"qid": "A069", "query": "Implement intelligent relevance-ranked search engine", "relevant": ["075-intelligent-search-engine"]},
    {"qid": "A097", "query": "Implement advanced search query syntax (Phase 2)", "relevant": ["124-advanced-search-capabilities"]},
]  # fmt: skip


@pytest.fixture(scope="session")
def indexed(tmp_path_factory, corpus_specs) -> tuple[Path, Path, SpecMemory]:
    root = tmp_path_factory.mktemp("search-slice")
    specs = root / "specs"
    for name in SLICE:
        shutil.copytree(corpus_specs / name, specs / name)
    memory = SpecMemory(specs, root / "data")
    memory.ingest()
    return specs, root / "data", memory


def run_cli(indexed, *args: str):
    specs, data, _ = indexed
    result = CliRunner().invoke(cli, ["--specs-dir", str(specs), "--data-dir", str(data), *args])
    return result


def search_json(indexed, *args: str) -> list[dict]:
    result = run_cli(indexed, "search", *args, "-o", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["results"]


def test_search_json_has_one_ranked_entry_per_spec(indexed):
    results = search_json(indexed, "Migrate CLI to Commander.js and remove manual argument parsing")
    assert results[0]["spec"] == "008-commander-migration"
    assert len({r["spec"] for r in results}) == len(results) == 10
    assert [r["rank"] for r in results] == list(range(1, 11))
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    top = results[0]
    assert top["title"] and top["status"] == "archived"
    assert set(top["components"]) == {"lexical", "identifier", "dense", "fused"}
    snippet = top["snippet"]
    assert snippet["file"] == "README.md"
    start, end = snippet["lines"]
    source = (indexed[0] / top["spec"] / snippet["file"]).read_text().splitlines()
    assert snippet["text"].rstrip("…")[:40] in "\n".join(source[start - 1 : end])
    assert isinstance(snippet["heading_path"], list)


def test_filters_apply_inside_retrieval(indexed):
    _, _, memory = indexed
    # The best matches for this query are archived; a post-filter of the top 3 would return fewer.
    hits = memory.search("Commander.js migration", status="complete", limit=3)
    assert len(hits) == 3
    assert all(hit.status == "complete" for hit in hits)
    hits = memory.search("frontmatter", tags=["search"], limit=5)
    assert {hit.spec for hit in hits} == {
        "075-intelligent-search-engine",
        "124-advanced-search-capabilities",
    }
    hits = memory.search("search", tags=["search", "ranking"])
    assert [hit.spec for hit in hits] == ["075-intelligent-search-engine"]
    assert memory.search("search", priority=["low"]) == []
    hits = memory.search("errors", status="in_progress")  # canonical form: in-progress
    assert hits == []


@pytest.mark.parametrize("mode", ["hybrid", "lexical", "dense"])
def test_every_mode_finds_the_obvious_spec(indexed, mode):
    _, _, memory = indexed
    hits = memory.search("Chinese translation of the docs site", mode=mode, limit=3)
    assert hits[0].spec == "064-docs-site-zh-translation"
    expected = {
        "hybrid": {"lexical", "identifier", "dense", "fused"},
        "lexical": {"lexical", "identifier", "fused"},
    }
    assert set(hits[0].components) == expected.get(mode, {"dense", "fused"})


def test_search_text_output_is_a_readable_ranked_list(indexed):
    result = run_cli(indexed, "search", "backfill timestamps from git", "-n", "2")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith(" 1. 047-git-backfill-timestamps")
    assert "README.md:" in lines[1]


def test_bad_filter_values_are_refused(indexed):
    _, _, memory = indexed
    with pytest.raises(InvalidInput, match="status"):
        memory.search("x", status=["shipped"])
    with pytest.raises(InvalidInput, match="query"):
        memory.search("   ")


def test_eval_scores_labelled_queries_and_reports_bad_refs(indexed, tmp_path):
    queries = tmp_path / "queries.jsonl"
    lines = [json.dumps(q) for q in LABELLED]
    lines.append(json.dumps({"query": "flat structure", "relevant": ["038"]}))  # ambiguous
    lines.append(json.dumps({"query": "Commander.js", "relevant": ["999-nowhere", "008"]}))
    queries.write_text("\n".join(lines) + "\n")
    result = run_cli(indexed, "eval", str(queries), "-o", "json", "--details")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n"] == len(LABELLED) + 1  # the ambiguous-only query is skipped
    assert report["recall@10"] == 1.0
    assert report["mrr@10"] >= 0.8
    assert report["recall@1"] <= report["recall@5"] <= report["recall@10"]
    reasons = " ".join(p.get("ref", "") + " " + p["reason"] for p in report["problems"])
    assert "038" in reasons and "ambiguous" in reasons
    assert "999-nowhere" in reasons
    first = report["queries"][0]
    assert first["qid"] == "A003" and first["rank"] >= 1 and len(first["top"]) == 10
    text = run_cli(indexed, "eval", str(queries), "--mode", "lexical")
    assert text.exit_code == 0 and "MRR@10" in text.output
    assert "999-nowhere" in text.output


def test_eval_refuses_a_malformed_file(indexed, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"query": "a", "relevant": ["008"]}\nnot json\n')
    result = run_cli(indexed, "eval", str(bad))
    assert result.exit_code == 1
    assert "bad.jsonl:2" in result.output
    result = run_cli(indexed, "search", "x", "--status", "shipped")
    assert result.exit_code == 1
    assert result.output.startswith("error: ")


def test_a_reindexed_spec_is_searchable_at_once(indexed):
    specs, _, memory = indexed
    # No spec holds either word yet: lexical alone answers nothing rather than zeros.
    assert memory.search("zanzibar quokka", mode="lexical", limit=1) == []
    readme = specs / "124-advanced-search-capabilities" / "README.md"
    original = readme.read_text()
    try:
        readme.write_text(original + "\n## Zanzibar\n\nThe quokka operator.\n")
        memory.ingest(specs=["124-advanced-search-capabilities"])
        hits = memory.search("zanzibar quokka", limit=1)
        assert hits[0].spec == "124-advanced-search-capabilities"
        assert hits[0].snippet.heading_path == ("Zanzibar",)
    finally:
        readme.write_text(original)
        memory.ingest(specs=["124-advanced-search-capabilities"])


def test_search_before_any_ingest_says_to_ingest(tmp_path, tiny_specs):
    memory = SpecMemory(tiny_specs, tmp_path / "empty-data")
    with pytest.raises(InvalidInput, match="specmem ingest"):
        memory.search("auth", mode="lexical")
