"""Code-like identifiers kept whole (retriever.ranking.identifiers), and the search signal they feed."""

from __future__ import annotations

import pytest

from ingest.index.chunking import chunk_spec
from ingest.index.embedding import FakeEmbedder
from ingest.specs.store import SpecStore
from retriever.ranking.identifiers import identifiers
from retriever.ranking.search import search_index
from retriever.ranking.warm_index import build_warm_index
from tests.conftest import write_spec


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Builds on the existing IsingGraph type", ["isinggraph"]),
        ("call spec_dependencies first", ["spec_dependencies"]),
        ("edit src/create.rs", ["src/create.rs", "create.rs"]),
        ("replace buttons with @leanspec/ui-components", ["@leanspec/ui-components", "@leanspec"]),
        ("task T-221 is done", ["t-221"]),
        ("see README.md and console.log.", ["readme.md", "console.log"]),
        ("run `lean-spec board` or `specmem`", ["specmem"]),
    ],
)
def test_identifiers_are_whole_lowercased_tokens(text, expected):
    assert identifiers(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "a self-analysis of plain prose, e.g. this one, i.e. words",
        "version 0.2 and 3.5 and 1-2",
        "Phase 2: the CLI and the API",
    ],
)
def test_prose_numbers_and_hyphenated_words_are_not_identifiers(text):
    assert identifiers(text) == []


def test_an_identifier_in_the_query_lifts_the_spec_that_has_it(tmp_path):
    root = tmp_path / "specs"
    body = "## Overview\nThe graph model and its symbol types for the analyzer.\n"
    write_spec(root, "001-graph-model", f"---\nstatus: planned\n---\n# Graph model\n\n{body}")
    write_spec(
        root,
        "002-graph-types",
        "---\nstatus: planned\n---\n# Graph types\n\n## Overview\n"
        "Defines `IsingGraph`, the model's graph type.\n",
    )
    write_spec(root, "003-graph-views", f"---\nstatus: planned\n---\n# Graph views\n\n{body}")
    catalog = SpecStore(root).scan()
    embedder = FakeEmbedder()
    chunks = [c for spec in catalog for c in chunk_spec(spec, embedder.count_model_tokens)]
    index = build_warm_index(chunks, embedder.embed_documents([c.embed_text for c in chunks]))
    for mode in ("hybrid", "lexical"):
        hits = search_index(
            index, "the IsingGraph model", embed_query=embedder.embed_query, mode=mode
        )
        assert hits[0].spec == "002-graph-types"
        assert hits[0].components["identifier"] > 0
        assert all(hit.components["identifier"] == 0 for hit in hits[1:])
